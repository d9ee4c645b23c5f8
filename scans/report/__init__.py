"""``saturate report DIR``: PNG plots and one self-contained report.html from a result directory.

``build`` (the page: ``ReportConfig``, ``make_report``), ``readers`` (run JSON, perf_analyzer CSVs,
monitor CSVs → rows), ``plots`` (PNGs), ``html`` (page pieces), ``headline`` (the answer line and
summary.json), ``overlay`` (``--compare`` on the same axes), ``scaling`` (DLBS exploration/strong/weak
tables), ``extras`` (compare and tune sections), ``cli`` (argparse).
"""

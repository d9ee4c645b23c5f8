"""Scans and reports: the layer that runs the measurements users ask for and shows them.

- ``scans.direct`` — ``saturate scan direct``: in-process batch scan through the servers backends
  (device-synchronised timing, warm-up by count and time, sync/async, OOM ends the scan cleanly);
  statistics in ``scans.stats``, timed calls in ``scans.runners``, files in ``scans.directio``.
- ``scans.report`` — ``saturate report DIR``: reads run JSON (``saturate.run/1``) and perf_analyzer
  CSVs (``scans.sources``), draws PNG plots (``scans.plots``) and writes one self-contained HTML page
  (``scans.html``).

The only package that imports the other three (servers, loadgen, monitors).
"""

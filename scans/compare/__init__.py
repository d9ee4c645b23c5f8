"""``saturate compare A B [C …]``: per-level change of throughput and latency against a baseline.

``runfiles`` reads result files and directories, ``significance`` matches levels and tests the changes,
``output`` prints, writes ``compare.json``/``compare.csv``/``compare.png`` and the report section,
``cli`` registers the subcommand and applies the ``--fail-on`` gates (``loadgen.gates``).
"""

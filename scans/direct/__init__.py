"""``saturate scan direct``: in-process batch scan through the servers backends.

``direct_scan`` (device-synchronised timing, warm-up by count and time, sync/async, OOM ends the scan
cleanly), ``timing`` (mean ± SEM, median, p95, items/s from raw times), ``runners`` (timed calls per
backend; ``scans.multiproc`` uses them too), ``direct_shapes`` (drawn input sizes), ``directio``
(direct.json and direct.csv), ``cli`` (argparse).
"""

"""``saturate scan server``: the concurrency x batch grid against a Triton server.

``server_scan`` (levels through a ``scans.engines.LevelEngine``, ``--resume``, signals), ``serverproc``
(a ``saturate serve`` subprocess on free loopback ports; the tests use it too), ``scanio`` (the result
directory: scan.json, b<N>.csv, the monitor's evidence per level), ``progress`` (one line per level),
``cli`` (argparse).
"""

"""``saturate tune``: the best PyTriton serving configuration under a latency budget.

Modules: :mod:`~scans.tune.space` (candidate server configurations, checked against the model's
limits), :mod:`~scans.tune.validity` (when a tail-latency claim has enough samples),
:mod:`~scans.tune.search` (the concurrency search per client batch, and the grid/quick candidate
searches), :mod:`~scans.tune.pareto` (the throughput/tail-latency front), :mod:`~scans.tune.output`
(tune.json, ranked table, winner command, Pareto PNG, report section), :mod:`~scans.tune.runner`
(servers, levels, resume, signals), :mod:`~scans.tune.cli` (argparse).
"""

"""``saturate scan multiproc``: N pinned, spawned processes, each running one workload between barriers.

``multiproc_scan`` (the parent: spawn, barriers that time out, results), ``topology`` (CPU/GPU/NUMA
placement), ``workloads`` (direct inference or a loadgen client in a child), ``mpstats``
(own/effective/adjusted throughput), ``cli`` (argparse).
"""

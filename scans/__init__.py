"""Scans and reports: the layer that runs the measurements users ask for and shows them.

- ``scans.direct`` — ``saturate scan direct``: in-process batch scan through the servers backends
  (device-synchronised timing, warm-up by count and time, sync/async, OOM ends the scan cleanly);
  statistics in ``scans.stats``, timed calls in ``scans.runners``, files in ``scans.directio``.
- ``scans.server_scan`` — ``saturate scan server``: concurrency x batch grid through a
  ``scans.engines.LevelEngine`` (loadgen in-process by default), the monitor beside it, a server of its
  own with ``--serve`` (``scans.serverproc``), ``--resume``; verdicts and the knee in ``scans.verdict``,
  the result directory in ``scans.scanio``, progress in ``scans.progress``, flags in ``scans.server_cli``.
- ``scans.report`` — ``saturate report DIR``: reads run JSON (``saturate.run/1``), perf_analyzer
  CSVs and monitor CSVs (``scans.sources``), draws PNG plots (``scans.plots``) and writes one
  self-contained HTML page (``scans.html``).
- ``scans.demo`` — ``saturate demo``: direct scan, served-model scan with the monitor, report.
- ``scans.multiproc`` — ``saturate scan multiproc``: N pinned, spawned processes (``scans.topology``)
  each running a workload (``scans.workloads``: direct inference or a loadgen client) between barriers
  that time out; own/effective/adjusted throughput in ``scans.mpstats``, flags in ``scans.multiproc_cli``.
- ``scans.sweep`` — ``saturate sweep SPEC``: specs, ``${}`` references and overrides in ``scans.spec``,
  one subprocess per experiment, ``sweep.jsonl``; ``scans.scaling``: DLBS exploration/strong/weak tables.
- ``scans.pa_engine`` — perf_analyzer as an engine (``scans.pa_args`` builds its command line, from PATH
  or ``apptainer exec``; ``scans.pa_console`` reads its console) and ``saturate pa`` (``scans.pa_cli``).
- ``scans.jobs`` — ``saturate job render|submit``: the Slurm templates in ``scans/jobs/``;
  ``scans.merge`` — ``saturate merge``: rank results pooled into one run (``scans.job_cli``).

The only package that imports the other three (servers, loadgen, monitors).
"""

"""Scans, reports and batch jobs: one sub-package per command, each with its own ``cli.py``.

- ``scans.direct`` — ``saturate scan direct``: in-process batch scan through the servers backends.
- ``scans.server`` — ``saturate scan server``: concurrency x batch grid against a Triton server.
- ``scans.multiproc`` — ``saturate scan multiproc``: N pinned, spawned processes between barriers.
- ``scans.sweep`` — ``saturate sweep SPEC``: a plan of experiments, one subprocess each.
- ``scans.jobs`` — ``saturate job render|submit``, ``saturate merge``: Slurm templates, rank merging.
- ``scans.report`` — ``saturate report DIR``: plots, headline, scaling tables, one report.html.
- ``scans.demo`` — ``saturate demo``: direct scan, served-model scan with the monitor, report.
- ``scans.compare`` — ``saturate compare``; ``scans.tune`` — ``saturate tune``.
- ``scans.perf_analyzer`` — ``saturate pa`` and perf_analyzer as a level engine.

Shared by several commands, at this level: ``scans.engines`` (the ``LevelEngine`` protocol: loadgen
in-process or perf_analyzer), ``scans.analysis`` (the knee; each level's verdict is ``loadgen.verdict``),
``scans.flags`` (batch and concurrency flag grammar). ``scans.cli`` only wires the sub-packages into
the front door.
"""

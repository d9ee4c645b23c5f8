"""``saturate job render|submit`` and ``saturate merge``: Slurm batch jobs and their results.

``slurm`` (template parameters, rendering, ``sbatch`` submission), ``templates/`` (the ``*.sbatch``
job scripts and ``common.sh``, shipped as package data), ``cli`` (argparse for ``pa``, ``job`` and
``merge``; the merge itself is ``scans.jobs.merge``).
"""

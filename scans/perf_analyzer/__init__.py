"""``saturate pa`` and perf_analyzer as a level engine (``scan server --engine perf_analyzer``).

``args`` (finding the binary, the command line built from a ``LoadConfig``, apptainer), ``console``
(its console text: counts, failure messages), ``export`` (``--profile-export-file`` read into levels and
``pa.npz``), ``engine`` (one perf_analyzer run per level, its CSV read into a level, failures flagged with
its own words), ``cli`` (argparse and ``saturate pa``).
"""

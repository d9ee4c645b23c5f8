"""``saturate sweep SPEC``: every experiment of a plan, one subprocess each, logged as ``sweep.jsonl``.

``spec`` (specs, ``${}`` references, overrides, expansion), ``sweep`` (running and resuming the plan),
``cli`` (argparse).
"""

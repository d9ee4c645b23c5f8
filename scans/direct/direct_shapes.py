"""The direct scan's input pool under a shape distribution (`--shape-dist`/`--dim-dist`/`--dims-file`,
the same flags and draws as `saturate load` and `scan server`), so the saturation ratio compares like
with like: the drawn symbols map onto the zoo spec's named dims (ParticleNet's ``P`` and ``S``).
"""

from __future__ import annotations

from collections.abc import Mapping

from loadgen.shapes import ShapeDist
from saturate.errors import ConfigError
from servers.models import ModelSpec

#: Pool size under a distribution (each entry one draw for the whole batch, cycled over the trials).
DIST_POOL = 64


def symbol_sizes(spec: ModelSpec, dist: ShapeDist) -> dict[str, str]:
    """Which of the spec's named dims every symbol sets (one-line error where they do not fit)."""
    tensors = {t.name: t for t in spec.inputs}
    out: dict[str, str] = {}
    for name, dims in dist.templates:
        t = tensors.get(name)
        if t is None:
            raise ConfigError(f"--shape-dist {name}: model {spec.name!r} has no such input; inputs: "
                              + ", ".join(tensors))
        if len(dims) != len(t.shape):
            raise ConfigError(f"--shape-dist {name}: rank {len(dims)}, the model's is {len(t.shape)}")
        for d, m in zip(dims, t.shape, strict=True):
            if isinstance(d, str) and isinstance(m, str):
                if out.setdefault(d, m) != m:
                    raise ConfigError(f"symbol {d!r} sets both {out[d]!r} and {m!r} of {spec.name!r}")
            elif isinstance(d, str) or d != m:
                raise ConfigError(f"--shape-dist {name}: dims {list(dims)} do not fit the model's "
                                  f"{list(t.shape)} (draw only its variable dims)")
    return out


def pool_sizes(spec: ModelSpec, dist: ShapeDist | None, base: Mapping[str, int], seed: int,
               pool: int) -> list[dict[str, int]]:
    """The sizes of every input set in the pool: `base` when no distribution, else one draw each."""
    if dist is None:
        return [dict(base) for _ in range(pool)]
    names = symbol_sizes(spec, dist)
    rows = dist.draw(seed, max(pool, DIST_POOL))
    return [{**base, **{names[s]: int(v) for s, v in zip(dist.symbols, row, strict=True)}} for row in rows]

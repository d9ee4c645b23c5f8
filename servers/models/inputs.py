"""Synthetic inputs with realistic 0/1 masks and zero padding."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from servers.models.specs import Array


def masked_candidates(
    batch: int,
    channels_points: int,
    channels_features: int,
    size: int,
    rng: np.random.Generator,
    min_real: int,
) -> tuple[Array, Array, Array]:
    """Points ``[B, cp, n]``, features ``[B, cf, n]`` and mask ``[B, 1, n]`` for one candidate collection.

    Each item has a random number of real candidates in ``[min(min_real, n), n]`` at the front; the rest
    is padding: mask 0 and zero points/features, as a jet with fewer particles than ``n`` would be.
    """
    low = min(min_real, size)
    counts = rng.integers(low, size + 1, size=batch)
    mask = (np.arange(size)[None, :] < counts[:, None]).astype(np.float32)[:, None, :]
    points = (0.3 * rng.standard_normal((batch, channels_points, size))).astype(np.float32) * mask
    features = rng.standard_normal((batch, channels_features, size)).astype(np.float32) * mask
    return points, features, mask


def particlenet_inputs(batch: int, sizes: Mapping[str, int], rng: np.random.Generator) -> dict[str, Array]:
    """The six ParticleNet inputs for ``P = sizes['P']`` PF and ``S = sizes['S']`` SV slots."""
    pf_points, pf_features, pf_mask = masked_candidates(
        batch, 2, 20, sizes["P"], rng, min_real=sizes["P"] // 3
    )
    sv_points, sv_features, sv_mask = masked_candidates(batch, 2, 11, sizes["S"], rng, min_real=0)
    return {
        "pf_points": pf_points,
        "pf_features": pf_features,
        "pf_mask": pf_mask,
        "sv_points": sv_points,
        "sv_features": sv_features,
        "sv_mask": sv_mask,
    }


def dense_inputs(batch: int, features: int, rng: np.random.Generator) -> dict[str, Array]:
    """Standard-normal ``input [B, F]`` for the MLP."""
    return {"input": rng.standard_normal((batch, features)).astype(np.float32)}

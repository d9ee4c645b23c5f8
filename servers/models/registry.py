"""The model zoo: name → :class:`ModelSpec` (tensors, default sizes, builder, input generator)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from saturate.errors import ModelError
from servers.models.inputs import dense_inputs, particlenet_inputs
from servers.models.mlp import build_mlp
from servers.models.particlenet import NUM_CLASSES, build_particlenet
from servers.models.specs import Array, ModelOptions, ModelSpec, TensorSpec

MODEL_NAMES: tuple[str, ...] = ("particlenet", "mlp")


def _particlenet(options: ModelOptions) -> ModelSpec:
    def build(opts: ModelOptions) -> torch.nn.Module:
        return build_particlenet(opts.seed)

    return ModelSpec(
        name="particlenet",
        description="ParticleNet AK4 (CMS): EdgeConv k=8, 6 FP32 inputs with variable point counts",
        inputs=(
            TensorSpec("pf_points", (2, "P")),
            TensorSpec("pf_features", (20, "P")),
            TensorSpec("pf_mask", (1, "P")),
            TensorSpec("sv_points", (2, "S")),
            TensorSpec("sv_features", (11, "S")),
            TensorSpec("sv_mask", (1, "S")),
        ),
        outputs=(TensorSpec("softmax", (NUM_CLASSES,)),),
        default_sizes={"P": 100, "S": 10},
        build=build,
        synthesize=particlenet_inputs,
        dynamic_axes={"P": "n_pf", "S": "n_sv"},
    )


def _mlp(options: ModelOptions) -> ModelSpec:
    def build(opts: ModelOptions) -> torch.nn.Module:
        return build_mlp(opts.mlp_features, opts.mlp_hidden, opts.mlp_classes, opts.seed)

    def synthesize(batch: int, sizes: Mapping[str, int], rng: np.random.Generator) -> dict[str, Array]:
        return dense_inputs(batch, options.mlp_features, rng)

    hidden = ",".join(str(h) for h in options.mlp_hidden)
    return ModelSpec(
        name="mlp",
        description=f"MLP {options.mlp_features}→[{hidden}]→{options.mlp_classes} (FP32)",
        inputs=(TensorSpec("input", (options.mlp_features,)),),
        outputs=(TensorSpec("output", (options.mlp_classes,)),),
        default_sizes={},
        build=build,
        synthesize=synthesize,
    )


def get_spec(name: str, options: ModelOptions | None = None) -> ModelSpec:
    """The spec of zoo model ``name``; an unknown name is a :class:`ModelError`."""
    opts = options or ModelOptions()
    if name == "particlenet":
        return _particlenet(opts)
    if name == "mlp":
        return _mlp(opts)
    raise ModelError(f"unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}")


def build_model(spec: ModelSpec, options: ModelOptions | None = None) -> torch.nn.Module:
    """The zoo model in eval mode with weights from the options' seed."""
    return spec.build(options or ModelOptions()).eval()


def synthetic_inputs(
    spec: ModelSpec, batch: int, sizes: Mapping[str, int] | None = None, seed: int = 0
) -> dict[str, Array]:
    """Inputs for ``batch`` items, keyed by tensor name, at the spec's sizes with ``sizes`` overrides."""
    if batch < 1:
        raise ModelError(f"batch size {batch} must be at least 1")
    return spec.synthesize(batch, spec.sizes(sizes), np.random.default_rng(seed))

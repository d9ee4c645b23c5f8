"""Tensor and model specifications: names, dtypes, shapes with named variable dimensions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from saturate.errors import ConfigError

Array = npt.NDArray[Any]
"""Any numpy array (the dtype is checked at run time, not by mypy)."""


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a model, per item (the batch dimension is not part of ``shape``).

    A ``str`` entry in ``shape`` names a variable dimension (``"P"``), whose size comes from the
    model's sizes; :attr:`triton_shape` shows it as ``-1``.
    """

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"

    @property
    def triton_shape(self) -> tuple[int, ...]:
        return tuple(-1 if isinstance(d, str) else d for d in self.shape)

    @property
    def numpy_dtype(self) -> np.dtype[np.generic]:
        return np.dtype(self.dtype)

    def concrete_shape(self, sizes: Mapping[str, int]) -> tuple[int, ...]:
        """Per-item shape with every named dimension replaced by its size."""
        return tuple(sizes[d] if isinstance(d, str) else d for d in self.shape)


@dataclass(frozen=True)
class ModelOptions:
    """Sizes that shape a zoo model (only the MLP has any today) and the weight seed."""

    mlp_features: int = 16
    mlp_hidden: tuple[int, ...] = (64, 64)
    mlp_classes: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mlp_features < 1 or self.mlp_classes < 1 or any(h < 1 for h in self.mlp_hidden):
            raise ConfigError(
                "MLP sizes must be positive integers (see --mlp-features/--mlp-hidden/--mlp-classes)"
            )


Synthesizer = Callable[[int, Mapping[str, int], np.random.Generator], dict[str, Array]]


@dataclass(frozen=True)
class ModelSpec:
    """A zoo model: its tensors, default variable sizes, how to build it and make inputs."""

    name: str
    description: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    default_sizes: Mapping[str, int]
    build: Callable[[ModelOptions], torch.nn.Module]
    synthesize: Synthesizer
    dynamic_axes: Mapping[str, str] = field(default_factory=dict)
    """Variable dimension name → axis name used in exported graphs (``P`` → ``n_pf``)."""

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)

    def sizes(self, overrides: Mapping[str, int] | None = None) -> dict[str, int]:
        """Default variable sizes with ``overrides`` applied; unknown names are an error."""
        sizes = dict(self.default_sizes)
        for key, value in (overrides or {}).items():
            if key not in sizes:
                raise ConfigError(
                    f"model {self.name} has no variable size {key!r}; it has {sorted(sizes) or 'none'}"
                )
            if value < 1:
                raise ConfigError(f"size {key}={value} must be at least 1")
            sizes[key] = value
        return sizes

"""The model zoo: ParticleNet AK4 and a small MLP, their tensor specs and synthetic inputs."""

from servers.models.registry import MODEL_NAMES, build_model, get_spec, synthetic_inputs
from servers.models.specs import Array, ModelOptions, ModelSpec, TensorSpec

__all__ = [
    "MODEL_NAMES",
    "Array",
    "ModelOptions",
    "ModelSpec",
    "TensorSpec",
    "build_model",
    "get_spec",
    "synthetic_inputs",
]

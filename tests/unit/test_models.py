"""The model zoo: shapes, softmax, masking, seeded weights, synthetic inputs, registry errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saturate.errors import ConfigError, ModelError
from servers.models import ModelOptions, build_model, get_spec, synthetic_inputs
from servers.models.particlenet import ParticleNetAK4


def run(model: torch.nn.Module, names: tuple[str, ...], arrays: dict[str, np.ndarray]) -> np.ndarray:
    with torch.inference_mode():
        out: np.ndarray = model(*(torch.from_numpy(arrays[n]) for n in names)).numpy()
    return out


@pytest.fixture(scope="module")
def particlenet() -> torch.nn.Module:
    return build_model(get_spec("particlenet"))


@pytest.mark.parametrize(("batch", "points", "svs"), [(1, 100, 10), (5, 37, 4), (3, 8, 1)])
def test_particlenet_output_is_a_softmax_per_item(
    particlenet: torch.nn.Module, batch: int, points: int, svs: int
) -> None:
    spec = get_spec("particlenet")
    out = run(particlenet, spec.input_names, synthetic_inputs(spec, batch, {"P": points, "S": svs}))
    assert out.shape == (batch, 8)
    assert np.all(out > 0)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    assert out.max() - out.min() > 0.05, "class probabilities should not be near-uniform"


def test_particlenet_architecture_matches_the_ak4_design() -> None:
    model = ParticleNetAK4()
    assert [getattr(b, "k", None) for b in model.edge_convs] == [8, 8, 8]
    convs = [[m.out_channels for m in b.convs if isinstance(m, torch.nn.Conv2d)] for b in model.edge_convs]
    assert convs == [[64, 64, 64], [96, 96, 96], [128, 128, 128]]
    fusion = model.fusion[0]
    assert isinstance(fusion, torch.nn.Conv1d) and (fusion.in_channels, fusion.out_channels) == (288, 256)
    linears = [m for m in model.fc if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(256, 128), (128, 8)]
    dropout = [m for m in model.fc if isinstance(m, torch.nn.Dropout)]
    assert len(dropout) == 1 and dropout[0].p == pytest.approx(0.1)


def test_padded_points_masked_out_do_not_change_the_output(particlenet: torch.nn.Module) -> None:
    spec = get_spec("particlenet")
    base = synthetic_inputs(spec, 4, {"P": 40, "S": 5}, seed=3)
    rng = np.random.default_rng(7)
    padded = {}
    for name, arr in base.items():
        extra = 25 if name.startswith("pf") else 6
        fill = np.zeros if name.endswith("mask") else rng.standard_normal
        pad = np.asarray(fill((arr.shape[0], arr.shape[1], extra)), dtype=np.float32)
        padded[name] = np.concatenate([arr, pad], axis=2)
    # also scribble over the padding that is already inside the base inputs
    for kind in ("pf", "sv"):
        hole = padded[f"{kind}_mask"] == 0
        for what in ("points", "features"):
            arr = padded[f"{kind}_{what}"]
            arr[np.broadcast_to(hole, arr.shape)] = 5.0
    np.testing.assert_allclose(
        run(particlenet, spec.input_names, padded), run(particlenet, spec.input_names, base), atol=1e-5
    )


def test_masked_points_matter_when_unmasked(particlenet: torch.nn.Module) -> None:
    spec = get_spec("particlenet")
    base = synthetic_inputs(spec, 2, {"P": 30, "S": 3}, seed=4)
    opened = {k: v.copy() for k, v in base.items()}
    opened["pf_mask"][:] = 1.0
    opened["pf_features"] += 1.0
    assert not np.allclose(
        run(particlenet, spec.input_names, opened), run(particlenet, spec.input_names, base)
    )


def test_weights_follow_the_seed() -> None:
    spec = get_spec("particlenet")
    x = synthetic_inputs(spec, 2)
    a = run(build_model(spec, ModelOptions(seed=0)), spec.input_names, x)
    b = run(build_model(spec, ModelOptions(seed=0)), spec.input_names, x)
    c = run(build_model(spec, ModelOptions(seed=1)), spec.input_names, x)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_synthetic_inputs_have_01_masks_and_zero_padding() -> None:
    spec = get_spec("particlenet")
    x = synthetic_inputs(spec, 64, {"P": 50, "S": 6}, seed=5)
    for t in spec.inputs:
        assert x[t.name].shape == (64, *t.concrete_shape({"P": 50, "S": 6}))
        assert x[t.name].dtype == np.float32
    for kind, size in (("pf", 50), ("sv", 6)):
        mask = x[f"{kind}_mask"]
        assert set(np.unique(mask)) <= {0.0, 1.0}
        counts = mask.sum(axis=(1, 2))
        assert counts.min() >= (size // 3 if kind == "pf" else 0) and counts.max() <= size
        assert len(np.unique(counts)) > 1, "jets should have different numbers of candidates"
        assert np.all(np.diff(mask, axis=2) <= 0), "real candidates come first, padding after"
        for what in ("points", "features"):
            assert np.all(x[f"{kind}_{what}"][np.broadcast_to(mask == 0, x[f"{kind}_{what}"].shape)] == 0)
    defaults = synthetic_inputs(spec, 1)
    assert defaults["pf_points"].shape == (1, 2, 100) and defaults["sv_points"].shape == (1, 2, 10)


def test_mlp_is_configurable() -> None:
    options = ModelOptions(mlp_features=5, mlp_hidden=(7,), mlp_classes=3)
    spec = get_spec("mlp", options)
    assert [t.triton_shape for t in spec.inputs] == [(5,)] and spec.output_names == ("output",)
    x = synthetic_inputs(spec, 4)
    assert x["input"].shape == (4, 5)
    assert run(build_model(spec, options), spec.input_names, x).shape == (4, 3)


def test_specs_carry_the_served_names_and_variable_dims() -> None:
    spec = get_spec("particlenet")
    assert spec.input_names == ("pf_points", "pf_features", "pf_mask", "sv_points", "sv_features", "sv_mask")
    assert [t.triton_shape for t in spec.inputs] == [(2, -1), (20, -1), (1, -1), (2, -1), (11, -1), (1, -1)]
    assert spec.output_names == ("softmax",) and spec.outputs[0].triton_shape == (8,)
    assert dict(spec.default_sizes) == {"P": 100, "S": 10}


def test_registry_errors_name_the_fix() -> None:
    with pytest.raises(ModelError, match="particlenet, mlp"):
        get_spec("resnet")
    with pytest.raises(ConfigError, match="no variable size 'Q'"):
        synthetic_inputs(get_spec("particlenet"), 1, {"Q": 3})
    with pytest.raises(ModelError, match="at least 1"):
        synthetic_inputs(get_spec("mlp"), 0)
    with pytest.raises(ConfigError):
        ModelOptions(mlp_hidden=(0,))

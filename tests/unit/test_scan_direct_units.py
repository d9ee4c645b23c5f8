"""Direct scan in-process on the real MLP (torch and ONNX Runtime on the CPU): files, levels, OOM, config."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from loadgen.result import SCHEMA, LevelResult
from saturate.errors import BackendError, ConfigError, ModelError
from scans.direct.direct_scan import DirectConfig, run_direct_scan
from scans.direct.directio import CSV_HEADER
from scans.direct.runners import InferRunner, is_oom, make_runner
from servers.backends import BackendConfig, load_backend
from servers.models import get_spec


def _cfg(**kw: object) -> DirectConfig:
    base: dict[str, object] = {"model": "mlp", "batch_sizes": (1, 8), "trials": 6, "warmup_trials": 2,
                               "warmup_ns": 0}
    base.update(kw)
    return DirectConfig(**base)  # type: ignore[arg-type]


def test_sync_scan_writes_json_and_csv(tmp_path: Path) -> None:
    err = io.StringIO()
    levels = run_direct_scan(_cfg(), tmp_path, progress=err)
    assert [lv.batch_size for lv in levels] == [1, 8]
    doc = json.loads((tmp_path / "direct.json").read_text())
    assert doc["schema"] == SCHEMA
    assert doc["config"]["model"] == "mlp" and doc["config"]["trials"] == 6
    assert doc["env"]["torch"] and "cpu" in doc["env"]
    assert len(doc["levels"]) == 2
    for raw, batch in zip(doc["levels"], (1, 8), strict=True):
        lv = LevelResult.from_dict(raw)  # readable as a standard level
        assert lv.mode == "direct" and lv.batch_size == batch and lv.concurrency == 1 and lv.stable
        d = raw["direct"]
        assert d["status"] == "ok" and d["trials"] == 6 and d["warmup_trials"] == 2
        assert d["min_us"] <= d["median_us"] <= d["p95_us"] <= d["max_us"]
        assert d["sem_us"] == pytest.approx(d["std_us"] / 6**0.5, rel=1e-3, abs=1e-3)
        # items/s = trials * batch / total time (sync: total time = trials * mean)
        assert d["items_per_s"] == pytest.approx(batch * 1e6 / d["mean_us"], rel=1e-3)
        assert lv.throughput.infer_per_s == d["items_per_s"]
        assert lv.latency.count == 6
    rows = list(csv.reader((tmp_path / "direct.csv").read_text().splitlines()))
    assert tuple(rows[0]) == CSV_HEADER
    assert [r[0] for r in rows[1:]] == ["1", "8"]
    lines = err.getvalue().splitlines()
    assert any("batch     8" in ln and "items/s" in ln for ln in lines)


def test_warmup_runs_until_both_count_and_time(tmp_path: Path) -> None:
    levels = run_direct_scan(_cfg(batch_sizes=(4,), warmup_trials=1, warmup_ns=200_000_000), tmp_path,
                             progress=io.StringIO())
    assert levels[0].warmup_ns >= 200_000_000
    assert levels[0].warmup_trials > 1


def test_async_scan_keeps_batches_in_flight(tmp_path: Path) -> None:
    levels = run_direct_scan(_cfg(batch_sizes=(16,), mode="async", in_flight=3, trials=12), tmp_path,
                             progress=io.StringIO())
    s = levels[0].summary
    assert s is not None and s.n == 12
    assert s.avg_time_ns == pytest.approx(s.wall_ns / 12)
    assert s.items_per_s == pytest.approx(12 * 16 * 1e9 / s.wall_ns)
    doc = json.loads((tmp_path / "direct.json").read_text())
    assert doc["levels"][0]["concurrency"] == 3
    assert doc["levels"][0]["direct"]["mode"] == "async"


def test_onnx_backend_scan(tmp_path: Path) -> None:
    levels = run_direct_scan(_cfg(backend="onnx", batch_sizes=(2,)), tmp_path, progress=io.StringIO())
    assert levels[0].status == "ok"
    assert "onnx" in json.loads((tmp_path / "direct.json").read_text())["config"]["backend_describe"]


def test_out_of_memory_ends_the_scan_cleanly(tmp_path: Path) -> None:
    # 2**40 MLP items need 64 TiB of input: numpy's real allocation fails with MemoryError.
    err = io.StringIO()
    levels = run_direct_scan(_cfg(batch_sizes=(1, 2**40, 2)), tmp_path, progress=err)
    assert [lv.status for lv in levels] == ["ok", "oom"]
    doc = json.loads((tmp_path / "direct.json").read_text())
    assert [lv["batch_size"] for lv in doc["levels"]] == [1, 2**40]
    oom = doc["levels"][1]
    assert oom["direct"]["status"] == "oom" and oom["direct"]["error"]
    assert oom["stable"] is False and oom["verdict"]["valid"] is False
    LevelResult.from_dict(oom)
    assert "out of memory" in err.getvalue()


def test_is_oom() -> None:
    with pytest.raises(MemoryError) as info:
        bytearray(2**62)
    assert is_oom(info.value)
    assert is_oom(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not is_oom(ValueError("shape mismatch"))


def test_cpu_backend_gets_the_plain_runner() -> None:
    spec = get_spec("mlp")
    backend = load_backend(spec, BackendConfig(kind="torch", device="cpu"))
    runner = make_runner(backend, "cpu")
    assert isinstance(runner, InferRunner)
    assert runner.peak_bytes() is None


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"batch_sizes": ()}, ConfigError),
        ({"batch_sizes": (4, 0)}, ConfigError),
        ({"trials": 1}, ConfigError),
        ({"mode": "sync", "in_flight": 2}, ConfigError),
        ({"mode": "fast"}, ConfigError),
        ({"warmup_trials": -1}, ConfigError),
    ],
)
def test_bad_config(kw: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        _cfg(**kw)


def test_bad_backend_model_and_sizes(tmp_path: Path) -> None:
    with pytest.raises(BackendError):
        run_direct_scan(_cfg(backend="tensorflow"), tmp_path, progress=io.StringIO())
    with pytest.raises(ModelError):
        run_direct_scan(_cfg(model="resnet"), tmp_path, progress=io.StringIO())
    with pytest.raises(ConfigError):
        run_direct_scan(_cfg(sizes={"P": 10}), tmp_path, progress=io.StringIO())  # the MLP has no P
    assert not (tmp_path / "direct.json").exists()

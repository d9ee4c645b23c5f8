"""``saturate scan direct`` and ``saturate report`` through the real front door (subprocesses)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import run_cli

from loadgen.result import SCHEMA

pytestmark = pytest.mark.integration


def test_mlp_batch_range(tmp_path: Path) -> None:
    out = tmp_path / "mlp"
    done = run_cli("scan", "direct", "--model", "mlp", "--batch-range", "1:8", "--trials", "10",
                   "--warmup-trials", "3", "--warmup-seconds", "0.1", "--out", str(out), timeout=120)
    assert done.returncode == 0, done.stderr
    doc = json.loads((out / "direct.json").read_text())
    assert doc["schema"] == SCHEMA
    assert [lv["batch_size"] for lv in doc["levels"]] == [1, 2, 4, 8]
    assert all(lv["mode"] == "direct" and lv["direct"]["trials"] == 10 for lv in doc["levels"])
    progress = [ln for ln in done.stderr.splitlines() if ln.startswith("scan direct: batch")]
    assert len(progress) == 4
    rows = list(csv.DictReader((out / "direct.csv").read_text().splitlines()))
    assert [int(r["batch_size"]) for r in rows] == [1, 2, 4, 8]
    assert all(float(r["items_per_s"]) > 0 and float(r["sem_us"]) >= 0 for r in rows)


def test_particlenet_torchscript_with_sizes(tmp_path: Path) -> None:
    out = tmp_path / "pnet"
    done = run_cli("scan", "direct", "--model", "particlenet", "--backend", "torchscript",
                   "--batch-sizes", "1,2", "--trials", "4", "--warmup-trials", "1", "--warmup-seconds", "0",
                   "--points", "30", "--svs", "4", "--mode", "async", "--in-flight", "2", "--out", str(out),
                   timeout=120)
    assert done.returncode == 0, done.stderr
    doc = json.loads((out / "direct.json").read_text())
    assert doc["config"]["sizes"] == {"P": 30, "S": 4}
    assert doc["config"]["backend_describe"].startswith("torchscript")
    assert [lv["direct"]["status"] for lv in doc["levels"]] == ["ok", "ok"]
    assert all(lv["concurrency"] == 2 for lv in doc["levels"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--batch-sizes", ""], "batch list is empty"),
        (["--batch-sizes", "4,0"], "must be at least 1"),
        (["--batch-range", "8:2"], "LO <= HI"),
        (["--backend", "tensorflow"], "unknown backend"),
        (["--model", "resnet"], "unknown model"),
        (["--mode", "sync", "--in-flight", "2"], "--in-flight needs --mode async"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    done = run_cli("scan", "direct", "--model", "mlp", *args, "--out", str(tmp_path / "x"), timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], done.stderr
    assert not (tmp_path / "x" / "direct.json").exists()


def test_report_on_another_schema_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"schema": "other/1"}))
    done = run_cli("report", str(tmp_path), timeout=60)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "other/1" in done.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    done = run_cli("report", str(empty), timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1

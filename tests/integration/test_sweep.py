"""``saturate sweep`` through the front door: tiny direct scans, a failing and a timed-out experiment,
resume, dry-run, bad specs, and ``saturate report`` on the sweep directory (scaling section)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

pytestmark = pytest.mark.integration

SPEC = """
command: scan direct
timeout: 120
parameters:
  model: mlp
  trials: 3
  warmup_trials: 1
  warmup_seconds: 0
  batch_sizes: 2
  exp.label: "${model}/${backend}"
variables:
  backend: [torch, nosuchbackend]
"""


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in path.read_text().splitlines()]


def _main(*args: str) -> tuple[int, str, str]:
    from saturate.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue().strip()


def test_sweep_runs_records_fails_and_resumes(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "sw"
    first = run_cli("sweep", str(spec), "--out", str(out), timeout=240)
    assert first.returncode == 1, first.stderr  # one experiment failed, the sweep went on
    recs = _lines(out / "sweep.jsonl")
    assert [r["params"]["backend"] for r in recs] == ["torch", "nosuchbackend"]
    ok, bad = recs
    assert ok["status"] == "ok" and ok["returncode"] == 0 and ok["error"] is None
    assert ok["params"]["exp.label"] == "mlp/torch"
    assert ok["argv"][:3] == ["saturate", "scan", "direct"] and "--backend" in ok["argv"]
    assert ok["results"]["batch_size"] == 2 and ok["results"]["items_per_s"] > 0
    assert (Path(ok["dir"]) / "direct.json").is_file() and (Path(ok["dir"]) / "log.txt").is_file()
    assert bad["status"] == "failed" and bad["returncode"] == 2
    assert "unknown backend 'nosuchbackend'" in bad["error"]

    # resume: the finished experiment is skipped, the failed one runs again (--rerun onfail)
    code, _, err = _main("sweep", str(spec), "--out", str(out), "-V", "backend=nosuchbackend,torch")
    assert code == 1
    assert "skipped (ok before" in err
    recs = _lines(out / "sweep.jsonl")
    assert len(recs) == 3 and recs[2]["id"] == bad["id"] and recs[2]["status"] == "failed"

    # dry-run: the plan with what would run, nothing run
    code, plan, _ = _main("sweep", str(spec), "--out", str(out), "--dry-run", "-V",
                          "backend=torch,nosuchbackend,onnx")
    assert code == 0
    rows = plan.strip().splitlines()
    assert len(rows) == 4 and rows[-1].startswith("3 experiments, 2 to run")
    assert [r.split()[2] for r in rows[:3]] == ["skip", "run", "run"]
    assert "--backend onnx" in rows[2] and not (out / "runs" / rows[2].split()[1]).exists()
    assert len(_lines(out / "sweep.jsonl")) == 3

    # --rerun never: nothing runs at all
    code, _, err = _main("sweep", str(spec), "--out", str(out), "--rerun", "never")
    assert code == 0 and err.count(": skipped (") == 2 and "0 run, 0 failed, 2 skipped" in err

    # report on the sweep directory: scaling tables from sweep.jsonl
    code, _, err = _main("report", str(out))
    assert code == 0, err
    html = (out / "report.html").read_text()
    assert "<h2>Scaling</h2>" in html and "Exploration: Items per second" in html
    assert (out / "scaling.csv").read_text().splitlines()[1].startswith("exploration,mlp,cpu,2,1,")


def test_timeout_is_recorded(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"command": "scan direct", "timeout": 1,
                                "parameters": {"model": "mlp", "trials": 100000, "batch_sizes": 1}}))
    out = tmp_path / "sw"
    code, _, err = _main("sweep", str(spec), "--out", str(out))
    assert code == 1, err
    (rec,) = _lines(out / "sweep.jsonl")
    assert rec["status"] == "timeout" and "within 1 s" in rec["error"]


@pytest.mark.parametrize("text, match", [
    ("command: scan direct\nparameters: {a: [1, 2}\n", "not valid YAML"),
    ("command: scan direct\nparameters: {a: '${missing}'}\n", "unknown reference ${missing}"),
    ("command: scan direct\nparameters: {a: '${b}', b: 'x${a}'}\n", "circular reference"),
])
def test_bad_specs_are_one_line(tmp_path: Path, text: str, match: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    code, _, err = _main("sweep", str(spec), "--out", str(tmp_path / "sw"), "--dry-run")
    assert code == 2
    assert "\n" not in err and match in err and err.startswith("saturate: error:")

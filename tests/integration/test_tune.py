"""``saturate tune`` against real PyTriton servers (MLP on the CPU), through the front door.

- a 3-candidate grid, interrupted by SIGINT after its first candidate and finished with --resume;
- a quick search whose first candidate's server is killed mid-measurement (recorded, search goes on);
- -u URL against one module-scoped server: client-only tune, and a budget below the fastest request.
Short windows (-p 500, 3 windows), concurrency up to 2, a loose tail rule (206 samples for p95).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, ServerProcess, run_cli, start_server

pytestmark = pytest.mark.integration

FAST = ("-m", "mlp", "--latency-budget-ms", "200", "-p", "500", "-r", "3", "-s", "1000",
        "--tail-confidence", "0.9", "--tail-margin", "2.5", "--max-concurrency", "2",
        "--warmup-request-count", "20")


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    s = start_server("mlp", ["--max-batch", "8"])
    yield s
    s.stop()


def popen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "saturate", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read(out: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads((out / "tune.json").read_text())
        return doc
    except (OSError, ValueError):
        return {}


def wait_for(out: Path, proc: subprocess.Popen[str], pred: Any, timeout: float = 150) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = read(out)
        if doc and pred(doc):
            return doc
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"timed out; tune.json: {read(out)}")


def check_outputs(out: Path, stdout: str) -> dict[str, Any]:
    doc = read(out)
    assert doc["format"] == "saturate.tune/1"
    assert doc["winner"] is not None, stdout
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert "Tune: best serving configuration" in html and "tune_pareto" in html
    assert "serve: saturate serve --model mlp --backend torch --device cpu --instances" in stdout
    assert "ModelConfig(max_batch_size=" in stdout and "DynamicBatcher(" in stdout
    w = doc["winner"]
    assert f"--concurrency-range {w['concurrency']}:{w['concurrency']}:1" in w["commands"]["load"]
    assert w["tail_ms"] <= 200
    return doc


def test_grid_interrupted_then_resumed(tmp_path: Path) -> None:
    out = tmp_path / "grid"
    args = ("tune", *FAST, "--instances", "1,2", "--max-queue-delay-us", "0,500", "--max-candidates", "3",
            "--confirm-runs", "2", "--out", str(out))
    proc = popen(*args)
    doc = wait_for(out, proc, lambda d: any(r["status"] == "measured" for r in d["candidates"])
                   and len(d["candidates"]) >= 2 and d["candidates"][-1].get("levels"))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    doc = read(out)
    first = doc["candidates"][0]
    assert first["status"] == "measured" and first["levels"]
    assert doc["candidates"][1]["status"] == "interrupted" and doc["candidates"][1]["levels"]  # kept
    assert "rerun with --resume" in err
    again = run_cli(*args, timeout=240)
    assert again.returncode == 2 and "--resume" in again.stderr  # an existing tune.json needs --resume
    done = run_cli(*args, "--resume", timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = check_outputs(out, done.stdout)
    names = [r["candidate"]["name"] for r in doc["candidates"]]
    assert names == ["i1_mb64_d0_pnone", "i1_mb64_d500_pnone", "i2_mb64_d0_pnone"]
    assert doc["candidates"][0]["levels"] == first["levels"]  # skipped, not measured again
    assert all(r["status"] in ("measured", "never_met") for r in doc["candidates"])
    for r in doc["candidates"]:
        search = r["batches"]["1"]
        assert search["measured"][:2] == [1, 2]  # doubling from 1
        assert [lv["concurrency"] for lv in r["levels"]] == search["measured"]
    w = doc["winner"]
    win = next(r for r in doc["candidates"] if r["candidate"]["name"] == w["candidate"])
    c = w["confirmed"]  # 2 fresh runs of the winning point on a fresh server, after the search
    assert c["status"] == "done" and c["runs"] == c["requested"] == 2, c
    assert 0 < c["throughput_min"] <= c["throughput_median"] <= c["throughput_max"]
    assert 0.2 < c["throughput_median"] / w["throughput"] < 5  # the same point, give or take the noise
    assert c["tail_ms_median"] is not None and c["within_budget"] is (c["tail_ms_median"] <= 200)
    assert [(r["batch"], r["concurrency"]) for r in win["confirmation"]["runs"]] == [(w["batch"],
                                                                                    w["concurrency"])] * 2
    assert (out / win["confirmation"]["server"]["log"]).name == f"{w['candidate']}.confirm.log"
    assert "confirmed over 2 of 2 fresh runs (done): median" in done.stdout
    assert doc["gain_basis"] == "confirmed" and doc["gain_over_defaults"] > 0  # defaults confirmed too
    assert "confirmed p95 ms" in (out / "report.html").read_text()
    again = run_cli(*args, "--resume", timeout=120)  # everything recorded: nothing measured again
    assert again.returncode == 0, again.stderr[-3000:]
    assert "confirmation already recorded" in again.stderr and "confirmation run" not in again.stderr
    assert read(out)["candidates"] == doc["candidates"]


def test_quick_search_survives_a_dead_candidate(tmp_path: Path) -> None:
    out = tmp_path / "quick"
    proc = popen("tune", *FAST, "--instances", "1,2", "--max-queue-delay-us", "0,500", "--search", "quick",
                 "--max-candidates", "3", "--out", str(out))
    def started(d: dict[str, Any]) -> bool:
        first = d["candidates"][0] if d["candidates"] else {}
        return bool((first.get("server") or {}).get("pid") and first.get("levels"))

    doc = wait_for(out, proc, started)
    os.killpg(doc["candidates"][0]["server"]["pid"], signal.SIGKILL)
    stdout, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-3000:]
    doc = check_outputs(out, stdout)
    dead = doc["candidates"][0]
    assert dead["candidate"]["name"] == "i1_mb64_d0_pnone"
    assert dead["status"] == "failed" and dead["reason"] and dead["levels"]  # what it measured is kept
    names = [r["candidate"]["name"] for r in doc["candidates"]]
    assert len(names) == 3
    assert set(names[1:]) <= {"i2_mb64_d0_pnone", "i1_mb64_d500_pnone", "i2_mb64_d500_pnone"}
    assert doc["winner"]["candidate"] != dead["candidate"]["name"]


def test_client_only_tune_against_a_running_server(server: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "client"
    done = run_cli("tune", *FAST, "-u", server.grpc_url, "--access-token", server.token,
                   "--batch-sizes", "1,4", "--out", str(out), timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = read(out)
    assert [r["candidate"]["name"] for r in doc["candidates"]] == ["external"]
    assert set(doc["candidates"][0]["batches"]) == {"1", "4"}
    assert "load: saturate load -m mlp" in done.stdout and "serve:" not in done.stdout
    assert server.token not in (out / "tune.json").read_text()


def test_bad_input_against_a_running_server(server: ServerProcess, tmp_path: Path) -> None:
    above = run_cli("tune", *FAST, "-u", server.grpc_url, "--batch-sizes", "16", "--out", str(tmp_path / "a"))
    assert above.returncode == 2 and "max batch 8" in above.stderr, above.stderr
    assert len(above.stderr.strip().splitlines()) == 1 and not (tmp_path / "a").exists()
    out = tmp_path / "b"
    low = run_cli("tune", *FAST[:2], "--latency-budget-ms", "0.001", *FAST[4:], "-u", server.grpc_url,
                  "--access-token", server.token, "--out", str(out))
    assert low.returncode == 2, low.stderr[-2000:]
    last = low.stderr.strip().splitlines()[-1]
    assert "below the fastest single request" in last and "raise the budget" in last
    assert read(out)["candidates"][0]["levels"]  # the level that showed it is kept

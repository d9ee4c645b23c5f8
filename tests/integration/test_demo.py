"""``saturate demo``: direct scan, served ParticleNet scanned over concurrency x batch with the monitor,
report — one real run per test session, its report rendered in headless Chromium."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import run_cli
from test_report_html import ensure_chromium, render_in_chromium

pytestmark = pytest.mark.integration

PLOTS = ("direct_scan", "throughput_vs_concurrency", "latency_vs_throughput", "server_breakdown",
         "utilization_timeline", "saturation_ratio")
LEVELS = ["c1_b1", "c2_b1", "c4_b1", "c8_b1", "c1_b16", "c2_b16", "c4_b16", "c8_b16"]


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, float]:
    out = tmp_path_factory.mktemp("demo") / "results"
    t0 = time.monotonic()
    done = run_cli("demo", "--out", str(out), timeout=290)  # inside pytest-timeout's 300 s
    seconds = time.monotonic() - t0
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout, done.stderr, seconds


def test_demo_runs_the_whole_path(demo: tuple[Path, str, str, float]) -> None:
    out, stdout, stderr, seconds = demo
    assert stdout.strip() == str(out / "report.html")
    for name in PLOTS:
        png = out / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == len(PLOTS)
    assert "Knee and saturation verdicts" in html
    direct = json.loads((out / "direct.json").read_text())
    assert [lv["batch_size"] for lv in direct["levels"]] == [1, 16]
    scan = json.loads((out / "scan.json").read_text())
    assert [f"c{lv['concurrency']}_b{lv['batch_size']}" for lv in scan["levels"]] == LEVELS
    assert scan["config"]["serve"]["model"] == "particlenet" and scan["config"]["serve"]["max_batch"] == 16
    assert scan["analysis"]["latency_budget_ms"] == 250
    assert set(scan["analysis"]["knee_per_batch"]) == {"1", "16"}
    assert scan["levels"][0]["throughput"]["infer_per_s"] > 0
    assert all(lv["windows"] and len(lv["windows"]) <= 5 for lv in scan["levels"])
    assert "server stopped (exit 0)" in stderr
    print(f"saturate demo took {seconds:.0f} s")  # the issue asks for under 3 minutes on 2 cores


def test_demo_refuses_a_foreign_directory_and_a_bad_backend(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    done = run_cli("demo", "--out", str(tmp_path), timeout=60)
    assert done.returncode == 2 and "not a demo directory" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = run_cli("demo", "--backend", "tensorflow", "--out", str(tmp_path / "new"), timeout=60)
    assert done.returncode == 2 and "unknown backend" in done.stderr


def test_demo_report_renders_in_chromium(demo: tuple[Path, str, str, float]) -> None:
    out = demo[0]
    (page,) = render_in_chromium(ensure_chromium(), [out / "report.html"])
    assert len(page.images) == len(PLOTS)
    assert all(i["complete"] and i["w"] > 0 and i["h"] > 0 for i in page.images), page.images
    assert page.errors == [] and page.external == []
    wanted = {"Plots", "Knee and saturation verdicts", "Server levels", "Direct inference scans"}
    assert wanted <= set(page.h2)

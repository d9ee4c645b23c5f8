"""report.html opens with the answer (scans.report.headline), summary.json holds it, `--compare` overlays a
second run; checked in headless Chromium (tests/setup_chromium.sh) on a real recorded CPU scan
(tests/fixtures/headline_scan, see its README), with a screenshot of the page's top."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import REPO, run_cli
from test_report_html import FLAGS, ensure_chromium, render_in_chromium

pytestmark = pytest.mark.integration

FIXTURE = REPO / "tests" / "fixtures" / "headline_scan"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("headline")
    a, b = root / "run_a", root / "run_b"
    shutil.copytree(FIXTURE, a)
    shutil.copytree(FIXTURE, b)
    (b / "direct.json").unlink()  # B differs: no direct scan
    # a summary.json left by an earlier report is skipped as input, not an error
    (a / "summary.json").write_text(json.dumps({"schema": "saturate.summary/1", "runs": []}))
    done = run_cli("report", str(a), "--compare", str(b), timeout=120)
    assert done.returncode == 0, done.stderr
    return a


def test_summary_json_holds_the_headline(report: Path) -> None:
    doc = json.loads((report / "summary.json").read_text())
    assert doc["schema"] == "saturate.summary/1"
    server, direct = doc["runs"]
    assert server["kind"] == "server" and server["source"] == "scan.json"
    assert server["best_infer_per_s"] > 0 and server["batch_size"] == 1 and server["concurrency"] == 1
    assert server["budget_ms"] == 250 and server["saturated_first"] == "server_queue"
    assert server["client_cpu_us_per_request"] > 0 and server["gpu_util_pct"] is None  # a CPU run
    assert server["all_valid"] is False and "c4_b16 (unstable)" in server["invalid_levels"]
    assert direct["kind"] == "direct" and direct["batch_size"] == 16


def test_headline_first_in_chromium_with_overlays(report: Path, tmp_path: Path) -> None:
    chromium = ensure_chromium()
    (page,) = render_in_chromium(chromium, [report / "report.html"])
    assert page.errors == [] and page.external == []
    assert all(i["complete"] and i["w"] > 0 for i in page.images), page.images
    assert page.h2[0].startswith("The answer (server scan") and page.h2[1].startswith("The answer (direct")
    assert page.h2.index("Plots") == 2
    assert any(h.startswith("Compared with") for h in page.h2)
    html = (report / "report.html").read_text()
    top = html[: html.index("<h2>Plots</h2>")]
    for text in ("Best within the 250 ms p95 budget: ", "at batch 1, concurrency 1",
                 "Saturated first: server_queue", "Client&#x27;s own cost at c1_b1: ",
                 "GPU at c1_b1: no GPU samples.", "4 of 6 levels not valid",
                 "Traffic: drawn shapes P~poisson(40), S~poisson(5)."):
        assert text in top, text
    assert {"compare_server.png", "compare_direct.png"} <= {p.name for p in (report / "plots").iterdir()}
    shot = tmp_path / "headline.png"
    profile = tempfile.mkdtemp(prefix="chromium-shot-")
    try:
        subprocess.run([str(chromium), *[f for f in FLAGS if not f.startswith("--remote")],
                        f"--user-data-dir={profile}", "--hide-scrollbars", "--window-size=1200,900",
                        f"--screenshot={shot}", (report / "report.html").as_uri()],
                       capture_output=True, timeout=120, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shutil.copy(shot, report / "headline.png")  # kept beside the report for a look

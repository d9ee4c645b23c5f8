"""``saturate report`` on a real direct scan plus perf_analyzer's real CSVs, rendered in headless Chromium.

Chromium is Debian's ``chromium`` (installed by tests/setup_chromium.sh; the test fails, not skips, when
it cannot be installed). The page is loaded unmodified over the DevTools protocol (aiohttp's websocket
client): every ``<img>`` must have loaded (``naturalWidth > 0``) and there must be no console error,
uncaught exception or log error. A deliberately broken page checks that the check itself can fail.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import FIXTURES, REPO, run_cli

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
PA_FIXTURES = FIXTURES / "perf_analyzer"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-port=0", "--remote-allow-origins=*",
)
CHECK_JS = """JSON.stringify({
  images: Array.from(document.images)
    .map(i => ({complete: i.complete, w: i.naturalWidth, h: i.naturalHeight})),
  title: document.title,
  h2: Array.from(document.querySelectorAll('h2')).map(h => h.textContent),
  external: Array.from(document.querySelectorAll('[src],[href]'))
    .map(e => e.getAttribute('src') || e.getAttribute('href'))
    .filter(u => !u.startsWith('data:')),
})"""


@dataclass
class PageCheck:
    images: list[dict[str, Any]]
    title: str
    h2: list[str]
    external: list[str]
    errors: list[str] = field(default_factory=list)


def ensure_chromium() -> Path:
    """Run the set-up script; a failure fails the test (CI must have Chromium)."""
    done = subprocess.run(["sh", str(REPO / "tests" / "setup_chromium.sh")], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0 and CHROMIUM.is_file(), (
        f"tests/setup_chromium.sh could not install Chromium (rc {done.returncode}): {done.stderr[-2000:]}"
    )
    return CHROMIUM


async def _render(ws_url: str, pages: list[Path]) -> list[PageCheck]:
    results: list[PageCheck] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url, max_msg_size=0) as ws:
        counter = [0]
        events: list[dict[str, Any]] = []

        async def call(method: str, **params: Any) -> dict[str, Any]:
            counter[0] += 1
            mid = counter[0]
            await ws.send_json({"id": mid, "method": method, "params": params})
            while True:
                msg = await asyncio.wait_for(ws.receive_json(), 30)
                if msg.get("id") == mid:
                    assert "error" not in msg, f"{method}: {msg['error']}"
                    result: dict[str, Any] = msg.get("result", {})
                    return result
                events.append(msg)

        for method in ("Page.enable", "Runtime.enable", "Log.enable"):
            await call(method)
        for path in pages:
            events.clear()
            await call("Page.navigate", url=path.resolve().as_uri())
            deadline = time.monotonic() + 30
            while not any(e.get("method") == "Page.loadEventFired" for e in events):
                assert time.monotonic() < deadline, f"{path.name} did not finish loading in 30 s"
                events.append(await asyncio.wait_for(ws.receive_json(), 30))
            evaluated = await call("Runtime.evaluate", expression=CHECK_JS, returnByValue=True)
            value = evaluated["result"]["value"]
            await asyncio.sleep(0.3)  # let late console/log events arrive
            await call("Runtime.evaluate", expression="1")
            doc = json.loads(value)
            check = PageCheck(doc["images"], doc["title"], doc["h2"], doc["external"])
            for e in events:
                p = e.get("params", {})
                if e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                    check.errors.append(f"console.{p['type']}: {p.get('args')}")
                elif e.get("method") == "Runtime.exceptionThrown":
                    check.errors.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
                elif e.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                    check.errors.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            results.append(check)
    return results


def render_in_chromium(chromium: Path, pages: list[Path]) -> list[PageCheck]:
    """Open each page in one fresh headless Chromium (fresh profile) and check it over DevTools."""
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
    proc = subprocess.Popen([str(chromium), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and len(port_file.read_text().splitlines()) >= 2):
            assert proc.poll() is None, f"chromium exited early: {proc.stderr.read() if proc.stderr else ''}"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port in 60 s"
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])

        async def main() -> list[PageCheck]:
            url = f"http://127.0.0.1:{port}/json/list"
            async with aiohttp.ClientSession() as http, http.get(url) as resp:
                targets = await resp.json()
            page = next(t for t in targets if t.get("type") == "page")
            return await _render(page["webSocketDebuggerUrl"], pages)

        return asyncio.run(main())
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A direct scan of a small MLP plus every perf_analyzer fixture file, then ``saturate report``."""
    root = tmp_path_factory.mktemp("report")
    done = run_cli("scan", "direct", "--model", "mlp", "--backend", "torch", "--batch-sizes", "1,4,16",
                   "--trials", "30", "--warmup-trials", "5", "--warmup-seconds", "0.2", "--out", str(root),
                   timeout=120)
    assert done.returncode == 0, done.stderr
    for f in PA_FIXTURES.iterdir():
        shutil.copy(f, root / f.name)
    done = run_cli("report", str(root), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(root / "report.html")
    return root


def test_report_writes_every_plot(report_dir: Path) -> None:
    pngs = sorted(p.name for p in (report_dir / "plots").glob("*.png"))
    assert pngs == sorted(f"{n}.png" for n in (
        "direct_scan", "throughput_vs_concurrency", "throughput_vs_request_rate", "latency_vs_throughput",
        "server_breakdown", "saturation_ratio"))
    for p in (report_dir / "plots").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (report_dir / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 6
    assert "pa_profile_export.json" in html  # listed as not used (no schema), not an error


def test_report_renders_in_chromium(report_dir: Path, tmp_path: Path) -> None:
    chromium = ensure_chromium()
    broken = tmp_path / "broken.html"
    broken.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"><title>b</title></head>'
                      '<body><img src="data:image/png;base64,AAAA"><script>console.error("boom")</script>'
                      "</body></html>")
    good, bad = render_in_chromium(chromium, [report_dir / "report.html", broken])
    # the check catches a broken image and a console error
    assert bad.images and bad.images[0]["w"] == 0
    assert any("boom" in e for e in bad.errors)
    # the report: six images, all decoded, nothing external, no console errors
    assert len(good.images) == 6
    assert all(i["complete"] and i["w"] > 0 and i["h"] > 0 for i in good.images), good.images
    assert good.errors == []
    assert good.external == []
    assert good.title == report_dir.name
    assert {"Plots", "Direct inference scans", "Server levels", "Environment and settings"} <= set(good.h2)

"""`saturate serve` hygiene against a real PyTriton server (issue 14): private shared memory, an
unload through the repository API noticed, its segments removed when it ends."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from servers import hygiene
from tests.conftest import start_server


def test_private_segments_unload_noticed_and_cleaned(tmp_path: Path) -> None:
    server = start_server("mlp", log_dir=tmp_path)
    try:
        segments = hygiene.segments(server.proc.pid)
        assert segments and all((p.stat().st_mode & 0o777) == 0o600 for p in segments)
        req = urllib.request.Request(f"http://{server.http_url}/v2/repository/models/mlp/unload", data=b"{}",
                                     method="POST", headers={"triton-access-token": server.token})
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200
        code = server.proc.wait(60)
    finally:
        server.stop()
    assert code == 1
    assert "mlp is no longer loaded" in server.log_path.read_text()
    assert hygiene.segments(server.proc.pid) == []

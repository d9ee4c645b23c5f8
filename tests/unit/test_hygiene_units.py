"""Token sources and masking, serve's shared-memory hygiene, job template defaults (issue 14)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from saturate.errors import ConfigError
from saturate.tokens import TOKEN_ENV, argv_tokens, mask_all, resolve, without_token_flag
from scans.jobs import slurm as jobs
from servers import hygiene
from tests.conftest import REPO


def test_token_sources_in_order(tmp_path: Path) -> None:
    f = tmp_path / "tok"
    f.write_text("from-file\nignored\n")
    assert resolve("flag", None, {TOKEN_ENV: "env"}) == "flag"
    assert resolve(None, str(f), {TOKEN_ENV: "env"}) == "from-file"
    assert resolve(None, None, {TOKEN_ENV: "env"}) == "env"
    assert resolve(None, None, {}) is None
    with pytest.raises(ConfigError, match="not both"):
        resolve("a", str(f), {})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        resolve(None, str(tmp_path / "empty"), {})


def test_tokens_found_and_masked_on_command_lines() -> None:
    argv = ["load", "--access-token", "s3cret", "-u", "h:1"]
    assert without_token_flag(argv) == (["load", "-u", "h:1"], "s3cret")
    assert without_token_flag(["x", "--access-token=abc"]) == (["x"], "abc")
    pa = ["perf_analyzer", "-m", "m", "-H", "triton-access-token:s3cret", "-H", "other:v"]
    assert argv_tokens(pa) == ["s3cret"]
    assert "s3cret" not in mask_all(" ".join(pa), argv_tokens(pa))


def test_access_token_file_reaches_the_command(tmp_path: Path) -> None:
    """`infer` against nothing: the token from the file is used (the error is about the server, not it)."""
    f = tmp_path / "tok"
    f.write_text("tok-from-file\n")
    res = subprocess.run([sys.executable, "-m", "saturate", "load", "-m", "mlp", "-u", "127.0.0.1:1",
                          "--access-token-file", str(f), "--request-timeout", "1"],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert res.returncode == 2 and "cannot reach" in res.stderr and "tok-from-file" not in res.stderr


def test_stale_segments_of_dead_servers_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"pytrtion{dead.pid}-abc"
    mine = tmp_path / f"pytrtion{os.getpid()}-def"
    other = tmp_path / "psm_1234"
    for p in (stale, mine, other):
        p.write_bytes(b"x")
        p.chmod(0o644)
    assert hygiene.remove_stale_segments(tmp_path) == 1
    assert not stale.exists() and mine.exists() and other.exists()
    assert hygiene.make_private(os.getpid(), tmp_path) == 1 and (mine.stat().st_mode & 0o777) == 0o600
    assert hygiene.remove_segments(os.getpid(), tmp_path) == 1 and not mine.exists()


def test_non_loopback_bind_warns(capsys: pytest.CaptureFixture[str]) -> None:
    assert hygiene.warn_if_open("127.0.0.1") is None and hygiene.warn_if_open("::1") is None
    assert hygiene.warn_if_open("0.0.0.0") is not None
    assert "open to anyone" in capsys.readouterr().err


BASE = {"partition": "p", "time": "00:10:00", "out": "/tmp/x"}


def test_template_c_defaults_pass_their_own_check() -> None:
    (job,) = jobs.render("c", BASE)  # ranks 2: concurrency defaults to 2:8:2, not 1:4:1
    assert "'1,1;2,2;3,3;4,4'" in job.text
    (job4,) = jobs.render("c", {**BASE, "ranks": "4"})
    assert "1,1,1,1" in job4.text


def test_templates_quote_and_validate(tmp_path: Path) -> None:
    server, _client = jobs.render("b", BASE)
    assert "--bind 0.0.0.0" not in server.text and "BIND=''" in server.text
    assert "getent ahostsv4" in server.text
    (a,) = jobs.render("a", {**BASE, "bind": "10.0.0.5"})
    assert "--access-token \"$TOKEN\"" not in a.text  # the token goes in the environment
    for bad in ("stability=nan", "stability=inf", "stability= 10", "finish_server=$(touch x)",
                "partition=gpu; rm -rf /", "job_name=a b"):
        key, _, value = bad.partition("=")
        with pytest.raises(ConfigError, match=key):
            jobs.render("c", {**BASE, key: value})


def test_all_failed_batch_csv_keeps_the_server_columns(tmp_path: Path) -> None:
    from loadgen.result import RunResult
    from scans.server import scanio
    from scans.server.server_scan import failed_level

    run = RunResult(tool={"name": "saturate"}, config={}, levels=[failed_level(1, 1, "server lost"),
                                                                 failed_level(16, 1, "server lost")])
    scanio.write_outputs(tmp_path, run, {}, None, None)
    for b in (1, 16):
        header = (tmp_path / scanio.csv_name(b)).read_text().splitlines()[0]
        assert "Server Queue" in header and "Server Compute Infer" in header

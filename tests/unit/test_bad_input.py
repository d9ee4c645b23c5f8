"""Bad input over every command: one line on stderr, exit 2, no traceback, nothing written (issue 14).

Each entry runs the front door in-process (``saturate.cli.main``) before anything is measured:
an exception escaping ``main`` fails the test as a traceback would. ``{tmp}`` is the test's own
directory (its contents must not change), ``{file}`` an existing file in it, ``{dir}`` a directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from saturate.cli import main

SPEC_BIG = 'command: load\nparameters:\n  m: mlp\n  exp.x: "$(10**100000)$"\n'
SPEC_TOWER = 'command: load\nparameters:\n  m: mlp\n  exp.x: "$(9**9**9**9)$"\n'
JOB = ("job", "render", "a", "-P", "partition=p", "-P", "time=00:10:00", "-P", "out={tmp}/job")

CASES: list[tuple[str, tuple[str, ...], str]] = [
    ("serve-bind", ("serve", "--model", "mlp", "--bind", "999.1.1.1"), "cannot bind"),
    ("load-f-dir", ("load", "-m", "mlp", "-f", "{dir}"), "is a directory"),
    ("load-f-proc", ("load", "-m", "mlp", "-f", "/proc/x/a.csv"), "does not exist"),
    ("load-json-dir", ("load", "-m", "mlp", "--json", "{dir}"), "is a directory"),
    ("load-json-proc", ("load", "-m", "mlp", "--json", "/proc/run.json"), "/proc takes no new file"),
    ("load-latency-proc", ("load", "-m", "mlp", "--latency-file", "/proc/x.npz"), "/proc takes no new file"),
    ("load-seed", ("load", "-m", "mlp", "--seed", "-1"), "--seed"),
    ("load-start-at", ("load", "-m", "mlp", "--start-at", "99999999999"), "--start-at"),
    ("load-request-timeout", ("load", "-m", "mlp", "--request-timeout", "-1"), "--request-timeout"),
    ("load-sender-http", ("load", "-m", "mlp", "-i", "http", "--sender", "native"), "-i grpc only"),
    ("load-driver-native-http", ("load", "-m", "mlp", "-i", "http", "--driver", "native"), "needs -i grpc"),
    ("load-driver-native-shapes", ("load", "-m", "mlp", "--driver", "native", "--shape-dist", "input:F",
                                   "--dim-dist", "F~poisson(16)"), "does not count drawn shapes"),
    ("load-two-tokens", ("load", "-m", "mlp", "--access-token", "a", "--access-token-file", "{file}"),
     "not both"),
    ("load-token-file", ("load", "-m", "mlp", "--access-token-file", "{tmp}/nope"), "--access-token-file"),
    ("infer-token-file", ("infer", "-m", "mlp", "--access-token-file", "{tmp}/nope"), "--access-token-file"),
    ("scan-out-proc", ("scan", "server", "-m", "mlp", "-u", "127.0.0.1:1", "--out", "/proc/x"), "/proc"),
    ("scan-out-file", ("scan", "server", "-m", "mlp", "-u", "127.0.0.1:1", "--out", "{file}"),
     "not a directory"),
    ("scan-multiproc-out-file", ("scan", "multiproc", "--processes", "1", "--out", "{file}"),
     "not a directory"),
    ("sweep-out-file", ("sweep", "{tmp}/spec.yaml", "--out", "{file}"), "not a directory"),
    ("sweep-expr-big", ("sweep", "{tmp}/big.yaml", "--out", "{tmp}/sw", "--dry-run"), "10**300"),
    ("sweep-expr-tower", ("sweep", "{tmp}/tower.yaml", "--out", "{tmp}/sw", "--dry-run"), "10**300"),
    ("merge-levels", ("merge", "-o", "{tmp}/m.json", "{tmp}/bad_levels.json"), "not a saturate run JSON"),
    ("merge-out-proc", ("merge", "-o", "/proc/x.json", "{tmp}/bad_levels.json"), "/proc"),
    ("job-render-out", (*JOB, "-o", "/proc/x/a.sbatch"), "does not exist"),
    ("pa-out", ("pa", "--binary", "/bin/true", "--out", "/proc/x", "--", "-m", "x"), "/proc"),
    ("export-dir", ("export", "--model", "mlp", "--format", "onnx", "-o", "{dir}"), "is a directory"),
    ("monitor-out-dir", ("monitor", "--out", "{dir}"), "is a directory"),
    ("job-stability-nan", (*JOB, "-P", "stability=nan"), "stability"),
    ("job-stability-space", (*JOB, "-P", "stability= 10"), "stability"),
    ("job-finish-server", (*JOB, "-P", "finish_server=$(touch {tmp}/pwned)"), "finish_server"),
]


def _tree(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")}


@pytest.mark.parametrize("argv,needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2(argv: tuple[str, ...], needle: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "a_file").write_text("x\n")
    (tmp_path / "big.yaml").write_text(SPEC_BIG)
    (tmp_path / "tower.yaml").write_text(SPEC_TOWER)
    (tmp_path / "spec.yaml").write_text("command: load\nparameters:\n  m: mlp\n")
    (tmp_path / "bad_levels.json").write_text(json.dumps({"schema": "saturate.run/1", "levels": {"a": 1}}))
    before = _tree(tmp_path)
    subst = {"{tmp}": str(tmp_path), "{dir}": str(tmp_path / "a_dir"), "{file}": str(tmp_path / "a_file")}
    args = []
    for a in argv:
        for k, v in subst.items():
            a = a.replace(k, v)
        args.append(a)
    umask = os.umask(0o022)
    os.umask(umask)
    code = main(args)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("saturate: error:") and needle in lines[0], lines[0]
    assert _tree(tmp_path) == before  # nothing written, no stray .tmp
    assert os.umask(umask) == umask  # serve restores the umask it set

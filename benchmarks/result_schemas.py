"""Run the commands whose result files must not change shape, and write the files' schemas as JSON.

    python benchmarks/result_schemas.py run OUT          # runs them with this checkout, OUT/schemas.json
    python benchmarks/result_schemas.py diff A.json B.json   # what differs; exit 1 when anything does

The commands (small, CPU, loopback): ``saturate demo`` (MLP, two levels), ``scan server --serve`` and
the same again with ``--resume``, ``saturate pa`` with the real perf_analyzer against a served MLP,
``saturate sweep`` of two tiny direct scans, ``job render`` of every template. Run from the
repository root of the checkout to compare (``PYTHONPATH=. python …`` for another one), so the
``saturate`` it runs is that checkout's. A schema is, per file: JSON key paths with their value
types (lists merged over their items), CSV headers, JSON-lines records merged, npz array names with
dtype and rank, and for text files (job scripts, logs) a normalised digest where they must match.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SAT = [sys.executable, "-m", "saturate"]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports, held together while chosen (its own copy of
    scans.server.serverproc.free_ports: this script also runs against checkouts that predate it)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def run(*args: str, timeout: float = 600) -> None:
    done = subprocess.run([*SAT, *args], capture_output=True, text=True, timeout=timeout)
    print(f"[{done.returncode}] saturate {' '.join(args)}", file=sys.stderr)
    if done.returncode not in (0, 1):
        sys.exit(f"failed: {done.stderr[-2000:]}")


def serve(log: Path) -> tuple[subprocess.Popen[bytes], int]:
    grpc, http, metrics = free_ports(3)
    f = open(log, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([*SAT, "serve", "-m", "mlp", "--bind", "127.0.0.1", "--grpc-port", str(grpc),
                             "--http-port", str(http), "--metrics-port", str(metrics),
                             "--access-token", "schemas"], stdout=f, stderr=subprocess.STDOUT,
                            start_new_session=True)
    t0 = time.monotonic()
    while b"saturate serve: ready" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() - t0 > 120:
            sys.exit(f"server did not start: {log.read_text()[-2000:]}")
        time.sleep(0.5)
    return proc, grpc


def run_all(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    fast = ["-p", "300", "-r", "4"]
    run("demo", "--out", str(out / "demo"), "--model", "mlp", "--concurrency", "1,2", "--batch-sizes", "1",
        "--direct-trials", "5", *fast)
    scan = ["scan", "server", "--serve", "-m", "mlp", "--batch-sizes", "1,4", "--concurrency", "1:2",
            "-s", "1000", *fast, "--out", str(out / "scan")]
    run(*scan)
    run(*scan, "--resume")
    proc, grpc = serve(out / "serve.log")
    try:
        run("pa", "--out", str(out / "pa"), "--", "-m", "mlp", "-i", "grpc", "-u", f"127.0.0.1:{grpc}",
            "-p", "300", "--concurrency-range", "1:2", "-s", "1000", "-H",
            "triton-grpc-protocol-triton-access-token:schemas")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
    (out / "serve.log").unlink()
    spec = out / "spec.yaml"
    spec.write_text("command: scan direct\ntimeout: 120\nparameters:\n  model: mlp\n  trials: 3\n"
                    "  warmup_trials: 1\n  warmup_seconds: 0\n  batch_sizes: 2\nvariables:\n"
                    "  backend: [torch, onnx]\n")
    run("sweep", str(spec), "--out", str(out / "sweep"))
    for name in ("scan", "server", "client", "pair", "multinode"):
        target = out / "jobs" / name
        (target if name != "pair" else target.parent).mkdir(parents=True, exist_ok=True)
        run("job", "render", name, "-P", "partition=cpu", "-P", "time=00:10:00", "-P", "out=/tmp/jobout",
            "-o", str(target if name == "pair" else target / "job.sh"))
    (out / "schemas.json").write_text(json.dumps(schemas(out), indent=1, sort_keys=True))
    print(out / "schemas.json")


def kind(v: Any) -> str:
    return {bool: "bool", int: "number", float: "number", str: "str", type(None): "null"}.get(type(v), "?")


def shape(v: Any, path: str, acc: dict[str, set[str]]) -> None:
    if isinstance(v, dict):
        acc.setdefault(path, set()).add("object")
        for k, x in v.items():
            key = "<n>" if re.fullmatch(r"[cr]?\d+(_b\d+)?|L\d+|GPU-.*|pid:\d+", str(k)) else str(k)
            shape(x, f"{path}.{key}", acc)
    elif isinstance(v, list):
        acc.setdefault(path, set()).add("list")
        for x in v:
            shape(x, f"{path}[]", acc)
    else:
        acc.setdefault(path, set()).add(kind(v))


def merged(acc: dict[str, set[str]]) -> dict[str, list[str]]:
    out = {k: sorted(v) for k, v in acc.items()}
    for k, v in out.items():  # a value that is sometimes null and sometimes a number is one schema
        if "null" in v and len(v) > 1:
            out[k] = [*sorted(set(v) - {"null"}), "null?"]
    return out


def normalised_text(p: Path, root: Path) -> str:
    text = p.read_text(errors="replace").replace(str(root), "ROOT").replace(sys.executable, "PYTHON")
    return hashlib.sha256(re.sub(r"\d{4,}", "N", text).encode()).hexdigest()[:16]


def schemas(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if not p.is_file() or rel == "schemas.json" or "/." in f"/{rel}":
            continue
        acc: dict[str, set[str]] = {}
        if p.suffix == ".json":
            shape(json.loads(p.read_text()), "$", acc)
            out[rel] = merged(acc)
        elif p.suffix == ".jsonl":
            for line in p.read_text().splitlines():
                shape(json.loads(line), "$", acc)
            out[rel] = merged(acc)
        elif p.suffix == ".csv":
            with open(p, newline="") as f:
                out[rel] = {"header": next(csv.reader(f), [])}
        elif p.suffix == ".npz":
            with np.load(p) as data:
                names = {k: "L<n>" if re.fullmatch(r"L\d+", k) else k for k in data.files}
                out[rel] = sorted({f"{names[k]}:{data[k].dtype}:{data[k].ndim}" for k in data.files})
        elif p.suffix == ".sh":
            out[rel] = {"text": normalised_text(p, root)}
        else:
            out[rel] = {"file": p.suffix or "no suffix"}
    return out


def diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    lines = [f"only in A: {k}" for k in sorted(set(a) - set(b))]
    lines += [f"only in B: {k}" for k in sorted(set(b) - set(a))]
    for k in sorted(set(a) & set(b)):
        x, y = a[k], b[k]
        if isinstance(x, dict) and isinstance(y, dict):
            for key in sorted(set(x) | set(y)):
                if x.get(key) != y.get(key):
                    lines.append(f"{k}: {key}: {x.get(key)} -> {y.get(key)}")
        elif x != y:
            lines.append(f"{k}: {x} -> {y}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run").add_argument("out", type=Path)
    d = sub.add_parser("diff")
    d.add_argument("a", type=Path)
    d.add_argument("b", type=Path)
    args = ap.parse_args()
    if args.cmd == "run":
        run_all(args.out)
        return 0
    lines = diff(json.loads(args.a.read_text()), json.loads(args.b.read_text()))
    print("\n".join(lines) or "same schemas")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())

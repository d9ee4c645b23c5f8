"""``saturate sweep SPEC``: run every experiment of a plan (:mod:`scans.sweep.spec`) and log it as JSON lines.

Each experiment runs ``python -m saturate <command> <flags> --out runs/<id>`` in its own process group
with the spec's timeout (as dl-benchmark runs each test in a subprocess), its output going to
``runs/<id>/log.txt``. After it ends, one line is appended (and flushed) to ``OUT/sweep.jsonl``::

    {"id", "index", "command", "params", "argv", "status": "ok|failed|timeout", "returncode",
     "error", "started", "duration_s", "dir", "results": {...}}

Resume: an experiment whose id already has a line is skipped according to ``rerun`` — ``never``
(skip it whatever its status), ``onfail`` (default: run failed/timed-out ones again), ``always``. The last
line of an id wins. A failure is recorded and the sweep goes on; the exit code is 1 if any failed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from saturate.errors import ConfigError
from saturate.tokens import MASK, child_env, mask_all, without_token_flag
from scans.sweep.spec import Experiment

RESULTS_NAME = "sweep.jsonl"
RERUN: tuple[str, ...] = ("never", "onfail", "always")
LOG_NAME = "log.txt"


@dataclass(frozen=True)
class SweepOptions:
    command: str
    timeout_s: float
    rerun: str = "onfail"
    python: str = sys.executable

    def __post_init__(self) -> None:
        if self.rerun not in RERUN:
            raise ConfigError(f"unknown --rerun {self.rerun!r}; use one of: {', '.join(RERUN)}")


def read_results(path: Path) -> dict[str, dict[str, Any]]:
    """The last record per experiment id in a results file (missing file → empty; torn lines skipped)."""
    out: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return out
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("id"), str):
            out[rec["id"]] = rec
    return out


def should_run(previous: dict[str, Any] | None, rerun: str) -> bool:
    if previous is None or rerun == "always":
        return True
    return rerun == "onfail" and previous.get("status") != "ok"


def _level_summary(level: dict[str, Any]) -> dict[str, Any]:
    lat = level.get("latency_us") or {}
    thr = level.get("throughput") or {}
    return {
        "batch_size": level.get("batch_size"),
        "concurrency": level.get("concurrency"),
        "request_rate": level.get("request_rate"),
        "items_per_s": thr.get("infer_per_s"),
        "latency_ms": None if lat.get("avg") is None else lat["avg"] / 1e3,
        "p99_ms": None if lat.get("p99") is None else lat["p99"] / 1e3,
        "stable": level.get("stable"),
    }


def extract_results(run_dir: Path) -> dict[str, Any]:
    """The numbers a sweep line keeps: multiproc aggregate, or the levels of every run JSON in ``run_dir``."""
    mp_file = run_dir / "multiproc.json"
    if mp_file.is_file():
        doc = json.loads(mp_file.read_text())
        agg = doc.get("aggregate") or {}
        return {
            "processes": agg.get("processes"), "batch_size": agg.get("batch_size"),
            "items_per_s": agg.get("effective_items_per_s"),
            "own_items_per_s": agg.get("own_items_per_s"),
            "effective_items_per_s": agg.get("effective_items_per_s"),
            "adjusted_items_per_s": agg.get("adjusted_items_per_s"),
            "latency_ms": (agg.get("latency_ms") or {}).get("mean"),
            "p99_ms": (agg.get("latency_ms") or {}).get("p99"),
        }
    levels: list[dict[str, Any]] = []
    for path in sorted(run_dir.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("schema") == "saturate.run/1":
            levels += [_level_summary(lv) for lv in doc.get("levels") or []]
    out: dict[str, Any] = {"levels": levels}
    if len(levels) == 1:
        out |= {k: v for k, v in levels[0].items() if v is not None}
    return out


def _last_error(log: Path) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no output"
    for line in reversed(lines):
        if "error" in line.lower():
            return line[:300]
    return lines[-1][:300] if lines else "no output"


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue


def run_experiment(exp: Experiment, opts: SweepOptions) -> dict[str, Any]:
    """Run one experiment in its own process group; returns its JSON-lines record."""
    exp.out_dir.mkdir(parents=True, exist_ok=True)
    log = exp.out_dir / LOG_NAME
    argv, token = without_token_flag(list(exp.argv))  # the token goes to the child in its environment
    cmd = [opts.python, "-m", "saturate", *argv]
    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.monotonic()
    status, code, error = "ok", None, None
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env=child_env(token))
        try:
            code = proc.wait(opts.timeout_s)
        except subprocess.TimeoutExpired:
            _stop_group(proc)
            status, error = "timeout", f"did not finish within {opts.timeout_s:g} s (spec 'timeout')"
        except BaseException:
            _stop_group(proc)
            raise
    if status == "ok" and code != 0:
        status, error = "failed", _last_error(log)
    results: dict[str, Any] = {}
    if status == "ok":
        try:
            results = extract_results(exp.out_dir)
        except (OSError, ValueError) as exc:
            status, error = "failed", f"results not readable: {exc}"
    secrets = [token] if token else []
    params = {k: (MASK if token and isinstance(v, str) and token in v else v) for k, v in exp.params.items()}
    return {
        "id": exp.id, "index": exp.index, "command": opts.command, "params": params,
        "argv": ["saturate", *argv] + (["--access-token", MASK] if token else []), "status": status,
        "returncode": code, "error": mask_all(error, secrets) if error else error,
        "started": started, "duration_s": round(time.monotonic() - t0, 3), "dir": str(exp.out_dir),
        "results": results,
    }


def append_record(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def run_sweep(plan: Sequence[Experiment], sweep_dir: Path, opts: SweepOptions,
              progress: TextIO | None = None) -> list[dict[str, Any]]:
    """Run (or skip) each experiment in order; returns the records written by this call."""
    err = progress if progress is not None else sys.stderr
    try:
        sweep_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {sweep_dir} ({exc.strerror}); give a writable --out") from None
    path = sweep_dir / RESULTS_NAME
    previous = read_results(path)
    written: list[dict[str, Any]] = []
    for exp in plan:
        tag = f"sweep: [{exp.index + 1}/{len(plan)}] {exp.id}"
        if not should_run(previous.get(exp.id), opts.rerun):
            print(f"{tag}: skipped ({previous[exp.id].get('status')} before; --rerun {opts.rerun})",
                  file=err, flush=True)
            continue
        shown, token = without_token_flag(list(exp.argv))
        print(f"{tag}: saturate {' '.join(shown)}" + (" --access-token ***" if token else ""),
              file=err, flush=True)
        record = run_experiment(exp, opts)
        append_record(path, record)
        written.append(record)
        note = f": {record['error']}" if record["error"] else ""
        print(f"{tag}: {record['status']} in {record['duration_s']:.1f} s{note}", file=err, flush=True)
    return written

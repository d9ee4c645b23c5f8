"""Parity benchmark: the real perf_analyzer and `saturate load` on the same server and levels.

For each server (the null KServe server of benchmarks/null_kserve.py, the served MLP, the served
ParticleNet), each level (concurrency 1, 4, 16, 64 and two request rates) and each repetition, the
tools run one after another in a rotating order (interleaved, so drift hits both alike): perf_analyzer
sync, perf_analyzer ``--async`` and saturate for concurrency; perf_analyzer and saturate for a rate. The
tool is pinned (taskset) to CPU 0 and the server to the other CPUs. Both get the same rule
(``-p W -s S -r R``). Per run it records throughput, p50 and p95 (their CSV / run JSON), the client CPU
per request over the whole process (``RUSAGE_CHILDREN`` of the tool's process over the requests the server
counted in its statistics while it ran), and saturate's own CPU per request inside the measured windows.
It prints medians over the repetitions as a markdown table with the ratios saturate / perf_analyzer, each
taken within one repetition (paired: adjacent runs) and given as their median and range
(throughput against perf_analyzer's better mode in that repetition, and against its sync mode alone: the
better of two noisy runs is biased upwards; latency against its sync mode; at a rate, latency
from the actual send on both sides, as perf_analyzer counts it, with saturate's own latency from the
due time beside it), the server's average batch and each tool's turn-around, and the paired ratios'
geometric mean with its 95% t-interval (loadgen.repeats.t_interval on their logarithms). With
``--control`` each level also runs perf_analyzer sync a second time in each repetition (an A/A control):
its paired ratio to the first sync run is this machine's noise floor, the tightest interval any
tool's ratio can show here. Numbers only.

    python benchmarks/vs_perf_analyzer.py [--servers null,mlp,particlenet] [--reps 3] [--window-ms 1000]
        [--concurrency 1,4,16,64] [--served-concurrency 1,4,16] [--rates null=500,2000 ...]
        [--driver auto] [--sender auto] [--input-data zero|FILE.json]
        [--serve-args "--max-queue-delay-us 1000"]   (extra `saturate serve` flags for the served models)
        [--control]   (perf_analyzer sync twice per level and repetition: the A/A noise floor)
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import null_kserve
import tritonclient.grpc as grpcclient

from loadgen.config import DRIVERS, SENDERS
from loadgen.repeats import t_interval
from scans.server.serverproc import free_port, free_ports

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["saturate", "loadgen", "servers", "monitors", "scans"]  # what pyproject installs
DEFAULT_RATES = {"null": "500,2000", "mlp": "100,300", "particlenet": "20,60"}
MODEL = {"null": "null", "mlp": "mlp", "particlenet": "particlenet"}
# ParticleNet's inputs have variable dims (P points, S secondary vertices): one fixed jet size for both tools
_JET = ("pf_points:2,64", "pf_features:20,64", "pf_mask:1,64",
        "sv_points:2,8", "sv_features:11,8", "sv_mask:1,8")
SHAPES = {"particlenet": [f for spec in _JET for f in ("--shape", spec)]}
# perf_analyzer's CSV latency breakdown: per-request means in µs that add up to its mean latency
PA_PARTS = ("Client Send", "Network+Server Send/Recv", "Server Queue", "Server Compute Input",
            "Server Compute Infer", "Server Compute Output", "Client Recv")


def cpus() -> tuple[str, str]:
    """(the tool's CPU, the server's CPUs)."""
    n = os.cpu_count() or 1
    return ("0", ",".join(str(i) for i in range(1, n)) or "0")


@contextmanager
def server(kind: str, server_cpus: str, serve_args: list[str]) -> Iterator[str]:
    """A running server of `kind` pinned to `server_cpus` (a served model with `serve_args` added);
    yields its gRPC URL."""
    if kind == "null":
        port = free_port()
        null = null_kserve.start(port, cpu=int(server_cpus.split(",")[0]))
        try:
            yield f"127.0.0.1:{port}"
        finally:
            null.terminate()
            null.wait(10)
        return
    grpc_port, http, metrics = free_ports(3)
    fd, log_name = tempfile.mkstemp(prefix=f"vs_pa_{kind}_", suffix=".log")
    cmd = ["taskset", "-c", server_cpus, sys.executable, "-m", "saturate", "serve", "--model", kind,
           "--bind", "127.0.0.1", "--grpc-port", str(grpc_port), "--http-port", str(http),
           "--metrics-port", str(metrics), "--max-batch", "64", *serve_args]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=fd, stderr=subprocess.STDOUT, start_new_session=True)
    os.close(fd)
    try:
        deadline = time.monotonic() + 300
        while "saturate serve: ready" not in Path(log_name).read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{kind} server did not start; see {log_name}")
            time.sleep(0.5)
        yield f"127.0.0.1:{grpc_port}"
    finally:
        proc.terminate()
        proc.wait(60)


def server_counts(url: str, model: str) -> tuple[int, int, int]:
    """What the server counted so far (its statistics): successful requests, inferences, executions."""
    with grpcclient.InferenceServerClient(url) as c:
        stats = c.get_inference_statistics(model, as_json=True)["model_stats"][0]
    return (int(stats["inference_stats"]["success"].get("count", 0)), int(stats.get("inference_count", 0)),
            int(stats.get("execution_count", 0)))


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_tool(tool: str, pa: str, url: str, model: str, level: tuple[str, float], rule: list[str],
             tool_cpu: str, driver: str = "auto", sender: str = "auto") -> dict[str, float] | None:
    """One run of one tool on one level: its numbers, or None when it failed."""
    kind, value = level
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        lv_flag = (["--concurrency-range", str(int(value))] if kind == "c"
                   else ["--request-rate-range", f"{value:g}"])
        base = ["-m", model, "-u", url, "-i", "grpc", *lv_flag, *rule, *SHAPES.get(model, [])]
        if tool.startswith("pa"):  # pa_sync, pa_again (the A/A control: sync once more), pa_async
            cmd = [pa, *base, "-f", f"{out}.csv", *(["--async"] if tool == "pa_async" else [])]
        else:
            cmd = [sys.executable, "-m", "saturate", "load", *base, "--json", f"{out}.json", "--quiet",
                   "--driver", driver, "--sender", sender]
        before, before_cpu = server_counts(url, model), children_cpu_s()
        res = subprocess.run(["taskset", "-c", tool_cpu, *cmd], cwd=REPO, capture_output=True, text=True,
                             timeout=600)
        cpu_s, after = children_cpu_s() - before_cpu, server_counts(url, model)
        n, inferences, executions = (a - b for a, b in zip(after, before, strict=True))
        if res.returncode != 0:
            print(f"  {tool} {kind}={value:g}: exit {res.returncode}: "
                  f"{(res.stderr or res.stdout).strip().splitlines()[-1:]}", file=sys.stderr)
            return None
        row: dict[str, float] = {"cpu_us_per_req": 1e6 * cpu_s / n if n else float("nan"),
                                 # the server's average batch over the run (its dynamic batcher's work)
                                 "batch": inferences / executions if executions else float("nan")}
        if tool.startswith("pa"):
            with open(f"{out}.csv") as fh:
                (r,) = list(csv.DictReader(fh))[:1]
            # the mean latency: its column (with --collect-metrics), else the sum of the breakdown's means
            avg = float(r["Avg latency"]) if r.get("Avg latency") else sum(float(r[k]) for k in PA_PARTS)
            row.update(tput=float(r["Inferences/Second"]), p50=float(r["p50 latency"]),
                       p95=float(r["p95 latency"]), avg=avg)
        else:
            (lv,) = json.loads(Path(f"{out}.json").read_text())["levels"]
            # a rate's latency as perf_analyzer counts it: from the actual send (saturate's service
            # time); saturate's own latency runs from the due time, kept as due_p50
            lat = lv["service_latency_us"] if kind == "r" else lv["latency_us"]
            row.update(tput=lv["throughput"]["infer_per_s"], p50=lat["p50"], p95=lat["p95"],
                       avg=lat["avg"], due_p50=lv["latency_us"]["p50"],
                       window_cpu=lv["client"]["cpu_us_per_request"] or float("nan"))
        if kind == "c":  # Little's law: each of the c slots cycles once per latency + turn-around
            row["turnaround"] = value * 1e6 / row["tput"] - row["avg"] if row["tput"] else float("nan")
        return row


def med(rows: list[dict[str, float]], key: str) -> float:
    vals = [r[key] for r in rows if key in r]
    return statistics.median(vals) if vals else float("nan")


def label(kind: str, value: float) -> str:
    """A level as the tables name it: ``c=4`` or ``100 req/s``."""
    return f"c={value:g}" if kind == "c" else f"{value:g} req/s"


def ratios_of(sat: list[dict[str, float]], refs: list[list[dict[str, float]]], key: str,
              pick: Callable[[list[float]], float] = max) -> list[float]:
    """saturate / perf_analyzer within each repetition (the runs next to each other in time, so a slow
    stretch of the machine hits both), the reference being ``pick`` over perf_analyzer's modes there."""
    ref_by_rep: dict[float, list[float]] = defaultdict(list)
    for rows in refs:
        for r in rows:
            if key in r and r[key] == r[key]:
                ref_by_rep[r["rep"]].append(r[key])
    return [r[key] / pick(ref_by_rep[r["rep"]]) for r in sat
            if key in r and ref_by_rep.get(r["rep"]) and pick(ref_by_rep[r["rep"]])]


def paired(sat: list[dict[str, float]], refs: list[list[dict[str, float]]], key: str,
           pick: Callable[[list[float]], float] = max, spread: bool = False) -> str:
    """The median of the paired ratios (``ratios_of``), with their range when ``spread``."""
    ratios = ratios_of(sat, refs, key, pick)
    if not ratios:
        return "-"
    text = f"{statistics.median(ratios):.2f}"
    return f"{text} ({min(ratios):.2f} to {max(ratios):.2f})" if spread and len(ratios) > 1 else text


def interval(ratios: list[float]) -> str:
    """The geometric mean of the paired ratios and its 95% t-interval (loadgen.repeats.t_interval on
    their logarithms): an interval inside 0.95-1.05 shows parity, one that holds 1 but reaches past it
    says the repetitions were too few or too noisy, one that excludes 1 a real difference."""
    st = t_interval([math.log(r) for r in ratios if r > 0])
    if st["mean"] is None:
        return "-"
    if st["ci_low"] is None or st["ci_high"] is None:
        return f"{math.exp(st['mean']):.3f}"
    return f"{math.exp(st['mean']):.3f} [{math.exp(st['ci_low']):.3f}, {math.exp(st['ci_high']):.3f}]"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--servers", default="null,mlp,particlenet")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--window-ms", type=int, default=1000)
    p.add_argument("--stability", type=int, default=25, help="-s, percent")
    p.add_argument("--max-trials", type=int, default=10, help="-r")
    p.add_argument("--concurrency", default="1,4,16,64", help="levels against the null server")
    p.add_argument("--served-concurrency", default="1,4,16", help="levels against the served models")
    p.add_argument("--rates", action="append", default=[], metavar="SERVER=R1,R2")
    p.add_argument("--driver", default="auto", choices=DRIVERS,
                   help="saturate load --driver (the C loop, threads or the event loop)")
    p.add_argument("--input-data", default=None, metavar="random|zero|FILE.json",
                   help="the same --input-data for both tools; by default each its own random data "
                   "(perf_analyzer: one buffer of random bytes; saturate: uniform [0, 1) floats)")
    p.add_argument("--sender", default="auto", choices=SENDERS,
                   help="saturate load --sender (the threads' gRPC sender: C core or grpcio)")
    p.add_argument("--serve-args", default="", metavar="FLAGS",
                   help="extra `saturate serve` flags for the served models, e.g. a dynamic batcher's "
                   "--max-queue-delay-us (the null server takes none)")
    p.add_argument("--control", action="store_true",
                   help="run perf_analyzer sync twice per level and repetition: the A/A ratio of the two "
                   "is the machine's noise floor (third table)")
    args = p.parse_args()
    pa = shutil.which("perf_analyzer") or str(REPO / ".venv" / "bin" / "perf_analyzer")
    if not Path(pa).exists():
        print("vs_perf_analyzer: no perf_analyzer (run `make perf-analyzer`)", file=sys.stderr)
        return 2
    servers = args.servers.split(",")
    rates = dict(DEFAULT_RATES, **dict(r.split("=", 1) for r in args.rates if "=" in r))
    bad = [k for k in servers if k not in MODEL]
    bad += [r for r in args.rates if "=" not in r or r.split("=", 1)[0] not in MODEL]
    bad += [r for k in servers if k in MODEL for r in rates[k].split(",")
            if r and not r.replace(".", "", 1).isdigit()]
    if bad:
        print(f"vs_perf_analyzer: bad --servers or --rates {bad}: servers from {','.join(MODEL)}, "
              "one --rates SERVER=R1,R2 per server (empty: no rate levels)", file=sys.stderr)
        return 2
    rule = ["-p", str(args.window_ms), "-s", str(args.stability), "-r", str(args.max_trials),
            *(["--input-data", args.input_data] if args.input_data else [])]
    # saturate's modules byte-compiled, as an installed package's are: with PYTHONDONTWRITEBYTECODE (set
    # on some machines) every run would compile them from source again, ~70 ms counted as its CPU
    subprocess.run([sys.executable, "-m", "compileall", "-q", *PACKAGES], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    tool_cpu, server_cpus = cpus()
    results: dict[tuple[str, str, float, str], list[dict[str, float]]] = defaultdict(list)
    order: list[tuple[str, str, float]] = []
    for kind in servers:
        concs = args.concurrency if kind == "null" else args.served_concurrency
        levels = ([("c", float(c)) for c in concs.split(",") if c]  # "" = no such levels
                  + [("r", float(r)) for r in rates[kind].split(",") if r])
        order += [(kind, lk, lv) for lk, lv in levels]
        with server(kind, server_cpus, shlex.split(args.serve_args)) as url:
            for rep in range(args.reps):
                for lk, lv in levels:
                    tools = ["pa_sync", "pa_async", "saturate"] if lk == "c" else ["pa_sync", "saturate"]
                    tools += ["pa_again"] if args.control else []
                    k = rep % len(tools)
                    for tool in tools[k:] + tools[:k]:  # rotate who goes first
                        row = run_tool(tool, pa, url, MODEL[kind], (lk, lv), rule, tool_cpu, args.driver,
                                       args.sender)
                        if row is not None:
                            results[(kind, lk, lv, tool)].append(dict(row, rep=float(rep)))
                print(f"  {kind}: repetition {rep + 1}/{args.reps} done", file=sys.stderr, flush=True)
    print(f"\nperf_analyzer vs saturate load: medians of {args.reps} interleaved repetitions; tool on CPU "
          f"{tool_cpu}, server on CPU {server_cpus}; `{' '.join(rule)}`; gRPC. Ratios: saturate / "
          "perf_analyzer within each repetition, their median and (range) over the repetitions "
          "(throughput vs PA's better mode and vs PA sync, latency vs PA sync; rates: PA's rate mode, "
          "latency from the actual send as PA counts it, i.e. saturate's service time; saturate's own "
          "latency, from each request's due time, in the last column); "
          f"saturate --driver {args.driver} --sender {args.sender}; served models: `saturate serve "
          f"--max-batch 64{' ' + args.serve_args if args.serve_args else ''}`.\n")
    print("| server | level | PA sync infer/s | PA async infer/s | saturate infer/s | ratio | "
          "ratio vs PA sync | PA p50 µs | saturate p50 µs | ratio | PA p95 µs | saturate p95 µs | ratio | "
          "PA CPU µs/req (leaner mode) | saturate CPU µs/req | ratio | saturate CPU µs/req in windows | "
          "saturate p50 µs from due |")
    print("|" + "---|" * 18)
    for kind, lk, lv in order:
        sync, asy, sat = (results[(kind, lk, lv, t)] for t in ("pa_sync", "pa_async", "saturate"))
        level = label(lk, lv)
        cells = [kind, level, f"{med(sync, 'tput'):.0f}", f"{med(asy, 'tput'):.0f}" if asy else "-",
                 f"{med(sat, 'tput'):.0f}", paired(sat, [sync, asy], "tput", max, spread=True),
                 paired(sat, [sync], "tput", max)]
        for key in ("p50", "p95"):
            cells += [f"{med(sync, key):.0f}", f"{med(sat, key):.0f}",
                      paired(sat, [sync], key, max, spread=key == "p50")]
        pa_cpu = min(med(sync, "cpu_us_per_req"), med(asy, "cpu_us_per_req") if asy else float("inf"))
        cells += [f"{pa_cpu:.0f}", f"{med(sat, 'cpu_us_per_req'):.0f}",
                  paired(sat, [sync, asy], "cpu_us_per_req", min), f"{med(sat, 'window_cpu'):.0f}",
                  f"{med(sat, 'due_p50'):.0f}" if lk == "r" else "-"]
        print("| " + " | ".join(cells) + " |")
    print("\nThe server's average batch over each tool's runs (inference_count / execution_count of its "
          "statistics) and, at a concurrency, each tool's turn-around: the time a slot spends between a "
          "response and its next request, c / throughput - mean latency (Little's law; medians):\n")
    print("| server | level | batch PA sync | batch PA async | batch saturate | turn-around µs PA sync | "
          "PA async | saturate |\n|" + "---|" * 8)
    for kind, lk, lv in order:
        sync, asy, sat = (results[(kind, lk, lv, t)] for t in ("pa_sync", "pa_async", "saturate"))
        level = label(lk, lv)
        cells = [f"{med(rows, 'batch'):.2f}" if rows else "-" for rows in (sync, asy, sat)]
        cells += [f"{med(rows, 'turnaround'):.0f}" if rows and lk == "c" else "-"
                  for rows in (sync, asy, sat)]
        print(f"| {kind} | {level} | " + " | ".join(cells) + " |")
    print("\nThe paired ratios' geometric mean and its 95% t-interval over the repetitions, against "
          "perf_analyzer sync (an interval inside 0.95-1.05 shows parity; one holding 1 but reaching past "
          "it, too few or too noisy repetitions; one excluding 1, a real difference)"
          + ("; beside it perf_analyzer sync once more against itself (A/A: PA sync again / PA sync, "
             "the noise floor of this machine)" if args.control else "") + ":\n")
    control = " A/A throughput | A/A p50 |" if args.control else ""
    print(f"| server | level | n | throughput | p50 |{control}\n|" + "---|" * (7 if args.control else 5))
    for kind, lk, lv in order:
        sync, sat = results[(kind, lk, lv, "pa_sync")], results[(kind, lk, lv, "saturate")]
        level = label(lk, lv)
        cells = [kind, level, str(len(ratios_of(sat, [sync], "p50")))]
        for rows in [sat] + ([results[(kind, lk, lv, "pa_again")]] if args.control else []):
            cells += [interval(ratios_of(rows, [sync], key)) for key in ("tput", "p50")]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

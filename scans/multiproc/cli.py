"""``saturate scan multiproc``: argparse → :class:`~scans.multiproc.multiproc_scan.MultiprocConfig` → run."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from saturate.errors import ConfigError
from scans.multiproc.topology import PINNINGS, numactl_prefix, plan_placements
from scans.multiproc.workloads import DirectWorkload, LoadgenWorkload, Phases, Workload

WORKLOADS: tuple[str, ...] = ("direct", "loadgen")


def add_multiproc(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``scan multiproc`` to the ``scan`` subparsers."""
    p = sub.add_parser(
        "multiproc",
        help="N pinned processes from a topology, synchronised start: own/effective/adjusted throughput",
        description="Run one workload per process (direct inference of a zoo model, or a loadgen client "
        "against a server), each pinned to its cores, with warm-up, a measured window and cool-down by time "
        "between barriers that time out. Writes OUT/multiproc.json and OUT/multiproc_times.npz.",
    )
    a = p.add_argument
    a("--topology", default=None, help="JSON file with a list of core lists (one per process), or '0-1;2-3'")
    a("--processes", type=int, default=None, help="number of processes (default: one per topology entry; "
      "without --topology the usable cores are split evenly)")
    a("--pinning", default="core", choices=PINNINGS,
      help="core: sched_setaffinity; numa: numactl --localalloc --physcpubind too; none (default core)")
    a("--devices", default=None, help="device list per process, ';' between processes, e.g. '0,1;2,3' "
      "(sets CUDA_VISIBLE_DEVICES and HIP_VISIBLE_DEVICES)")
    a("--workload", default=None, choices=WORKLOADS,
      help="direct (default) or loadgen (default when -u is given)")
    a("--model", default="particlenet", help="zoo model (direct) or served model name (loadgen)")
    a("-b", "--batch-size", type=int, default=1, help="items per call or request (default 1)")
    a("--backend", default="torch", help="direct: torch, torchscript or onnx (default torch)")
    a("--device", default="cpu", help="direct: cpu or cuda:N (N counts within the process's --devices)")
    a("--precision", default="fp32", help="direct: fp32, fp16 or bf16 (default fp32)")
    a("--model-file", default=None, help="direct: state_dict/TorchScript/ONNX file instead of seeded weights")
    a("--points", type=int, default=None, help="direct: ParticleNet PF candidates P (default 100)")
    a("--svs", type=int, default=None, help="direct: ParticleNet secondary vertices S (default 10)")
    a("--threads", type=int, default=None, help="direct: torch threads per process (default: its cores)")
    a("-u", "--url", default=None, help="loadgen: server HOST:PORT")
    a("-i", "--protocol", default="grpc", choices=("grpc", "http"), help="loadgen: protocol (default grpc)")
    a("--concurrency", type=int, default=1, help="loadgen: requests in flight per process (default 1)")
    a("--shape", action="append", default=[], metavar="NAME:D1,D2", help="loadgen: variable input dims")
    a("--access-token", default=None, help="loadgen: Triton access token")
    a("--warmup", type=float, default=2.0, help="warm-up seconds after the start barrier (default 2)")
    a("--time", type=float, default=10.0, help="measured seconds (default 10)")
    a("--cooldown", type=float, default=1.0, help="seconds of load after measuring, at least (default 1)")
    a("--barrier-timeout", type=float, default=30.0,
      help="seconds a barrier waits beyond its phase for a late child (default 30)")
    a("--setup-timeout", type=float, default=300.0, help="seconds for every child to load (default 300)")
    a("--trim", type=int, default=10,
      help="times dropped at each end for the adjusted throughput (default 10)")
    a("--seed", type=int, default=0, help="seed of the synthetic inputs (default 0)")
    a("--out", required=True, type=Path, help="result directory (created)")
    p.set_defaults(func=run_multiproc_cli)


def _workload(args: argparse.Namespace) -> Workload:
    kind = args.workload or ("loadgen" if args.url else "direct")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size {args.batch_size} must be at least 1")
    if kind == "loadgen":
        from loadgen.config import parse_shape

        if not args.url:
            raise ConfigError("--workload loadgen needs -u HOST:PORT of a running server")
        if args.concurrency < 1:
            raise ConfigError(f"--concurrency {args.concurrency} must be at least 1")
        return LoadgenWorkload(url=args.url, model=args.model, protocol=args.protocol,
                               batch_size=args.batch_size, concurrency=args.concurrency,
                               access_token=args.access_token,
                               shapes=tuple(parse_shape(s) for s in args.shape), seed=args.seed)
    from servers.backends import BACKENDS
    from servers.models import get_spec

    spec = get_spec(args.model)  # unknown model → one line before any child starts
    sizes: dict[str, int] = {}
    if args.points is not None:
        sizes["P"] = args.points
    if args.svs is not None:
        sizes["S"] = args.svs
    spec.sizes(sizes)
    if args.backend not in BACKENDS:
        raise ConfigError(f"unknown backend {args.backend!r}; choose one of: {', '.join(BACKENDS)}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads {args.threads} must be at least 1")
    return DirectWorkload(model=args.model, backend=args.backend, device=args.device,
                          precision=args.precision,
                          model_file=args.model_file, batch_size=args.batch_size,
                          sizes=tuple(sorted(sizes.items())), threads=args.threads, seed=args.seed)


def config_from_args(args: argparse.Namespace) -> Any:
    """The MultiprocConfig of parsed flags (bad values → one-line ConfigError)."""
    from scans.multiproc.multiproc_scan import MultiprocConfig

    placements = plan_placements(args.topology, args.processes, args.devices, args.pinning)
    if args.pinning == "numa":
        numactl_prefix(placements[0].cores)  # numactl missing → one line before any child starts
    phases = Phases(warmup_ns=int(args.warmup * 1e9), measure_ns=int(args.time * 1e9),
                    cooldown_ns=int(args.cooldown * 1e9), barrier_timeout_s=args.barrier_timeout,
                    setup_timeout_s=args.setup_timeout)
    return MultiprocConfig(placements=tuple(placements), workload=_workload(args), pinning=args.pinning,
                           phases=phases, trim=args.trim)


def run_multiproc_cli(args: argparse.Namespace) -> int:
    from scans.multiproc.multiproc_scan import JSON_NAME, ChildFailed, run_multiproc, summary_lines

    cfg = config_from_args(args)

    def on_term(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through the cleanup: children stopped, JSON written

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        doc = run_multiproc(cfg, args.out)
    except ChildFailed as exc:
        usage = exc.as_usage_error()
        if usage is not None:
            raise usage from None
        print(f"saturate: error: scan multiproc: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("\n".join(summary_lines(doc)), flush=True)
    print(f"scan multiproc: results in {args.out / JSON_NAME}", file=sys.stderr, flush=True)
    return 0

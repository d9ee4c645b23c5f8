"""``saturate serve | infer | export``: the servers package's subcommands."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from saturate.errors import ConfigError
from servers.backends.base import BACKENDS, GRAPH_OPT_LEVELS, ONNX_PROVIDERS, PRECISIONS, BackendConfig
from servers.models import MODEL_NAMES, ModelOptions


def int_list(text: str) -> tuple[int, ...]:
    """``"8,16"`` → ``(8, 16)``; anything else is an argparse error (one line, exit 2)."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def sizes_arg(text: str) -> dict[str, int]:
    """``"P=50,S=4"`` → ``{"P": 50, "S": 4}``."""
    sizes: dict[str, int] = {}
    for part in filter(None, text.split(",")):
        key, sep, value = part.partition("=")
        if not sep or not value.strip().isdigit():
            raise argparse.ArgumentTypeError(f"expected NAME=N[,NAME=N], e.g. P=50,S=4; got {text!r}")
        sizes[key.strip()] = int(value)
    return sizes


def add_model_flags(p: argparse.ArgumentParser) -> None:
    """Zoo model choice and the MLP's sizes (shared by serve and export)."""
    p.add_argument(
        "--model",
        "-m",
        default="particlenet",
        metavar="NAME",
        help=f"zoo model: {' | '.join(MODEL_NAMES)} (default particlenet); also the Triton model name",
    )
    g = p.add_argument_group("model sizes (MLP only) and weights")
    g.add_argument("--mlp-features", type=int, default=16, metavar="F", help="MLP input width (default 16)")
    g.add_argument(
        "--mlp-hidden",
        type=int_list,
        default=(64, 64),
        metavar="N[,N]",
        help="MLP hidden layer widths (default 64,64)",
    )
    g.add_argument("--mlp-classes", type=int, default=8, metavar="C", help="MLP output width (default 8)")
    g.add_argument("--seed", type=int, default=0, help="seed of the generated weights (default 0)")


def model_options(args: argparse.Namespace) -> ModelOptions:
    return ModelOptions(
        mlp_features=args.mlp_features,
        mlp_hidden=tuple(args.mlp_hidden),
        mlp_classes=args.mlp_classes,
        seed=args.seed,
    )


def add_backend_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("backend")
    g.add_argument(
        "--backend", default="torch", metavar="NAME", help=f"{' | '.join(BACKENDS)} (default torch)"
    )
    g.add_argument("--device", default="cpu", help="cpu or cuda:N (ROCm GPUs are cuda:N too; default cpu)")
    g.add_argument(
        "--model-file",
        type=Path,
        metavar="FILE",
        help="weights instead of the seeded ones: a state_dict (torch), a TorchScript archive "
        "(torchscript) or an .onnx file (onnx)",
    )
    g.add_argument(
        "--precision",
        default="fp32",
        choices=tuple(PRECISIONS),
        help="torch/torchscript compute precision (default fp32); inputs and outputs stay FP32",
    )
    g.add_argument("--compile", action="store_true", help="torch.compile the eager model (torch backend)")
    g.add_argument(
        "--onnx-provider",
        default="auto",
        choices=("auto", *ONNX_PROVIDERS),
        help="ONNX Runtime execution provider (default auto: CPU on cpu, else CUDA/ROCm/MIGraphX)",
    )
    g.add_argument(
        "--graph-opt-level",
        default="all",
        choices=GRAPH_OPT_LEVELS,
        help="ONNX Runtime graph optimisation level (default all)",
    )
    g.add_argument(
        "--allow-cpu-fallback",
        action="store_true",
        help="run on CPUExecutionProvider when the requested ONNX provider is missing, instead of failing",
    )


def backend_config(args: argparse.Namespace) -> BackendConfig:
    return BackendConfig(
        kind=args.backend,
        device=args.device,
        precision=args.precision,
        compile=args.compile,
        model_file=args.model_file,
        onnx_provider=args.onnx_provider,
        graph_opt_level=args.graph_opt_level,
        allow_cpu_fallback=args.allow_cpu_fallback,
    )


def _nonneg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _register_serve(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a zoo model with PyTriton (Triton Inference Server)",
        description="Serve a zoo model behind Triton Inference Server (PyTriton). Prints one line starting "
        "'saturate serve: ready' when it answers; stops cleanly on SIGTERM or Ctrl-C.",
    )
    add_model_flags(p)
    add_backend_flags(p)
    g = p.add_argument_group("batching and instances")
    g.add_argument(
        "--max-batch", type=int, default=1024, metavar="N", help="Triton max_batch_size (default 1024)"
    )
    g.add_argument(
        "--preferred-batch",
        type=int_list,
        default=(),
        metavar="N[,N]",
        help="dynamic batcher preferred batch sizes (default none)",
    )
    g.add_argument(
        "--max-queue-delay-us",
        type=_nonneg,
        default=0,
        metavar="US",
        help="dynamic batcher max queue delay in µs (default 0)",
    )
    g.add_argument("--instances", type=int, default=1, metavar="N", help="model instances (default 1)")
    g = p.add_argument_group("network")
    g.add_argument("--http-port", type=int, default=8000, metavar="PORT", help="HTTP port (default 8000)")
    g.add_argument("--grpc-port", type=int, default=8001, metavar="PORT", help="gRPC port (default 8001)")
    g.add_argument(
        "--metrics-port", type=int, default=8002, metavar="PORT", help="Prometheus port (default 8002)"
    )
    g.add_argument(
        "--bind",
        default="127.0.0.1",
        metavar="ADDR",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 for all interfaces)",
    )
    g.add_argument(
        "--access-token",
        metavar="TOKEN",
        help="token that guards the statistics/repository endpoints (generated and printed when absent)",
    )
    g.add_argument(
        "--guard-statistics",
        action="store_true",
        help="statistics need the token on a loopback bind too (a shared node's other users reach loopback)",
    )
    g.add_argument(
        "--log-verbose", type=_nonneg, default=0, metavar="N", help="Triton log verbosity (default 0)"
    )
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from servers.models import get_spec
    from servers.triton import ServerConfig, serve

    logging.basicConfig(
        level=logging.INFO if args.log_verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    get_spec(args.model)  # unknown model: fail before anything heavy
    config = ServerConfig(
        model=args.model,
        backend=backend_config(args),
        options=model_options(args),
        max_batch=args.max_batch,
        preferred_batch=tuple(args.preferred_batch),
        max_queue_delay_us=args.max_queue_delay_us,
        instances=args.instances,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        bind=args.bind,
        access_token=args.access_token,
        guard_statistics=args.guard_statistics,
        log_verbose=args.log_verbose,
    )
    return serve(config)


def _register_export(sub: argparse._SubParsersAction[Any]) -> None:
    from servers.export import DEFAULT_OPSET, FORMATS

    p = sub.add_parser(
        "export",
        help="write a zoo model as ONNX or TorchScript (dynamic batch and point axes)",
        description="Write a zoo model with its seeded weights as ONNX or TorchScript, with dynamic batch "
        "and point axes, ready for --backend onnx|torchscript --model-file FILE.",
    )
    add_model_flags(p)
    p.add_argument("--format", required=True, choices=FORMATS, help="onnx or torchscript")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="FILE", help="file to write")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from servers.export import export_file
    from servers.models import build_model, get_spec

    options = model_options(args)
    spec = get_spec(args.model, options)
    if not 11 <= args.opset <= 21:
        raise ConfigError(f"--opset {args.opset} is outside 11..21; the default {17} works with onnxruntime")
    export_file(build_model(spec, options), spec, args.format, args.output, args.opset)
    print(
        f"saturate export: wrote {args.output} ({args.format}, model {spec.name}, "
        f"inputs {', '.join(spec.input_names)}, dynamic batch"
        f"{' and ' + ', '.join(spec.dynamic_axes.values()) if spec.dynamic_axes else ''})"
    )
    return 0


def _register_infer(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "infer",
        help="send one request with the model's default inputs and print what comes back",
        description="Send one request with the model's default inputs over gRPC or HTTP; print the outputs' "
        "shapes, a checksum and the latency. With --access-token also the server's counts.",
    )
    p.add_argument("-m", "--model", required=True, metavar="NAME", help="model name on the server")
    p.add_argument(
        "-u",
        "--url",
        default="127.0.0.1:8001",
        metavar="HOST:PORT",
        help="server address (default 127.0.0.1:8001, the gRPC port)",
    )
    p.add_argument(
        "-i", "--protocol", default="grpc", choices=("grpc", "http"), help="grpc (default) or http"
    )
    p.add_argument("-b", "--batch", type=int, default=1, metavar="N", help="batch size (default 1)")
    p.add_argument(
        "--sizes",
        type=sizes_arg,
        default={},
        metavar="P=N,S=N",
        help="variable sizes of zoo models (ParticleNet default P=100,S=10)",
    )
    p.add_argument("--access-token", metavar="TOKEN", help="the server's token, to read its statistics")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated inputs (default 0)")
    p.set_defaults(func=run_infer)


def run_infer(args: argparse.Namespace) -> int:
    from servers.infer import InferConfig, format_result, infer_once

    config = InferConfig(
        model=args.model,
        url=args.url,
        protocol=args.protocol,
        batch=args.batch,
        sizes=args.sizes,
        access_token=args.access_token,
        seed=args.seed,
    )
    for line in format_result(config, infer_once(config)):
        print(line)
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``serve``, ``infer`` and ``export`` to the front door."""
    _register_serve(sub)
    _register_infer(sub)
    _register_export(sub)

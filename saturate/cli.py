"""The front door: argparse dispatch to each package's subcommands.

Each package keeps its own ``cli.py`` with ``register(subparsers)``; every subcommand sets
``func`` (args -> exit code) with ``parser.set_defaults``. This module only dispatches and turns a
:class:`~saturate.errors.UsageError` into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from saturate.errors import EXIT_USAGE, UsageError
from saturate.outputs import check_outputs
from saturate.tokens import add_file_flags, resolve_args
from saturate.version import saturate_version

#: Packages whose ``cli.register`` adds subcommands, in help order. A package that has none yet
#: is simply absent from this list.
COMMAND_PACKAGES: tuple[str, ...] = ("servers.cli", "loadgen.cli", "monitors.cli", "scans.cli",
                                      "scans.tune.cli")
#: Which package registers each subcommand: `saturate load` then imports only loadgen (no torch),
#: which keeps a client's start-up short. tests/unit/test_cli.py checks it against the packages.
COMMAND_OWNERS: dict[str, str] = {
    "serve": "servers.cli", "infer": "servers.cli", "export": "servers.cli",
    "load": "loadgen.cli",
    "monitor": "monitors.cli",
    "scan": "scans.cli", "report": "scans.cli", "demo": "scans.cli", "sweep": "scans.cli",
    "pa": "scans.cli", "job": "scans.cli", "merge": "scans.cli", "compare": "scans.cli",
    "tune": "scans.tune.cli",
}  # fmt: skip


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are UsageErrors (one line, exit 2), not usage dumps."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``saturate`` parser: with every subcommand, or only those of ``command``'s package."""
    parser = _Parser(
        prog="saturate",
        description="How many inferences per second does this model sustain behind a real "
        "inference server, and what saturates first: the client, the server queue, or the GPU?",
    )
    parser.add_argument("--version", action="version", version=f"saturate {saturate_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    owner = COMMAND_OWNERS.get(command or "")
    for name in COMMAND_PACKAGES if owner is None else (owner,):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    add_file_flags(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``saturate`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(args_list[0] if args_list else None)
        args = parser.parse_args(args_list)
        resolve_args(args)
        check_outputs(args)
        func = getattr(args, "func", None)
        if func is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        code: int = func(args)
        return code
    except UsageError as exc:
        print(f"saturate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("saturate: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

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
from saturate.version import saturate_version

#: Packages whose ``cli.register`` adds subcommands, in help order. A package that has none yet
#: is simply absent from this list.
COMMAND_PACKAGES: tuple[str, ...] = ("servers.cli", "loadgen.cli", "monitors.cli", "scans.cli")


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are UsageErrors (one line, exit 2), not usage dumps."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    """The full ``saturate`` parser with every registered subcommand."""
    parser = _Parser(
        prog="saturate",
        description="How many inferences per second does this model sustain behind a real "
        "inference server, and what saturates first: the client, the server queue, or the GPU?",
    )
    parser.add_argument("--version", action="version", version=f"saturate {saturate_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_PACKAGES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``saturate`` console script."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
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

"""Where an access token comes from, and keeping it out of everything saturate writes.

Every command that takes ``--access-token TOKEN`` also takes ``--access-token-file FILE`` (first line
of FILE) and reads ``SATURATE_ACCESS_TOKEN`` when neither is given; the front door resolves the three
into ``args.access_token`` once (:func:`resolve_args`). A token never goes on a command line saturate
builds when another way exists (children get it in their environment, which only their owner can
read in /proc), and :func:`mask_token` is the one place a token is blanked out of text saturate writes
(result JSON, console copies, logs).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

from saturate.errors import ConfigError

#: The environment variable read when neither --access-token nor --access-token-file is given.
TOKEN_ENV = "SATURATE_ACCESS_TOKEN"
MASK = "***"
#: The header that carries Triton's access token, per protocol — the one place these names live: Triton's
#: gRPC endpoint expects the ``triton-grpc-protocol-`` prefix on the metadata key, HTTP the bare header
#: (PyTriton 0.7 / Triton 2.51 restricted protocols).
GRPC_TOKEN_HEADER = "triton-grpc-protocol-triton-access-token"
HTTP_TOKEN_HEADER = "triton-access-token"
TOKEN_HEADERS: dict[str, str] = {"grpc": GRPC_TOKEN_HEADER, "http": HTTP_TOKEN_HEADER}


def add_file_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--access-token-file`` next to every ``--access-token`` in ``parser``'s subcommands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                add_file_flags(sub)
        elif action.dest == "access_token" and "--access-token-file" not in parser._option_string_actions:
            container: Any = getattr(action, "container", parser)
            container.add_argument(
                "--access-token-file", default=None, metavar="FILE",
                help=f"read the access token from FILE's first line (else --access-token, else ${TOKEN_ENV})")


def read_token_file(path: str) -> str:
    try:
        with open(path) as f:
            token = f.readline().strip()
    except OSError as exc:
        why = exc.strerror or exc
        raise ConfigError(f"--access-token-file {path}: {why}; give a readable file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--access-token-file {path}: not a text file") from None
    if not token:
        raise ConfigError(f"--access-token-file {path}: the first line is empty; put the token there")
    return token


def resolve(token: str | None, path: str | None, env: Mapping[str, str] = os.environ) -> str | None:
    """The token: --access-token, else --access-token-file, else $SATURATE_ACCESS_TOKEN, else None."""
    if token is not None and path is not None:
        raise ConfigError("give --access-token or --access-token-file, not both")
    if path is not None:
        return read_token_file(path)
    if token is not None:
        return token
    return env.get(TOKEN_ENV) or None


def resolve_args(args: argparse.Namespace) -> None:
    """Fold --access-token-file and $SATURATE_ACCESS_TOKEN into ``args.access_token`` (in place)."""
    if hasattr(args, "access_token"):
        args.access_token = resolve(args.access_token, getattr(args, "access_token_file", None))


def mask_token(text: str, token: str | None) -> str:
    """``text`` with every occurrence of ``token`` replaced by ``***``."""
    return text.replace(token, MASK) if token else text


def mask_argv(argv: list[str], token: str | None) -> list[str]:
    """A command line with the token masked (for JSON/log copies of what was run)."""
    return [mask_token(a, token) for a in argv]


def child_env(token: str | None, base: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment for a saturate child that should use ``token`` (not on its command line)."""
    env = dict(base)
    if token:
        env[TOKEN_ENV] = token
    return env


def argv_tokens(argv: list[str]) -> list[str]:
    """The tokens a command line carries: ``--access-token[=]V`` and ``-H …access-token:V`` headers."""
    found: list[str] = []
    for i, arg in enumerate(argv):
        nxt = argv[i + 1] if i + 1 < len(argv) else ""
        if arg == "--access-token" and nxt:
            found.append(nxt)
        elif arg.startswith("--access-token="):
            found.append(arg.split("=", 1)[1])
        elif arg in ("-H", "--header") and "access-token" in nxt.split(":", 1)[0].lower() and ":" in nxt:
            found.append(nxt.split(":", 1)[1].strip())
    return [t for t in found if t]


def mask_all(text: str, tokens: list[str]) -> str:
    """``text`` with every one of ``tokens`` masked (longest first)."""
    for token in sorted(set(tokens), key=len, reverse=True):
        text = mask_token(text, token)
    return text


def without_token_flag(argv: list[str]) -> tuple[list[str], str | None]:
    """``argv`` with ``--access-token V`` / ``--access-token=V`` taken out, and V (for the child's env)."""
    out: list[str] = []
    token: str | None = None
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--access-token" and i + 1 < len(argv):
            token, skip = argv[i + 1], True
        elif arg.startswith("--access-token="):
            token = arg.split("=", 1)[1]
        else:
            out.append(arg)
    return out, token

"""Outputs are checked for writability before anything is measured (one line, exit 2).

The front door calls :func:`check_outputs` on every parsed command line: the destinations below
are files (``-f``, ``--json``, ``--latency-file``, ``-o/--output``) or result directories (``--out``;
``saturate monitor --out`` is a file). A file must not be a directory and its directory must exist
and take a new file; a directory must not be a file and its nearest existing ancestor must take a new
file. The probe is a temporary file created and removed at once, so nothing is left behind.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from saturate.errors import ConfigError

#: argparse dest -> the flag users type, for the files every command may write.
FILE_DESTS = {"csv_file": "-f", "json_file": "--json", "latency_file": "--latency-file", "output": "-o"}
#: Commands whose ``--out`` is a file rather than a result directory.
OUT_IS_FILE = frozenset({"monitor"})
#: Commands whose ``-o`` may also be a directory (``job render``: one NAME.sbatch per job inside it).
OUTPUT_MAY_BE_DIR = frozenset({"job"})


def _probe(directory: Path) -> str | None:
    """None when ``directory`` takes a new file, else why not."""
    try:
        fd, name = tempfile.mkstemp(dir=directory, prefix=".saturate-probe-")
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    os.close(fd)
    os.unlink(name)
    return None


def check_output_file(path: str | os.PathLike[str], flag: str) -> None:
    """ConfigError unless ``path`` can be written as a file."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"cannot write {flag} {p}: it is a directory; give a file name, e.g. {p / 'out'}")
    parent = p.parent
    if not parent.is_dir():
        raise ConfigError(f"cannot write {flag} {p}: the directory {parent} does not exist; create it first")
    if p.exists() and not os.access(p, os.W_OK):
        raise ConfigError(f"cannot write {flag} {p}: the file is not writable; choose another")
    why = _probe(parent)
    if why:
        raise ConfigError(f"cannot write {flag} {p}: {parent} takes no new file ({why}); choose another")


def check_output_dir(path: str | os.PathLike[str], flag: str) -> None:
    """ConfigError unless ``path`` is (or can be created as) a writable directory."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"cannot write {flag} {p}: it exists and is not a directory; choose a directory")
    ancestor = p.absolute()
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"cannot write {flag} {p}: {ancestor} is not a directory; choose another place")
    why = _probe(ancestor)
    if why:
        raise ConfigError(f"cannot write {flag} {p}: {ancestor} takes no new file ({why}); choose another")


def check_outputs(args: argparse.Namespace) -> None:
    """Check every output destination a parsed command line names (see module doc)."""
    for dest, flag in FILE_DESTS.items():
        value = getattr(args, dest, None)
        if value is None or str(value) == "-":
            continue
        if dest == "output" and getattr(args, "command", None) in OUTPUT_MAY_BE_DIR and Path(value).is_dir():
            check_output_dir(value, flag)
        else:
            check_output_file(value, flag)
    out = getattr(args, "out", None)
    if out is not None and str(out) != "-":
        if getattr(args, "command", None) in OUT_IS_FILE:
            check_output_file(out, "--out")
        else:
            check_output_dir(out, "--out")

"""The front door: every subcommand has its owning package, and `saturate load` starts without torch."""

from __future__ import annotations

import argparse
import subprocess
import sys

from conftest import REPO

from saturate.cli import COMMAND_OWNERS, COMMAND_PACKAGES, build_parser


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(subs[0].choices) if subs else set()


def test_every_subcommand_has_its_owner() -> None:
    assert _commands(build_parser()) == set(COMMAND_OWNERS)
    for package in COMMAND_PACKAGES:
        owned = {c for c, p in COMMAND_OWNERS.items() if p == package}
        first = next(iter(owned))
        assert _commands(build_parser(first)) == owned, package


def test_load_does_not_import_torch() -> None:
    code = (
        "import sys\nfrom saturate.cli import main\n"
        "try:\n    main(['load', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"

"""The Apptainer definition files, checked without Apptainer (building them needs it and the network):
every ``{{ ARG }}`` has a default in ``%arguments`` and every ``%files`` source exists in the repo."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFS = sorted((REPO / "apptainer").glob("*.def"))


def sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"header": []}
    cur = "header"
    for line in text.splitlines():
        if line.startswith("%"):
            cur = line.split()[0][1:]
            out[cur] = []
        elif line.strip() and not line.lstrip().startswith("#"):
            out[cur].append(line.strip())
    return out


def test_three_definitions() -> None:
    assert [d.name for d in DEFS] == ["sdk.def", "server-cuda.def", "server-rocm.def"]


@pytest.mark.parametrize("path", DEFS, ids=lambda p: p.name)
def test_arguments_and_files(path: Path) -> None:
    text = path.read_text()
    sec = sections(text)
    assert any(h.startswith("Bootstrap: docker") for h in sec["header"])
    defaults = dict(line.split("=", 1) for line in sec["arguments"])
    used = set(re.findall(r"\{\{\s*([A-Z_]+)\s*\}\}", text))
    assert used and used <= set(defaults), used - set(defaults)
    for line in sec.get("files", []):
        src = line.split()[0]
        assert (REPO / src).exists(), src
    if path.name == "sdk.def":
        assert "PERF_ANALYZER_VERSION" in defaults and "perf_analyzer" in " ".join(sec["runscript"])
    else:
        assert "/opt/saturate" in " ".join(sec["post"]) and "saturate" in " ".join(sec["runscript"])

"""Slurm job templates (scans/jobs/templates/*.sbatch): parameters, rendering and ``sbatch`` submission.

Templates hold ``{{name}}`` (the value as is: #SBATCH lines, numbers), ``{{q:name}}`` (the value
shell-quoted) and ``{{include:file}}`` (another file of scans/jobs/templates inlined, so the job script is
self-contained). Templates: ``scan`` (a: server + monitor + scan in one job), ``server`` and
``client`` (b: two jobs meeting through a rendezvous file; ``pair`` submits both) and ``multinode``
(c: srun ranks share the concurrency from one agreed start time, then ``saturate merge``).
"""

from __future__ import annotations

import math
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadgen.config import parse_range
from saturate.errors import ConfigError, ToolMissingError
from scans.perf_analyzer.args import GPU_FLAGS

JOBS_DIR = Path(__file__).with_name("templates")
TEMPLATES = {"scan": ("scan",), "server": ("server",), "client": ("client",), "pair": ("server", "client"),
             "multinode": ("multinode",)}
ALIASES = {"a": "scan", "b": "pair", "c": "multinode"}
REQUIRED = ("partition", "time", "out")
DEFAULTS: dict[str, str] = {
    "job_name": "saturate",
    "cpus": "1",
    "gres": "",  # e.g. gpu:1 (→ #SBATCH --gres=gpu:1)
    "image": "",  # server/client image (.sif with saturate installed); empty: saturate from PATH
    "sdk_image": "",  # Triton SDK image for engine=perf_analyzer; empty: perf_analyzer from PATH
    "gpu": "none",  # none | nvidia (--nv) | rocm (--rocm), for apptainer exec
    "saturate": "",  # saturate's command under RUN: "saturate" inside an image, else host_saturate
    "host_saturate": f"{sys.executable} -m saturate",  # for `saturate pa` and `saturate merge`
    "model": "particlenet",
    "backend": "torch",
    "device": "cpu",
    "server_args": "",
    "load_args": "",
    "engine": "saturate",  # saturate | perf_analyzer
    "batch_sizes": "1",
    "concurrency": "1:4:1",  # multinode: default RANKS:4*RANKS:RANKS (every rank needs >= 1)
    "measurement_interval": "5000",
    "stability": "10",
    "max_trials": "10",
    "ready_timeout": "300",
    "port_base": "20000",
    "monitor_interval": "1.0",
    "monitor_source": "auto",
    "bind": "",  # server job (b): default this node's own address (what `host` resolves to); never 0.0.0.0
    "host": "",  # address clients use (default: the server node's hostname)
    "rendezvous": "",  # default OUT/rendezvous.env
    "rendezvous_timeout": "600",
    "nodes": "1",
    "ranks": "2",
    "level_period": "",  # seconds between level starts in multinode; default from -r and -p
    "start_delay": "30",
    "finish_server": "1",  # multinode: write RENDEZVOUS.done at the end so the server job ends
}
INTS = ("cpus", "measurement_interval", "max_trials", "ready_timeout", "port_base", "rendezvous_timeout",
        "nodes", "ranks", "start_delay")
FLOATS = ("stability", "monitor_interval")
#: Values pasted into #SBATCH lines or shell words unquoted: no spaces, quotes or shell syntax.
PLAIN = ("job_name", "partition", "time", "gres", "out", "bind", "host")
_PLAIN = re.compile(r"^[A-Za-z0-9_.,:/@%+=\-\[\]]*$")
_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$")
CHOICES = {"finish_server": ("0", "1")}
_SLOT = re.compile(r"\{\{(q:|include:)?([A-Za-z0-9_.]+)\}\}")
LEVEL_SLACK_S = 20  # a rank's next `saturate load` starts and connects within this


@dataclass(frozen=True)
class Rendered:
    """One rendered job script: its template name and text."""

    name: str
    text: str


def parse_params(items: Sequence[str]) -> dict[str, str]:
    """``key=value`` strings → dict (unknown keys and malformed items → ConfigError)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--param {item!r}: expected KEY=VALUE, e.g. --param partition=gpu")
        if key not in DEFAULTS and key not in REQUIRED:
            known = ", ".join(sorted((*REQUIRED, *DEFAULTS)))
            raise ConfigError(f"--param {key}: unknown parameter; known: {known}")
        out[key] = value
    return out


def template_names(name: str) -> tuple[str, ...]:
    key = ALIASES.get(name, name)
    if key not in TEMPLATES:
        raise ConfigError(f"unknown job template {name!r}; choose one of {', '.join([*TEMPLATES, *ALIASES])}")
    return TEMPLATES[key]


def _apptainer_prefix(image: str, gpu: str, out: str) -> str:
    if not image:
        return ""
    if not Path(image).is_file():
        raise ConfigError(f"image {image} not found; build it first (see apptainer/README.md)")
    return shlex.join(["apptainer", "exec", *GPU_FLAGS[gpu], "--bind", out, str(Path(image).resolve())])


def _shares(concurrency: str, ranks: int) -> str:
    """Per level, each rank's share of the concurrency: ``c0,c1;c0,c1`` (remainder to the first ranks)."""
    levels = [int(v) for v in parse_range(concurrency, "concurrency", True).values()]
    if levels[0] < ranks:
        raise ConfigError(f"concurrency {concurrency} starts below ranks={ranks}: every rank needs >= 1")
    return ";".join(",".join(str(v // ranks + (r < v % ranks)) for r in range(ranks)) for v in levels)


def resolve(params: Mapping[str, str], names: Sequence[str]) -> dict[str, str]:
    """Defaults + given values + derived values, validated; a missing required one → one line."""
    missing = [k for k in REQUIRED if not params.get(k)]
    if missing:
        flags = " ".join(f"--param {k}=VALUE" for k in missing)
        raise ConfigError(f"job template {'+'.join(names)} needs {', '.join(missing)}: add {flags}")
    v = {**DEFAULTS, **params}
    for key, value in v.items():
        if "\n" in value or "\r" in value:
            raise ConfigError(f"--param {key}: value must be one line")
    for key in INTS:
        if not v[key].isdigit():
            raise ConfigError(f"--param {key}={v[key]!r}: expected a whole number")
    for key in FLOATS:
        if not _NUMBER.match(v[key]) or not 0 < float(v[key]) < math.inf:
            raise ConfigError(f"--param {key}={v[key]!r}: expected a positive number like 10 or 2.5")
    for key in PLAIN:
        if not _PLAIN.match(v[key]):
            raise ConfigError(f"--param {key}={v[key]!r}: no spaces, quotes or shell characters allowed")
    for key, allowed in CHOICES.items():
        if v[key] not in allowed:
            raise ConfigError(f"--param {key}={v[key]!r}: choose one of {', '.join(allowed)}")
    if v["engine"] not in ("saturate", "perf_analyzer"):
        raise ConfigError(f"--param engine={v['engine']!r}: choose saturate or perf_analyzer")
    if v["gpu"] not in GPU_FLAGS:
        raise ConfigError(f"--param gpu={v['gpu']!r}: choose one of {', '.join(GPU_FLAGS)}")
    out = str(Path(v["out"]).resolve())
    v["out"] = out
    parse_range(v["concurrency"], "--param concurrency", True)
    v["run_prefix"] = _apptainer_prefix(v["image"], v["gpu"], out)
    v["saturate"] = v["saturate"] or ("saturate" if v["image"] else v["host_saturate"])
    v["client_run_prefix"] = v["run_prefix"]
    sdk = v["sdk_image"]
    if sdk and not Path(sdk).is_file():
        raise ConfigError(f"image {sdk} not found; build it with 'apptainer build sdk.sif apptainer/sdk.def'")
    v["sdk_args"] = shlex.join(["--image", str(Path(sdk).resolve()), "--gpu", v["gpu"]]) if sdk else ""
    v["gres_line"] = f"#SBATCH --gres={v['gres']}" if v["gres"] else ""
    v["rendezvous"] = v["rendezvous"] or f"{out}/rendezvous.env"
    if "multinode" in names:
        if "concurrency" not in params:
            r = int(v["ranks"])
            v["concurrency"] = f"{r}:{4 * r}:{r}"
        v["rank_shares"] = _shares(v["concurrency"], int(v["ranks"]))
        if not v["level_period"]:
            window_s = int(v["max_trials"]) * int(v["measurement_interval"]) / 1000
            v["level_period"] = str(math.ceil(window_s + LEVEL_SLACK_S))
        elif not v["level_period"].isdigit():
            raise ConfigError(f"--param level_period={v['level_period']!r}: expected whole seconds")
    return v


def _fill(text: str, values: Mapping[str, str], seen: tuple[str, ...] = ()) -> str:
    def sub(m: re.Match[str]) -> str:
        kind, key = m.group(1), m.group(2)
        if kind == "include:":
            if key in seen:
                raise ValueError(f"include loop at {key}")
            return _fill((JOBS_DIR / key).read_text().rstrip("\n"), values, (*seen, key))
        if key not in values:
            raise ConfigError(f"job template needs --param {key}=VALUE")
        return shlex.quote(values[key]) if kind == "q:" else values[key]

    return _SLOT.sub(sub, text)


def render(name: str, params: Mapping[str, str]) -> list[Rendered]:
    """The job script(s) of template ``name`` (``pair`` gives server and client)."""
    names = template_names(name)
    values = resolve(params, names)
    return [Rendered(n, _fill((JOBS_DIR / f"{n}.sbatch").read_text(), values)) for n in names]


def _sbatch() -> str:
    exe = shutil.which("sbatch")
    if exe is None:
        raise ToolMissingError(
            "sbatch not found on PATH; run this on a Slurm login node (or load the slurm module)"
        )
    return exe


def submit(
    name: str, params: Mapping[str, str], *, wait: bool = False, sbatch_args: Sequence[str] = ()
) -> list[tuple[str, str, int]]:
    """Write the script(s) into OUT and sbatch them; returns (template, job id, exit code) per job.

    ``pair``: the client job depends on the server job having started (``--dependency=after:ID``) and
    checks the rendezvous file is that job's. ``wait`` waits for the last job (sbatch --wait).
    """
    sbatch = _sbatch()
    scripts = render(name, params)
    values = resolve(params, template_names(name))
    if (values["image"] or values["sdk_image"]) and shutil.which("apptainer") is None:
        raise ToolMissingError(
            "apptainer not found on PATH; install Apptainer or leave image/sdk_image empty"
        )
    out = Path(values["out"])
    out.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, str, int]] = []
    for i, job in enumerate(scripts):
        path = out / f"job-{job.name}.sbatch"
        path.write_text(job.text)
        cmd = [sbatch, "--parsable", *sbatch_args]
        if jobs:
            cmd += [f"--dependency=after:{jobs[0][1]}", f"--export=ALL,SATURATE_SERVER_JOB={jobs[0][1]}"]
        last = i == len(scripts) - 1
        if wait and last:
            cmd.append("--wait")
        proc = subprocess.run([*cmd, str(path)], capture_output=True, text=True)
        job_id = proc.stdout.strip().split(";")[0]
        if not job_id.isdigit():
            msg = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            raise ConfigError(f"sbatch refused {path.name}: {msg[-1] if msg else f'exit {proc.returncode}'}")
        jobs.append((job.name, job_id, proc.returncode if wait and last else 0))
    return jobs

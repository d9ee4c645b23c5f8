"""perf_analyzer as a level engine: run it (PATH or the SDK image), stream its console, parse its CSV.

``run_pa`` starts perf_analyzer, echoes its stdout/stderr line by line as they come, and returns a
:class:`PaOutcome` whose ``levels`` are :class:`~loadgen.result.LevelResult` objects: the CSV rows
(read with :func:`loadgen.csvfmt.parse_csv`, enriched with the console's counts), plus one flagged
level (``stable=False``, verdict invalid, perf_analyzer's message as the reason) for every level it
started but did not record, or for the requested level when it failed before starting one.
``PerfAnalyzerEngine`` runs one perf_analyzer per level (the LevelEngine protocol of scans.engines).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

from loadgen.config import LoadConfig
from loadgen.csvfmt import parse_csv
from loadgen.level import unmeasured_level
from loadgen.result import (
    LevelResult,
    RequestCounts,
    Stability,
)
from saturate.errors import ConfigError
from saturate.tokens import argv_tokens, mask_all
from scans.perf_analyzer.args import GPU_FLAGS, GpuKind, PaLauncher, pa_arguments
from scans.perf_analyzer.console import ConsoleLevel, parse_console, parse_failures

Echo = Callable[[str], None]


def echo_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class PaOutcome:
    """One perf_analyzer run: its argv, exit code, console text and the levels parsed from it."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    levels: list[LevelResult]


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(a))


def flagged_level(
    mode: str, value: float, batch_size: int | None, stability: Stability, message: str
) -> LevelResult:
    """A level perf_analyzer did not record: no numbers, ``stable=False``, its message as the reason."""
    return unmeasured_level(mode, value, batch_size, stability, message)


def _enrich(level: LevelResult, con: ConsoleLevel | None, batch_size: int | None) -> LevelResult:
    """Add the console's counts (requests, avg/std latency, executions) and the batch size."""
    level = replace(level, batch_size=batch_size)
    if con is None:
        return level
    lat = level.latency
    latency = replace(
        lat,
        avg_ns=lat.avg_ns if lat.avg_ns is not None else (None if con.avg_us is None else con.avg_us * 1000),
        std_ns=None if con.std_us is None else con.std_us * 1000,
        count=con.requests,
    )
    server = level.server
    if server is not None:
        avg_batch = con.inferences / con.executions if con.inferences and con.executions else None
        server = replace(
            server,
            executions=con.executions,
            inferences=con.inferences,
            success_count=con.successes,
            avg_batch=avg_batch,
        )
    requests = RequestCounts(completed=con.requests) if con.requests is not None else level.requests
    tput = level.throughput
    if batch_size and tput.requests_per_s is None:
        tput = replace(tput, requests_per_s=tput.infer_per_s / batch_size)
    return replace(level, latency=latency, server=server, requests=requests, throughput=tput)


def parse_outcome(
    stdout: str,
    stderr: str,
    returncode: int,
    csv_text: str | None,
    *,
    mode: str = "concurrency",
    batch_size: int | None = None,
    requested: Sequence[float] = (),
) -> list[LevelResult]:
    """The levels of one perf_analyzer run, in measurement order (CSV rows first sorted by value).

    ``requested`` are the level values asked for; the first is flagged with the run's error when
    perf_analyzer failed before starting any level (bad model, server unreachable).
    """
    console = parse_console(stdout)
    failures = parse_failures(stderr, returncode)
    recorded: list[LevelResult] = []
    if csv_text is not None and csv_text.strip():
        table = parse_csv(csv_text)
        mode = table.options.mode
        recorded = sorted(table.levels, key=lambda lv: lv.value)
    out: list[LevelResult] = []
    for lv in recorded:
        con = next((c for c in console if _same(c.value, lv.value)), None)
        out.append(_enrich(lv, con, batch_size))
    done = [lv.value for lv in out]
    started = [c.value for c in console]
    for value in started + [v for v in failures.unstable if v not in started]:
        if any(_same(value, d) for d in done):
            continue
        done.append(value)
        msg = next((m for v, m in failures.unstable.items() if _same(v, value)), None)
        if msg is not None:
            out.append(flagged_level(mode, value, batch_size, "unstable", msg))
        else:
            why = failures.run_error or f"perf_analyzer (exit {returncode}) stopped before recording it"
            out.append(flagged_level(mode, value, batch_size, "failed", why))
    if not out and failures.run_error is not None:
        value = requested[0] if requested else 1.0
        out.append(flagged_level(mode, value, batch_size, "failed", failures.run_error))
    return out


async def _pump(
    stream: asyncio.StreamReader | None, sink: list[str], echo: Echo | None, secrets: Sequence[str] = ()
) -> None:
    if stream is None:
        return
    while True:
        raw = await stream.readline()
        if not raw:
            return
        line = raw.decode(errors="replace").rstrip("\n")
        sink.append(line)
        if echo is not None:
            echo(mask_all(line, list(secrets)))


async def run_pa(
    launcher: PaLauncher,
    args: Sequence[str],
    csv_file: str | None,
    *,
    mode: str = "concurrency",
    batch_size: int | None = None,
    requested: Sequence[float] = (),
    echo: Echo | None = echo_stderr,
    console_file: Path | None = None,
) -> PaOutcome:
    """Run perf_analyzer to completion (killed when cancelled) and parse what it left.

    The outcome's argv, stdout and stderr (and ``console_file``) have access tokens masked as ``***``.
    """
    argv = launcher.command(args)
    secrets = argv_tokens(argv)  # perf_analyzer takes the token only as a -H argument: masked everywhere
    if csv_file:
        Path(csv_file).unlink(missing_ok=True)  # a stale CSV must not pass for this run's
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    out: list[str] = []
    err: list[str] = []
    try:
        await asyncio.gather(_pump(proc.stdout, out, echo, secrets), _pump(proc.stderr, err, echo, secrets))
        rc = await proc.wait()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
    stdout, stderr = mask_all("\n".join(out) + "\n", secrets), mask_all("\n".join(err) + "\n", secrets)
    argv = [mask_all(a, secrets) for a in argv]
    if console_file is not None:
        console_file.parent.mkdir(parents=True, exist_ok=True)
        console_file.write_text(f"$ {' '.join(argv)}\n{stdout}--- stderr\n{stderr}--- exit code {rc}\n")
    csv_text = None
    if csv_file and Path(csv_file).is_file():
        csv_text = Path(csv_file).read_text()
    levels = parse_outcome(
        stdout, stderr, rc, csv_text, mode=mode, batch_size=batch_size, requested=requested
    )
    return PaOutcome(argv=argv, returncode=rc, stdout=stdout, stderr=stderr, levels=levels)


class PerfAnalyzerEngine:
    """LevelEngine: one perf_analyzer run per level; CSV and console kept in ``workdir``."""

    name = "perf_analyzer"

    def __init__(self, launcher: PaLauncher, workdir: Path, echo: Echo | None = echo_stderr) -> None:
        self.workdir = Path(workdir).resolve()
        binds = tuple(dict.fromkeys([*launcher.binds, str(self.workdir)]))
        self.launcher = dataclasses.replace(launcher, binds=binds) if launcher.image else launcher
        self.echo = echo
        self.runs: list[PaOutcome] = []

    @classmethod
    def from_options(
        cls,
        workdir: Path | None = None,
        echo: Echo | None = echo_stderr,
        options: Mapping[str, str] | None = None,
    ) -> PerfAnalyzerEngine:
        """The engine ``scan server --engine perf_analyzer`` uses.

        ``options`` are ``ScanConfig.engine_options``, as scan.json records them (the CLI fills keys
        not given from ``SATURATE_PA_*`` once, in :func:`scans.engines.engine_options`; the engine
        reads no environment): ``image`` (an SDK .sif; none: perf_analyzer from PATH), ``gpu``
        (none|nvidia|rocm), ``binary``, ``dir`` (its CSVs and consoles; default
        ``workdir/perf_analyzer``, or a new temporary directory without a workdir).
        """
        opts = dict(options or {})
        gpu = opts.get("gpu") or "none"
        if gpu not in GPU_FLAGS:
            raise ConfigError(f"perf_analyzer gpu {gpu!r}: choose one of {', '.join(GPU_FLAGS)}")
        launcher = PaLauncher(image=opts.get("image") or None,
                              gpu=cast(GpuKind, gpu), binary=opts.get("binary") or "perf_analyzer")
        launcher.command([])  # missing image, apptainer or perf_analyzer: one line before the scan starts
        where = opts.get("dir")
        if where:
            pa_dir = Path(where)
        elif workdir is not None:
            pa_dir = Path(workdir) / "perf_analyzer"
        else:
            pa_dir = Path(tempfile.mkdtemp(prefix="saturate-pa-"))
        return cls(launcher, pa_dir, echo=echo)

    async def measure(self, cfg: LoadConfig, value: float) -> LevelResult:
        """Measure one level (concurrency or request rate ``value``) with perf_analyzer."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        tag = f"{'c' if cfg.mode == 'concurrency' else 'r'}{value:g}_b{cfg.batch_size}"
        csv = self.workdir / f"pa_{tag}.csv"
        outcome = await run_pa(
            self.launcher,
            pa_arguments(cfg, str(csv), value),
            str(csv),
            mode=cfg.mode,
            batch_size=cfg.batch_size,
            requested=[value],
            echo=self.echo,
            console_file=self.workdir / f"pa_{tag}.txt",
        )
        self.runs.append(outcome)
        level = next((lv for lv in outcome.levels if _same(lv.value, value)), None)
        if level is None:
            why = f"perf_analyzer (exit {outcome.returncode}) recorded no level {value:g}"
            level = flagged_level(cfg.mode, value, cfg.batch_size, "failed", why)
        return replace(level, percentile=cfg.percentile)

    async def close(self) -> None:
        """Nothing stays running between levels."""

"""The tune loop: candidate by candidate, a zoo server (or the ``-u`` one), the concurrency search per
client batch through the loadgen library, ``tune.json`` after every level.

Each candidate's server is started on free loopback ports with the scans' server process helper and
always stopped. A candidate whose server does not start, or dies while it is measured, is recorded
(status ``failed``, the reason, the levels it had) and the search goes on. ``--resume`` keeps the
candidates ``tune.json`` holds as measured (or never-met) and measures the rest. SIGINT/SIGTERM end
the tune between two windows: the level in progress is dropped, everything measured stays in
``tune.json`` (the candidate marked ``interrupted``), exit 130/143.

After the search, :mod:`scans.tune.confirm` measures the winning point again (``--confirm-runs``)
on a fresh server; ``--resume`` keeps a finished confirmation and redoes an unfinished one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadgen.config import LoadConfig, Range
from loadgen.result import LevelResult
from loadgen.signals import cancel_on_signals
from saturate.errors import ConfigError, ServerError
from saturate.version import saturate_version
from scans.engines import LoadgenEngine
from scans.tune import confirm, output
from scans.tune.search import Probe, SearchRule, search_concurrency
from scans.tune.serving import ServeConfig, ServedServer, check_max_batch
from scans.tune.space import Candidate, TuneSpace
from scans.tune.strategy import make_strategy
from scans.tune.validity import TailRule

DONE = ("measured", "never_met")


class CandidateFailed(ServerError):
    """The candidate's server did not start or stopped answering."""


@dataclass(frozen=True)
class TuneConfig:
    out: Path
    load: LoadConfig  # model, protocol, measurement rule, shapes; url/token only with -u
    space: TuneSpace
    rule: SearchRule
    tail: TailRule
    backend: str = "torch"
    device: str = "cpu"
    search: str = "grid"
    max_candidates: int | None = None
    time_budget_s: float | None = None
    resume: bool = False
    serve_extra: tuple[str, ...] = ()
    ready_timeout_s: float = 180.0
    confirm_runs: int = 3  # runs of the winning point after the search (0: none)

    def to_dict(self) -> dict[str, Any]:
        load = {k: v for k, v in self.load.to_dict().items() if k not in ("access_token", "url")}
        return {
            "command": "tune",
            "model": self.load.model,
            "backend": self.backend,
            "device": self.device,
            "url": self.load.url or None,
            "latency_budget_ms": self.rule.budget_ms,
            "max_concurrency": self.rule.max_concurrency,
            "min_gain": self.rule.min_gain,
            "tail": self.tail.to_dict(),
            "space": self.space.to_dict(),
            "search": self.search,
            "max_candidates": self.max_candidates,
            "time_budget_s": self.time_budget_s,
            "serve_extra": list(self.serve_extra),
            "confirm_runs": self.confirm_runs,
            "load": load,
        }


def identity(config: dict[str, Any]) -> dict[str, Any]:
    """What must match for ``--resume`` (not the strategy or its bounds)."""
    drop = ("search", "max_candidates", "time_budget_s", "confirm_runs")
    out = {k: v for k, v in config.items() if k not in drop}
    out["load"] = {
        k: v
        for k, v in (config.get("load") or {}).items()
        if k not in ("json_file", "csv_file", "latency_file", "verbose", "metrics_url")
    }
    normal: dict[str, Any] = json.loads(json.dumps(out))
    return normal


@dataclass
class Tuner:
    cfg: TuneConfig
    say: Callable[[str], None] = field(
        default=lambda s: print(f"saturate tune: {s}", file=sys.stderr, flush=True)
    )
    doc: dict[str, Any] = field(default_factory=dict)
    signal_code: int = 0
    _server: ServedServer | None = None
    _first_level_checked: bool = False

    # -- state -----------------------------------------------------------------------------------
    def _prepare(self) -> None:
        path = self.cfg.out / output.JSON_NAME
        config = self.cfg.to_dict()
        self.doc = {
            "format": output.FORMAT,
            "tool": {"name": "saturate", "version": saturate_version()},
            "config": config,
            "candidates": [],
            "winner": None,
        }
        if not path.exists():
            return
        if not self.cfg.resume:
            raise ConfigError(f"{path} exists; pass --resume to go on with it or choose another --out")
        try:
            prev = json.loads(path.read_text())
        except ValueError:
            raise ConfigError(f"{path} is not readable JSON; choose another --out") from None
        if identity(prev.get("config") or {}) != identity(config):
            raise ConfigError(
                f"{path} was written with other settings; --resume needs the same model, "
                "space, budget and measurement flags (or choose another --out)"
            )
        self.doc["candidates"] = [r for r in prev.get("candidates", []) if r.get("status") in DONE]
        self._first_level_checked = bool(self.doc["candidates"])

    def scores(self) -> dict[str, float]:
        return {
            r["candidate"]["name"]: float((r.get("best") or {}).get("throughput", 0.0))
            for r in self.doc["candidates"]
        }

    def write(self) -> None:
        self.doc["winner"] = None
        rec = output.winner(self.doc)
        if rec is not None:
            self.doc["winner"] = {
                "candidate": rec["candidate"]["name"],
                **rec["best"],
                "commands": output.winner_commands(self.doc, rec),
                "confirmed": confirm.confirmed(rec),
            }
        gain, basis = confirm.gain(rec, output.defaults_record(self.doc))
        self.doc["gain_over_defaults"], self.doc["gain_basis"] = gain, basis
        output.write_doc(self.cfg.out, self.doc)

    # -- one candidate ---------------------------------------------------------------------------
    def _record(self, cand: Candidate) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "candidate": cand.to_dict(),
            "status": "running",
            "reason": None,
            "server": None,
            "batches": {},
            "levels": [],
            "best": None,
        }
        self.doc["candidates"] = [r for r in self.doc["candidates"] if r["candidate"]["name"] != cand.name]
        self.doc["candidates"].append(rec)
        return rec

    def load_for(self, batch: int, conc: int) -> LoadConfig:
        load = self.cfg.load
        if self._server is not None:
            url = self._server.grpc_url if load.protocol == "grpc" else self._server.http_url
            load = dataclasses.replace(load, url=url, access_token=self._server.token)
        return dataclasses.replace(load, batch_size=batch, concurrency_range=Range(conc, conc, 1))

    def level_entry(self, batch: int, level: LevelResult) -> dict[str, Any]:
        tail = self.cfg.tail
        return {
            "batch": batch,
            "concurrency": level.concurrency,
            "throughput": level.throughput.infer_per_s,
            "tail_ms": tail.tail_ms(level),
            "tail_valid": tail.valid(level),
            "samples": tail.samples(level),
            "stable": level.stable,
            "level": level.to_dict(),
        }

    def _check_fastest(self, level: LevelResult) -> None:
        """The first level of the tune (smallest batch, concurrency 1): can the budget be met at all?"""
        if self._first_level_checked:
            return
        self._first_level_checked = True
        fastest = level.latency.min_ns
        if fastest is not None and fastest / 1e6 > self.cfg.rule.budget_ms:
            raise ConfigError(
                f"--latency-budget-ms {self.cfg.rule.budget_ms:g} is below the fastest single "
                f"request ({fastest / 1e6:.3f} ms at batch {level.batch_size}, concurrency 1); "
                "raise the budget"
            )

    def check_alive(self, where: str) -> None:
        if self._server is not None and not self._server.alive():
            code = self._server.proc.returncode if self._server.proc else "?"
            raise CandidateFailed(f"server exited (code {code}) {where}")

    async def _batch(self, engine: LoadgenEngine, rec: dict[str, Any], batch: int) -> None:
        async def measure(conc: int) -> Probe:
            self.say(f"{rec['candidate']['name']}: batch {batch}, concurrency {conc}")
            level = await engine.measure(self.load_for(batch, conc), conc)
            entry = self.level_entry(batch, level)
            rec["levels"].append(entry)
            self.write()
            self.check_alive(f"at batch {batch}, concurrency {conc}")
            if level.stability == "interrupted":
                raise CandidateFailed(f"server stopped answering at batch {batch}, concurrency {conc}")
            self._check_fastest(level)
            return Probe(conc, entry["throughput"], entry["tail_ms"], entry["tail_valid"], entry["samples"])

        outcome = await search_concurrency(measure, self.cfg.rule)
        best = outcome.best
        rec["batches"][str(batch)] = {
            **outcome.to_dict(),
            "best": None
            if best is None
            else {
                "batch": batch,
                "concurrency": best.concurrency,
                "throughput": best.throughput,
                "tail_ms": best.tail_ms,
                "samples": best.samples,
            },
        }

    async def _measure(self, rec: dict[str, Any]) -> None:
        engine = LoadgenEngine()
        try:
            for batch in sorted(dict.fromkeys(self.cfg.space.batch_sizes)):
                await self._batch(engine, rec, batch)
        finally:
            await engine.close()

    async def guarded(self, work: Awaitable[None]) -> None:
        """``work`` with SIGINT/SIGTERM cancelling it (the signal noted in :attr:`signal_code`)."""
        await cancel_on_signals(work, self._note_signal, self._sync_signal)

    def _note_signal(self, signum: int) -> None:
        self.signal_code = 128 + signum

    def start_server(self, cand: Candidate, log: str, holder: dict[str, Any]) -> None:
        """Start ``cand``'s server as :attr:`_server`; ``holder["server"]`` records log, args and pid."""
        serve = ServeConfig(
            model=self.cfg.load.model,
            backend=self.cfg.backend,
            device=self.cfg.device,
            max_batch=cand.max_batch,
            max_queue_delay_us=cand.max_queue_delay_us,
            instances=cand.instances,
            ready_timeout_s=self.cfg.ready_timeout_s,
            extra=(*cand.preferred_flags(), *self.cfg.serve_extra),
        )
        self._server = ServedServer(serve, self.cfg.out / "servers" / log)
        holder["server"] = {"log": str(self._server.log.relative_to(self.cfg.out)), "args": serve.args()}
        self.write()
        self._server.start()
        holder["server"]["pid"] = self._server.pid
        self.write()

    def stop_server(self, holder: dict[str, Any]) -> None:
        if self._server is not None:
            holder["server"]["exit_code"] = self._server.stop()
            self._server = None

    def _candidate(self, cand: Candidate) -> None:
        rec = self._record(cand)
        self.write()
        try:
            if not cand.external:
                self.say(f"{cand.name}: starting the server")
                self.start_server(cand, f"{cand.name}.log", rec)
            asyncio.run(self.guarded(self._measure(rec)))
            rec["status"] = "measured"
        except asyncio.CancelledError:
            if not self.signal_code:
                raise
            rec["status"], rec["reason"] = "interrupted", f"signal {self.signal_code - 128}"
        except KeyboardInterrupt:
            self.signal_code = self.signal_code or 128 + signal.SIGINT
            rec["status"], rec["reason"] = "interrupted", "interrupted"
        except (CandidateFailed, ServerError) as exc:
            rec["status"], rec["reason"] = "failed", str(exc)
        except ConfigError as exc:  # e.g. a budget below the fastest request: recorded, then exit 2
            rec["status"], rec["reason"] = "failed", str(exc)
            self.write()
            raise
        except Exception as exc:  # a candidate that breaks is recorded and the search goes on
            rec["status"], rec["reason"] = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            self.stop_server(rec)
        bests = [b["best"] for b in rec["batches"].values() if b.get("best")]
        rec["best"] = max(bests, key=lambda b: b["throughput"]) if bests else None
        if rec["status"] == "measured" and rec["best"] is None:
            rec["status"] = "never_met"
        self.write()
        self.say(
            f"{cand.name}: {rec['status']}"
            + (f" ({rec['reason']})" if rec["reason"] else "")
            + (f", best {rec['best']['throughput']:.1f} infer/s" if rec["best"] else "")
        )

    # -- the loop --------------------------------------------------------------------------------
    def _sync_signal(self, signum: int, _frame: object) -> None:
        if not self.signal_code:
            self.signal_code = 128 + signum
            raise KeyboardInterrupt

    @contextmanager
    def _signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self._sync_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def run(self) -> int:
        """Measure candidates until the strategy is done; 0, or 128+signal (what was measured is kept)."""
        self._prepare()
        if self.cfg.space.external:
            asyncio.run(check_max_batch(self.cfg.load, self.cfg.space.batch_sizes))
        self.cfg.out.mkdir(parents=True, exist_ok=True)
        strategy = make_strategy(self.cfg.search, self.cfg.space, self.cfg.max_candidates)
        t0 = time.monotonic()
        with self._signals():
            try:
                while not self.signal_code:
                    cand = strategy.next(self.scores())
                    if cand is None:
                        break
                    if self.cfg.time_budget_s is not None and time.monotonic() - t0 > self.cfg.time_budget_s:
                        self.say(
                            f"time budget of {self.cfg.time_budget_s:g} s spent; stopping before {cand.name}"
                        )
                        break
                    self._candidate(cand)
                if not self.signal_code:
                    confirm.Stage(self).run()
            except KeyboardInterrupt:
                self.signal_code = self.signal_code or 128 + signal.SIGINT
            finally:
                self.write()
        if self.signal_code:
            self.say(
                f"interrupted; {len(self.doc['candidates'])} candidates kept in "
                f"{self.cfg.out / output.JSON_NAME}; rerun with --resume to go on"
            )
        return self.signal_code

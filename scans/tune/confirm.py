"""The confirmation stage of a tune: the winning point measured again, ``--confirm-runs`` times.

Why: the search measures dozens of levels and keeps the highest throughput within the budget; the
maximum of noisy measurements is biased upward (the winner's curse), so the search's figure is not
what the winner gives when it is run again. A confirmation run is a measurement taken after the
choice, independent of it, so the median of the runs is a figure a user can expect to reproduce.

How, and why that way: the search stopped each candidate's server, and the printed ``saturate
serve`` command starts a fresh one, so the stage starts a fresh server for the confirmed candidate
(the same flags, log ``servers/<candidate>.confirm.log``) and runs each confirmation as a fresh
level on it: a new client session with its own warm-up and the tune's window settings, as one
``saturate load`` of the printed command is (``benchmarks/tune_reproduce.sh`` does exactly that).
Reusing the search's warm server, or its client session, would measure something a user never runs.
A ``-u`` tune confirms on the server it was given.

The point confirmed is the winner's (candidate, client batch, concurrency) and, when the gain over
PyTriton's defaults is reported, the defaults candidate's best point too: both sides of the gain
then come from confirmation runs (:func:`gain`); when either is missing the gain stays on the
search's figures and ``gain_basis`` says so. The winner is not re-picked from the confirmed figures.

This module owns the ``confirmation`` record of a candidate in ``tune.json`` (status, reason, the
point, the server it ran on, every run as a level entry, and its :func:`summarize` summary, which
the runner copies to ``winner.confirmed``), whether a recorded one still holds for ``--resume``
(:func:`is_done`), and running the stage with the runner's servers and signal handling.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from saturate.errors import ServerError
from scans.engines import LoadgenEngine
from scans.tune import output

if TYPE_CHECKING:
    from scans.tune.runner import Tuner

LOG_SUFFIX = ".confirm.log"


def summarize(
    runs: Sequence[Mapping[str, Any]], budget_ms: float, *, requested: int, search_throughput: float | None
) -> dict[str, Any]:
    """Median/min/max throughput and median tail of the runs; ``within_budget`` is the median tail's."""
    tps = [float(r["throughput"]) for r in runs]
    tails = [float(r["tail_ms"]) for r in runs if r.get("tail_ms") is not None]
    median = statistics.median(tps) if tps else None
    tail = statistics.median(tails) if tails else None
    return {
        "runs": len(runs),
        "requested": requested,
        "throughput_median": median,
        "throughput_min": min(tps) if tps else None,
        "throughput_max": max(tps) if tps else None,
        "tail_ms_median": tail,
        "tail_ms_max": max(tails) if tails else None,
        "tail_valid": bool(runs) and all(r.get("tail_valid") for r in runs),
        "within_budget": None if tail is None else tail <= budget_ms,
        "vs_search": None
        if median is None or not search_throughput
        else median / float(search_throughput) - 1.0,
    }


def is_done(rec: Mapping[str, Any], runs: int) -> bool:
    """``rec`` holds a finished confirmation of its best point with ``runs`` runs (kept by --resume)."""
    conf = output.confirmation_of(rec) or {}
    return bool(conf.get("status") == "done" and conf.get("requested") == runs)


def confirmed(rec: Mapping[str, Any]) -> dict[str, Any] | None:
    """``winner.confirmed``: the summary of ``rec``'s confirmation of its best point, with its status."""
    conf = output.confirmation_of(rec)
    if conf is None:
        return None
    return {"status": conf["status"], "reason": conf.get("reason"), **(conf.get("summary") or {})}


def gain(
    win: Mapping[str, Any] | None, base: Mapping[str, Any] | None
) -> tuple[float | None, str | None]:
    """(winner / defaults, basis): the confirmed medians when both are confirmed, else the search's."""
    if win is None or base is None:
        return None, None
    a, b = confirmed(win) or {}, confirmed(base) or {}
    if a.get("status") == "done" and b.get("status") == "done" and b.get("throughput_median"):
        return float(a["throughput_median"]) / float(b["throughput_median"]), "confirmed"
    top = float((base.get("best") or {}).get("throughput") or 0.0)
    if not top:
        return None, None
    return float(win["best"]["throughput"]) / top, "search"


class Stage:
    """Confirms the winner (then the defaults candidate) of ``tuner.doc``; records as it goes."""

    def __init__(self, tuner: Tuner) -> None:
        self.tuner = tuner
        self.n = tuner.cfg.confirm_runs

    def run(self) -> None:
        """Every target not yet confirmed; a server failure is recorded and the others still run."""
        if self.n <= 0:
            return
        win = output.winner(self.tuner.doc)
        base = output.defaults_record(self.tuner.doc)
        for rec in (win, base if base is not win else None):
            if rec is None or self.tuner.signal_code:
                continue
            assert isinstance(rec, dict)
            if is_done(rec, self.n):
                self.tuner.say(f"{rec['candidate']['name']}: confirmation already recorded")
            else:
                self._confirm(rec)
            if not is_done(rec, self.n):
                return  # the gain falls back on the search's figures: confirming the defaults is moot

    def _confirm(self, rec: dict[str, Any]) -> None:
        t, best, name = self.tuner, rec["best"], rec["candidate"]["name"]
        conf: dict[str, Any] = {
            "status": "running",
            "reason": None,
            "batch": best["batch"],
            "concurrency": best["concurrency"],
            "requested": self.n,
            "server": None,
            "runs": [],
        }
        conf["summary"] = self._summary(rec, conf)
        rec["confirmation"] = conf
        t.write()
        try:
            cand = output.candidate_of(rec)
            if not cand.external:
                t.say(f"{name}: starting a fresh server to confirm the search's figure")
                t.start_server(cand, f"{name}{LOG_SUFFIX}", conf)
            asyncio.run(t.guarded(self._runs(rec, conf)))
            conf["status"] = "done"
        except asyncio.CancelledError:
            if not t.signal_code:
                raise
            conf["status"], conf["reason"] = "interrupted", f"signal {t.signal_code - 128}"
        except KeyboardInterrupt:
            t.signal_code = t.signal_code or 128 + signal.SIGINT
            conf["status"], conf["reason"] = "interrupted", "interrupted"
        except ServerError as exc:
            conf["status"], conf["reason"] = "failed", str(exc)
        except Exception as exc:  # a failing confirmation is recorded; the tune still writes its results
            conf["status"], conf["reason"] = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            t.stop_server(conf)
        conf["summary"] = self._summary(rec, conf)
        t.write()
        s = conf["summary"]
        t.say(
            f"{name}: confirmation {conf['status']}"
            + (f" ({conf['reason']})" if conf["reason"] else "")
            + (
                f", median {s['throughput_median']:.1f} infer/s over {s['runs']} runs "
                f"(search {best['throughput']:.1f})"
                if s["throughput_median"] is not None
                else ""
            )
        )

    def _summary(self, rec: Mapping[str, Any], conf: Mapping[str, Any]) -> dict[str, Any]:
        return summarize(
            conf["runs"],
            self.tuner.cfg.rule.budget_ms,
            requested=self.n,
            search_throughput=rec["best"]["throughput"],
        )

    async def _runs(self, rec: dict[str, Any], conf: dict[str, Any]) -> None:
        t, batch, conc = self.tuner, conf["batch"], conf["concurrency"]
        for i in range(self.n):
            t.say(f"{rec['candidate']['name']}: confirmation run {i + 1}/{self.n}, batch {batch}, "
                  f"concurrency {conc}")
            engine = LoadgenEngine()  # a fresh client session and warm-up per run, as `saturate load`
            try:
                level = await engine.measure(t.load_for(batch, conc), conc)
            finally:
                await engine.close()
            t.check_alive(f"during confirmation run {i + 1}")
            if level.stability == "interrupted":
                raise ServerError(f"server stopped answering during confirmation run {i + 1}")
            conf["runs"].append(t.level_entry(batch, level))
            conf["summary"] = self._summary(rec, conf)
            t.write()

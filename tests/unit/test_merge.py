"""``saturate merge``: two ranks that together did what one run did give that run's totals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadgen.level import build_level
from loadgen.result import LevelResult, RunResult, WindowStats
from loadgen.stability import LevelContext, StabilityRule
from loadgen.windows import combine_processes, window_summary
from saturate.cli import main
from saturate.errors import ConfigError
from scans.jobs.merge import load_rank, merge_ranks

EDGES = [(0, 1_000_000_000), (1_000_000_000, 2_000_000_000), (2_000_000_000, 3_100_000_000)]


def windows(seed: int, n: int, scale: int) -> list[WindowStats]:
    rng = np.random.default_rng(seed)
    return [
        WindowStats(start_ns=a, end_ns=b,
                    latencies_ns=rng.integers(scale, 3 * scale, n + 7 * i).astype(np.int64),
                    send_ns_total=12_000 * n, recv_ns_total=5_000 * n, sent=n + 7 * i, failed=i % 2)
        for i, (a, b) in enumerate(EDGES)
    ]


def level(ws: list[WindowStats], concurrency: int, batch: int = 4) -> LevelResult:
    ctx = LevelContext(rule=StabilityRule(stability_pct=1000, percentile=95), mode="concurrency",
                       value=concurrency, batch_size=batch)
    sums = [window_summary(w, batch, 95) for w in ws]
    return build_level(ws, sums, ctx)


def write_rank(path: Path, levels: list[tuple[LevelResult, list[WindowStats]]]) -> Path:
    RunResult(config={"model": "mlp"}, env={"host": path.stem}, levels=[lv for lv, _ in levels]).write(path)
    arrays = {}
    for i, (lv, ws) in enumerate(levels):
        arrays[f"L{i}"] = np.concatenate([w.latencies_ns for w in ws])
        arrays[f"D{i}"] = np.array(sum(w.duration_ns for w in ws), np.int64)
        arrays[f"B{i}"] = np.array(lv.batch_size, np.int64)
    np.savez(path.with_suffix(".npz"), **arrays)
    return path


def test_two_ranks_equal_one_run(tmp_path: Path) -> None:
    a1, b1 = windows(1, 300, 4_000_000), windows(2, 250, 5_000_000)
    a2, b2 = windows(3, 500, 6_000_000), windows(4, 520, 6_500_000)
    ra = write_rank(tmp_path / "rank0.json", [(level(a1, 1), a1), (level(a2, 2), a2)])
    rb = write_rank(tmp_path / "rank1.json", [(level(b1, 1), b1), (level(b2, 2), b2)])
    merged = merge_ranks([load_rank(ra), load_rank(rb)])
    single = [level([combine_processes([x, y]) for x, y in zip(a, b, strict=True)], c)
              for a, b, c in ((a1, b1, 2), (a2, b2, 4))]
    assert len(merged.levels) == 2
    for m, s in zip(merged.levels, single, strict=True):
        assert m.concurrency == s.concurrency
        assert m.requests is not None and s.requests is not None
        assert m.requests.completed == s.requests.completed
        assert m.requests.failed == s.requests.failed and m.requests.sent == s.requests.sent
        assert m.throughput.infer_per_s == pytest.approx(s.throughput.infer_per_s, rel=1e-12)
        assert m.throughput.requests_per_s == pytest.approx(s.throughput.requests_per_s, rel=1e-12)
        assert m.latency == s.latency  # pooled raw latencies: identical percentiles, avg, std
        # the JSON keeps µs: weighted client averages agree to within that rounding
        assert abs(m.client.send_ns - s.client.send_ns) < 1000
        assert abs(m.client.recv_ns - s.client.recv_ns) < 1000
    # not an average of averages: the merged p99 differs from the mean of the ranks' p99s
    la, lb = load_rank(ra).levels[0], load_rank(rb).levels[0]
    assert merged.levels[0].latency.p(99) != (la.latency.p(99) + lb.latency.p(99)) // 2


def test_merge_cli_directory_ranks_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for r in (0, 1):
        d = tmp_path / f"rank{r}"
        d.mkdir()
        for lvl, c in enumerate((1, 2)):
            ws = windows(10 * r + lvl, 100, 3_000_000)
            write_rank(d / f"level{lvl}.json", [(level(ws, c), ws)])
    out = tmp_path / "merged.json"
    assert main(["merge", "-o", str(out), str(tmp_path / "rank0"), str(tmp_path / "rank1")]) == 0
    run = RunResult.read(out)
    assert [lv.concurrency for lv in run.levels] == [2, 4]
    assert run.config["merged_ranks"] == 2
    assert "concurrency 4:" in capsys.readouterr().out
    (tmp_path / "rank1" / "level1.npz").unlink()
    assert main(["merge", "-o", str(out), str(tmp_path / "rank0"), str(tmp_path / "rank1")]) == 2
    assert "--latency-file" in capsys.readouterr().err
    (tmp_path / "rank1" / "level1.json").unlink()
    with pytest.raises(ConfigError, match="different numbers of levels"):
        merge_ranks([load_rank(tmp_path / "rank0"), load_rank(tmp_path / "rank1")])


def test_ranks_on_one_host_that_did_not_overlap_are_flagged(tmp_path: Path) -> None:
    a = windows(5, 200, 4_000_000)
    b = [WindowStats(start_ns=w.start_ns + 1_500_000_000, end_ns=w.end_ns + 1_500_000_000,
                     latencies_ns=w.latencies_ns, sent=w.sent) for w in windows(6, 200, 4_000_000)]
    ra = write_rank(tmp_path / "r0.json", [(level(a, 1), a)])
    rb = write_rank(tmp_path / "r1.json", [(level(b, 1), b)])
    for p in (ra, rb):  # one host: monotonic window edges are comparable
        doc = RunResult.read(p)
        doc.env["host"] = "node1"
        doc.write(p)
    (lv,) = merge_ranks([load_rank(ra), load_rank(rb)]).levels
    assert not lv.verdict.valid
    assert any("measured together only 52% of the time" in r for r in lv.verdict.reasons), lv.verdict.reasons
    r2 = write_rank(tmp_path / "r2.json", [(level(a, 1), a)])
    doc = RunResult.read(r2)
    doc.env["host"] = "node1"
    doc.write(r2)
    ok = merge_ranks([load_rank(ra), load_rank(r2)]).levels[0]
    assert not any("measured together" in r for r in ok.verdict.reasons)

"""What a level sends beyond fixed shapes and rates: the runner's one seam to `loadgen.shapes` (drawn
shapes, counted as sent) and `loadgen.schedules` (how late the sends were against the schedule:
recorded, ramped, or a constant/Poisson rate).

`Traffic.payloads` builds the level's payloads (fixed shapes as `loadgen.inputs` does, or one per
distinct drawn shape), `client` wraps the connection so the shapes sent are counted, `reset` starts
a level and `annotate` puts ``traffic`` on the level's result.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from loadgen.clients.base import Client, ModelInfo, Payload
from loadgen.config import LoadConfig
from loadgen.inputs import build_requests
from loadgen.result import LevelResult, WindowStats
from loadgen.schedules import send_lag
from loadgen.shapes import CountingClient, ShapedPayloads, shaped_payloads


class Traffic:
    """Per-session helper; a no-op for fixed shapes on a constant/Poisson rate."""

    def __init__(self, cfg: LoadConfig) -> None:
        self.cfg = cfg
        self.shaped: ShapedPayloads | None = None
        self._counter: CountingClient | None = None

    def payloads(self, info: ModelInfo, client: Client) -> list[Payload]:
        cfg = self.cfg
        if cfg.shape_dist is None:
            requests = build_requests(info, dict(cfg.shapes), cfg.batch_size, cfg.input_data, cfg.seed)
            return [client.prepare(cfg.model, cfg.model_version, r) for r in requests]
        self.shaped = shaped_payloads(info, cfg.shape_dist, dict(cfg.shapes), cfg.batch_size, cfg.seed,
                                      lambda r: client.prepare(cfg.model, cfg.model_version, r))
        return self.shaped.payloads

    def client(self, client: Client) -> Client:
        """The client the drivers send through (counting shapes when they are drawn)."""
        if self.shaped is None:
            return client
        self._counter = CountingClient(client, self.shaped)
        return self._counter

    def reset(self) -> None:
        if self._counter is not None:
            self._counter.reset()

    def annotate(self, level: LevelResult, merged: list[WindowStats]) -> LevelResult:
        out: dict[str, Any] = {}
        if self._counter is not None and self.cfg.shape_dist is not None:
            out["shapes"] = self._counter.histogram(self.cfg.shape_dist)
        if self.cfg.schedule is not None:
            out["schedule"] = {**self.cfg.schedule.to_dict(), "send_lag": send_lag(merged)}
        elif self.cfg.request_rate_range is not None:
            out["send_lag"] = send_lag(merged)  # a constant or Poisson rate: how late its sends were
        return dataclasses.replace(level, traffic=out) if out else level

"""A small configurable FP32 MLP: ``input [F]`` → hidden ReLU layers → ``output [C]`` (logits)."""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """Linear+ReLU stack; the single input is named ``input`` and the output ``output``."""

    def __init__(self, features: int, hidden: tuple[int, ...], classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = features
        for width in hidden:
            layers += [nn.Linear(previous, width), nn.ReLU()]
            previous = width
        layers.append(nn.Linear(previous, classes))
        self.net = nn.Sequential(*layers)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(input)
        return out


def build_mlp(features: int = 16, hidden: tuple[int, ...] = (64, 64), classes: int = 8, seed: int = 0) -> MLP:
    """The MLP in eval mode with weights from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MLP(features, hidden, classes)
    return model.eval()

"""ParticleNet AK4 (CMS, weaver's ``ParticleNetTagger``) in plain torch, scriptable and ONNX-exportable.

FeatureConv embeddings for PF (20→32) and SV (11→32) candidates, three EdgeConv blocks with k=8 and
channels (64,64,64), (96,96,96), (128,128,128) plus shortcuts, fusion 288→256, masked mean pooling,
FC 256→128→ReLU→Dropout(0.1)→8 and softmax. The kNN uses the points for the first block and the
previous block's features after that; masked points are shifted away by 1e9. No operation reads a
tensor size into a Python int, so traced and exported graphs keep batch and point axes dynamic.
"""

from __future__ import annotations

import torch
from torch import nn

PF_FEATURES = 20
SV_FEATURES = 11
NUM_CLASSES = 8
EMBED = 32
K = 8
CONV_PARAMS: tuple[tuple[int, int, int], ...] = ((64, 64, 64), (96, 96, 96), (128, 128, 128))
FUSION = 256
FC = 128
DROPOUT = 0.1
MASK_SHIFT = 1e9
LABELS = ("b", "bb", "c", "cc", "uds", "g", "undef", "pu")


def knn(points: torch.Tensor, k: int) -> torch.Tensor:
    """Indices ``[N, P, k]`` of each point's k nearest neighbours (itself excluded).

    Computed in float32 so that the 1e9 mask shift survives fp16/bf16 models.
    """
    x = points.float()
    inner = -2.0 * torch.matmul(x.transpose(2, 1), x)
    xx = torch.sum(x * x, dim=1, keepdim=True)
    neg_dist = -xx - inner - xx.transpose(2, 1)
    return neg_dist.topk(k=k + 1, dim=-1)[1][:, :, 1:]


def edge_features(x: torch.Tensor, idx: torch.Tensor, k: int) -> torch.Tensor:
    """``[N, 2C, P, k]`` edge features ``(x_i, x_j - x_i)`` for neighbours ``idx`` ``[N, P, k]``."""
    channels = x.shape[1]
    flat = idx.flatten(1).unsqueeze(1).expand(-1, channels, -1)  # [N, C, P*k]
    neighbours = torch.gather(x, 2, flat).unflatten(2, (-1, k))  # type: ignore[no-untyped-call]
    centre = x.unsqueeze(-1).expand(-1, -1, -1, k)
    return torch.cat((centre, neighbours - centre), dim=1)


class EdgeConvBlock(nn.Module):
    """Three 1x1 Conv2d+BN+ReLU on edge features, mean over neighbours, Conv1d+BN shortcut, ReLU."""

    def __init__(self, k: int, in_feat: int, out_feats: tuple[int, ...]) -> None:
        super().__init__()
        self.k = k
        layers: list[nn.Module] = []
        previous = 2 * in_feat
        for out in out_feats:
            layers += [nn.Conv2d(previous, out, kernel_size=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
            previous = out
        self.convs = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(
            nn.Conv1d(in_feat, out_feats[-1], kernel_size=1, bias=False), nn.BatchNorm1d(out_feats[-1])
        )
        self.act = nn.ReLU()

    def forward(self, points: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        idx = knn(points, self.k)
        x: torch.Tensor = self.convs(edge_features(features, idx, self.k)).mean(dim=-1)
        out: torch.Tensor = self.act(self.shortcut(features) + x)
        return out


class FeatureConv(nn.Module):
    """BN → Conv1d 1x1 → BN → ReLU embedding of candidate features."""

    def __init__(self, in_chn: int, out_chn: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.BatchNorm1d(in_chn),
            nn.Conv1d(in_chn, out_chn, kernel_size=1, bias=False),
            nn.BatchNorm1d(out_chn),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv(x)
        return out


class ParticleNetAK4(nn.Module):
    """ParticleNet AK4 tagger: six inputs ``[N, C, P]`` / ``[N, C, S]``, output ``softmax [N, 8]``."""

    def __init__(self) -> None:
        super().__init__()
        self.pf_conv = FeatureConv(PF_FEATURES, EMBED)
        self.sv_conv = FeatureConv(SV_FEATURES, EMBED)
        blocks = []
        in_feat = EMBED
        for channels in CONV_PARAMS:
            blocks.append(EdgeConvBlock(K, in_feat, channels))
            in_feat = channels[-1]
        self.edge_convs = nn.ModuleList(blocks)
        fused = sum(c[-1] for c in CONV_PARAMS)
        self.fusion = nn.Sequential(
            nn.Conv1d(fused, FUSION, kernel_size=1, bias=False), nn.BatchNorm1d(FUSION), nn.ReLU()
        )
        self.fc = nn.Sequential(
            nn.Linear(FUSION, FC), nn.ReLU(), nn.Dropout(DROPOUT), nn.Linear(FC, NUM_CLASSES)
        )

    def forward(
        self,
        pf_points: torch.Tensor,
        pf_features: torch.Tensor,
        pf_mask: torch.Tensor,
        sv_points: torch.Tensor,
        sv_features: torch.Tensor,
        sv_mask: torch.Tensor,
    ) -> torch.Tensor:
        mask = torch.cat((pf_mask, sv_mask), dim=2)
        points = torch.cat((pf_points * pf_mask, sv_points * sv_mask), dim=2)
        fts = torch.cat(
            (self.pf_conv(pf_features * pf_mask) * pf_mask, self.sv_conv(sv_features * sv_mask) * sv_mask),
            dim=2,
        )
        shift = (mask == 0).to(points.dtype) * 1e9  # MASK_SHIFT (a literal: TorchScript has no globals)
        counts = torch.clamp(mask.sum(dim=-1), min=1.0)
        outputs: list[torch.Tensor] = []
        for idx, block in enumerate(self.edge_convs):
            pts = (points if idx == 0 else fts) + shift
            fts = block(pts, fts) * mask
            outputs.append(fts)
        fused = self.fusion(torch.cat(outputs, dim=1)) * mask
        pooled = fused.sum(dim=-1) / counts
        return torch.softmax(self.fc(pooled), dim=1)


def build_particlenet(seed: int = 0) -> ParticleNetAK4:
    """ParticleNet AK4 in eval mode with weights (and non-trivial BN statistics) from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ParticleNetAK4()
    last = model.fc[-1]
    assert isinstance(last, nn.Linear)
    with torch.no_grad():
        last.weight.mul_(20.0)  # spread the class probabilities: comparisons are not of near-constants
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            n = module.num_features
            assert module.running_mean is not None and module.running_var is not None
            with torch.no_grad():
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(1.0 + 0.2 * torch.rand(n, generator=generator))
                module.weight.copy_(1.0 + 0.1 * torch.randn(n, generator=generator))
                module.bias.copy_(0.1 * torch.randn(n, generator=generator))
    return model.eval()

"""Learnable output normalisation (paper section 2 and appendix F).

Renders are normalised twice: first by fixed statistics (μ0, s0) estimated before training, then
by learnable (μ̂, ŝ) produced by a 3-layer MLP (width 350, SiLU) fed a constant:
``I ← ((I − μ0) / s0 − μ̂) / ŝ``. The MLP's last layer starts at (μ̂, ŝ) = (0, 1).

(μ0, s0) are estimated automatically from the data and renders of the base structure
(:func:`cryogeom.train.calibration`), not by hand. A negative s0 encodes inverted contrast.
"""

from __future__ import annotations

import torch
from torch import nn


class OutputNorm(nn.Module):
    def __init__(self, mu0: float = 0.0, s0: float = 1.0, width: int = 350, min_scale: float = 1e-3):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(1, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, 2))
        nn.init.zeros_(self.mlp[-1].weight)
        with torch.no_grad():
            self.mlp[-1].bias.copy_(torch.tensor([0.0, 1.0]))
        self.register_buffer("mu0", torch.tensor(float(mu0)))
        self.register_buffer("s0", torch.tensor(float(s0)))
        self.min_scale = min_scale

    def set_fixed_statistics(self, mu0: float, s0: float) -> None:
        self.mu0.fill_(float(mu0))
        self.s0.fill_(float(s0))

    def statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The learnable (μ̂, ŝ); ŝ kept away from 0."""
        out = self.mlp(torch.ones(1, 1, dtype=self.s0.dtype, device=self.s0.device))[0]
        mu, s = out[0], out[1]
        s = torch.where(s.abs() < self.min_scale, torch.full_like(s, self.min_scale), s)
        return mu, s

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        mu, s = self.statistics()
        return ((images - self.mu0) / self.s0 - mu) / s

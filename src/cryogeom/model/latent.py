"""The conformation latent: how the encoder's output becomes z.

``"free"`` — z is the encoder head's output as it is (the paper's deterministic latent). Its scale
is unbounded: nothing stops the encoder from stretching z along the direction of the strongest
motion until every other direction is, by comparison, zero.

``"normalised"`` — z is standardised per dimension over the particles (batch statistics while
training, their running averages afterwards, as batch normalisation without a learned scale), and
while training Gaussian noise of standard deviation ``noise_sd`` is added. Every direction then has
the same unit scale and a decoder that must give the same structure for z and z + noise cannot
pack two independent motions into one direction, which would need its output to change faster
along it than the noise allows; the encoder is pushed to give each motion directions of its own.
At inference z is the noise-free, standardised value.
"""

from __future__ import annotations

import torch
from torch import nn

LATENT_KINDS = ("normalised", "free")


class Latent(nn.Module):
    """Encoder head output [B, d] -> z [B, d]."""

    def __init__(self, dim: int, kind: str = "normalised", noise_sd: float = 0.0):
        super().__init__()
        if kind not in LATENT_KINDS:
            raise ValueError(f"unknown latent {kind!r} (expected one of {', '.join(LATENT_KINDS)})")
        self.kind, self.noise_sd = kind, float(noise_sd)
        self.norm = nn.BatchNorm1d(dim, affine=False, momentum=0.01) if kind == "normalised" else None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.norm is None:
            return h
        if self.training and len(h) < 2:
            raise ValueError("a normalised latent needs at least 2 particles per training batch")
        z = self.norm(h)
        if self.training and self.noise_sd > 0:
            z = z + self.noise_sd * torch.randn_like(z)
        return z

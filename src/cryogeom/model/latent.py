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

The noise is drawn from the default generator, or — after :meth:`Latent.seed_noise` — from a
generator seeded with the given number, so that training can make every step's draws a function
of the step: a resumed run then takes the same steps as an uninterrupted one, and P processes
(each drawing the whole global batch's noise and keeping its own rows) the same as one.
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
        self._noise_seed: int | None = None
        self._first_row = 0
        self._total_rows: int | None = None
        self._generator: torch.Generator | None = None

    def seed_noise(self, seed: int, first_row: int = 0, total_rows: int | None = None) -> None:
        """Draw the noise of the following training passes from a generator seeded with ``seed``:
        rows ``first_row …`` of one draw of ``total_rows`` rows (the global batch; this process's
        share). The whole draw is made in every process: a random draw's first rows depend on its size."""
        self._noise_seed, self._first_row, self._generator = int(seed), int(first_row), None
        self._total_rows = None if total_rows is None else int(total_rows)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.norm is None:
            return h
        if self.training and len(h) < 2:
            raise ValueError("a normalised latent needs at least 2 particles per training batch")
        z = self.norm(h)
        if self.training and self.noise_sd > 0:
            if self._noise_seed is None:
                noise = torch.randn_like(z)
            else:
                if self._generator is None or self._generator.device != z.device:
                    self._generator = torch.Generator(device=z.device)
                    self._generator.manual_seed(self._noise_seed)
                rows = max(self._total_rows or 0, self._first_row + len(z))
                noise = torch.randn((rows, z.shape[1]), generator=self._generator, dtype=z.dtype, device=z.device)
                noise = noise[self._first_row:self._first_row + len(z)]
            z = z + self.noise_sd * noise
        return z

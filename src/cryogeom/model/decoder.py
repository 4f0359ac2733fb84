"""The latent decoder and protein deformer (paper section 2 and appendix E).

``Decoder``: z [B, d] -> displacements T(z) [B, N, 3] Å, an MLP of ``depth`` linear layers of
``width`` units with SiLU after each but the last (paper: 7 layers, width 350). The last layer
starts at zero, so training starts from X(z) = X0 for every particle.

Initialisation of the hidden layers (``init``): ``"variance-preserving"`` draws each weight from
N(0, g² / fan_in) with g = :data:`SILU_GAIN` and zero biases, so that a unit change of z still
changes the last hidden layer by about a unit after six SiLU layers: the decoder's output depends
on z from the first step and the encoder receives a gradient at once. ``"default"`` keeps PyTorch's
initialisation (what the paper's code used), under which each layer shrinks the spread across
particles about threefold — after six layers by ~1,000×, so that the heterogeneity is learnt only
as the weights slowly grow, or as a free latent stretches z to make up for it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: the gain that keeps the spread of activations through a stack of Linear + SiLU layers
SILU_GAIN = 1.6
DECODER_INITS = ("variance-preserving", "default")


class Decoder(nn.Module):
    def __init__(self, latent_dim: int, n_residues: int, width: int = 350, depth: int = 7, init: str = "variance-preserving"):
        super().__init__()
        if depth < 2:
            raise ValueError("the decoder needs at least 2 layers")
        if init not in DECODER_INITS:
            raise ValueError(f"unknown decoder initialisation {init!r} (expected one of {', '.join(DECODER_INITS)})")
        layers: list[nn.Module] = []
        sizes = [latent_dim] + [width] * (depth - 1)
        for a, b in zip(sizes[:-1], sizes[1:]):
            linear = nn.Linear(a, b)
            if init == "variance-preserving":
                nn.init.normal_(linear.weight, 0.0, SILU_GAIN / math.sqrt(a))
                nn.init.zeros_(linear.bias)
            layers += [linear, nn.SiLU()]
        last = nn.Linear(width, 3 * n_residues)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        layers.append(last)
        self.mlp = nn.Sequential(*layers)
        self.n_residues = n_residues

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, d] -> T(z) [B, N, 3] (Å)."""
        return self.mlp(z).view(len(z), self.n_residues, 3)

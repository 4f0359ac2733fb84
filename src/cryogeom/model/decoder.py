"""The latent decoder and protein deformer (paper section 2 and appendix E).

``Decoder``: z [B, d] -> displacements T(z) [B, N, 3] Å, an MLP of ``depth`` linear layers of
``width`` units with SiLU after each but the last (paper: 7 layers, width 350). The last layer
starts at zero, so training starts from X(z) = X0 for every particle.
"""

from __future__ import annotations

import torch
from torch import nn


class Decoder(nn.Module):
    def __init__(self, latent_dim: int, n_residues: int, width: int = 350, depth: int = 7):
        super().__init__()
        if depth < 2:
            raise ValueError("the decoder needs at least 2 layers")
        layers: list[nn.Module] = []
        sizes = [latent_dim] + [width] * (depth - 1)
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.SiLU()]
        last = nn.Linear(width, 3 * n_residues)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        layers.append(last)
        self.mlp = nn.Sequential(*layers)
        self.n_residues = n_residues

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, d] -> T(z) [B, N, 3] (Å)."""
        return self.mlp(z).view(len(z), self.n_residues, 3)

"""How particle images are prepared before the encoder and the image loss sees them.

Every image is standardised on its background — the pixels outside the circle of diameter D
(RELION's particle normalisation): mean 0, standard deviation 1 there. Stacks written by RELION
are already so; raw counts become so. Then, if the data's contrast is inverted relative to the
renders (RELION stacks: protein bright), the image is negated so that protein is dark in both.
"""

from __future__ import annotations

import torch


def background_mask(box: int, *, device=None) -> torch.Tensor:
    """[box, box] bool: pixels outside the circle of diameter ``box`` about the centre (D // 2)."""
    c = torch.arange(box, device=device, dtype=torch.float32) - box // 2
    r2 = c[:, None] ** 2 + c[None, :] ** 2
    return r2 > (box / 2) ** 2


def standardise(images: torch.Tensor) -> torch.Tensor:
    """images [B, D, D] -> background mean 0, background standard deviation 1, per image."""
    mask = background_mask(images.shape[-1], device=images.device)
    bg = images[:, mask]
    mean = bg.mean(dim=1)
    std = bg.std(dim=1).clamp_min(torch.finfo(images.dtype).tiny ** 0.5)
    return (images - mean[:, None, None]) / std[:, None, None]


def prepare(images: torch.Tensor, invert: bool) -> torch.Tensor:
    """Standardised (and, for inverted-contrast data, negated) images, as the network sees them."""
    out = standardise(images)
    return -out if invert else out

"""The canonical in-plane orientation of a particle: what the encoder sees instead of the raw image.

A pose ``R`` (it moves the atoms, :mod:`cryogeom.imaging.rotations`) factors as an in-plane turn
of the image after a pose whose in-plane part is fixed::

    R = Rz(ψ) R_c          with   R_c[1, 2] = 0,  R_c[0, 2] >= 0,
    ψ = atan2(R[1, 2], R[0, 2])

(the structure's z axis projects onto the image's +x axis under ``R_c``). The projection at ``R``
is the projection at ``R_c`` turned by ψ about the rotation centre, so turning the image back by
ψ gives the particle as it would look at ``R_c``: every particle seen from the same direction then
looks the same whatever its in-plane angle, and the encoder has two degrees of freedom of the
pose left to learn instead of three. Images are resampled bilinearly about pixel ``D // 2``
(:mod:`cryogeom.imaging.grid`); pixels that come from outside the box are zero (the background
mean of standardised images).
"""

from __future__ import annotations

import torch


def inplane_angle(rotations: torch.Tensor) -> torch.Tensor:
    """ψ [B] (radians) of poses ``rotations [B, 3, 3]``: ``R = Rz(ψ) R_c`` with ``R_c`` canonical."""
    return torch.atan2(rotations[..., 1, 2], rotations[..., 0, 2])


def canonical_rotations(rotations: torch.Tensor, psi: torch.Tensor | None = None) -> torch.Tensor:
    """``R_c = Rz(-ψ) R`` [B, 3, 3]: the pose without its in-plane turn (``R_c[1, 2] = 0``); ψ if already known."""
    psi = inplane_angle(rotations) if psi is None else psi
    c, s = torch.cos(psi), torch.sin(psi)
    turn = torch.zeros_like(rotations)
    turn[:, 0, 0], turn[:, 0, 1], turn[:, 1, 0], turn[:, 1, 1], turn[:, 2, 2] = c, s, -s, c, 1
    return turn @ rotations


def turn_images(images: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
    """``images [B, C, D, D]`` turned so that output pixel q shows the input at ``Rot(ψ) q``.

    ``q`` and ``Rot(ψ) q`` are (x, y) pixel offsets from pixel ``D // 2``. For the projection at
    ``R`` and ``ψ = inplane_angle(R)`` the result is the projection at ``canonical_rotations(R)``
    (the shift turned by -ψ with it).
    """
    box = images.shape[-1]
    q = torch.arange(box, dtype=images.dtype, device=images.device) - box // 2
    qy, qx = torch.meshgrid(q, q, indexing="ij")
    c, s = torch.cos(psi).to(images.dtype)[:, None, None], torch.sin(psi).to(images.dtype)[:, None, None]
    x, y = c * qx - s * qy, s * qx + c * qy
    # grid_sample's normalised coordinates (align_corners=False): pixel i of D sits at (2i + 1) / D - 1.
    grid = torch.stack([(2 * x + 1) / box, (2 * y + 1) / box], dim=-1)
    return torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def canonical_view(images: torch.Tensor, rotations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(images [B, C, D, D] turned to the canonical in-plane orientation, the canonical poses [B, 3, 3])."""
    psi = inplane_angle(rotations)
    return turn_images(images, psi), canonical_rotations(rotations, psi)


__all__ = ["canonical_rotations", "canonical_view", "inplane_angle", "turn_images"]

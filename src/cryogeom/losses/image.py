"""The image loss L_img (paper section 2): pixelwise L2 between input and rendered images.

``L_img = Σ w_yx (Î − I)² / Σ w_yx`` over the batch and the pixels, i.e. the mean squared error,
optionally weighted per pixel. With ``mask=None`` every weight is 1 (the paper's loss); a 0/1
mask from :func:`circular_mask` gives the mean over the pixels inside a circle, which ignores the
corners of the box (solvent and noise only). Images follow :mod:`cryogeom.imaging.grid`:
``[..., D, D]`` indexed ``[y, x]``, centre pixel ``D // 2``.
"""

from __future__ import annotations

import torch

from cryogeom.errors import InputError, require
from cryogeom.imaging.grid import pixel_coordinates_angstrom


def circular_mask(box: int, radius_px: float | None = None, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """0/1 weights [box, box]: 1 on pixels within ``radius_px`` (pixels; default ``box // 2``)
    of the box centre (pixel ``box // 2``, as in :mod:`cryogeom.imaging.grid`)."""
    require(int(box) >= 1, f"circular_mask: box must be >= 1 pixel, got {box}")
    radius = box // 2 if radius_px is None else float(radius_px)
    require(radius > 0, f"circular_mask: radius_px must be > 0, got {radius_px}")
    axis = pixel_coordinates_angstrom(int(box), 1.0, dtype=torch.float64, device=device)  # pixels
    r2 = axis[:, None] ** 2 + axis[None, :] ** 2
    return (r2 <= radius * radius).to(dtype)


def image_loss(pred_images: torch.Tensor, target_images: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Pixelwise (weighted) mean squared error between ``pred_images`` and ``target_images``.

    Both [..., D, D] of equal shape (the batch included). ``mask``: optional non-negative
    per-pixel weights broadcastable to that shape ([D, D] for all images, or [B, D, D]), e.g.
    :func:`circular_mask`. Returns a 0-dim tensor: Σ w (pred − target)² / Σ w.
    """
    for name, x in (("pred_images", pred_images), ("target_images", target_images)):
        if not isinstance(x, torch.Tensor):
            raise InputError(f"image_loss: {name} must be a torch.Tensor [..., D, D], got {type(x).__name__}")
        require(x.ndim >= 2, f"image_loss: {name} must have shape [..., D, D], got {tuple(x.shape)}")
    require(pred_images.shape == target_images.shape,
            f"image_loss: pred_images {tuple(pred_images.shape)} and target_images {tuple(target_images.shape)} differ in shape")
    sq = (pred_images - target_images).square()
    if mask is None:
        return sq.mean()
    mask = torch.as_tensor(mask, device=sq.device)
    try:
        weights = torch.broadcast_to(mask.to(sq.dtype), sq.shape)
    except RuntimeError:
        raise InputError(f"image_loss: mask {tuple(mask.shape)} does not broadcast to the images {tuple(sq.shape)}") from None
    total_weight = weights.sum()
    require(bool(total_weight > 0), "image_loss: mask has no positive weight")
    return (sq * weights).sum() / total_weight

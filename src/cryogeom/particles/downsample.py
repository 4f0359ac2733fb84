"""Downsampling particle images by Fourier cropping, keeping their intensities comparable.

:func:`cryogeom.imaging.fourier.fourier_crop` (the one Fourier crop of the package: centre pixel
``D // 2`` → ``D' // 2`` for odd and even boxes, even-box Nyquist row/column as documented there)
keeps the image *sum*, as the projector needs for electrons per pixel. Particle images are
intensities per pixel whose mean and noise level the encoder and the image loss see, so here the
crop is rescaled by (D'/D)² to keep the **real-space mean**: a smooth (band-limited) image keeps
its pixel values, sampled on the coarser grid. The pixel size becomes ``p · D / D'``.
"""

from __future__ import annotations

import torch

from cryogeom.imaging.fourier import fourier_crop


def downsample_images(images: torch.Tensor, box_out: int) -> torch.Tensor:
    """Fourier-crop images [..., D, D] to [..., box_out, box_out] (box_out ≤ D), mean preserved."""
    box = images.shape[-1]
    if int(box_out) == box:
        return images
    return fourier_crop(images, int(box_out)) * (int(box_out) / box) ** 2

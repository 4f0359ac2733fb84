"""Fourier cropping: downsample images [..., D, D] to [..., D', D'] by keeping the low frequencies.

The image is the band-limited signal its centred DFT describes; cropping keeps the frequencies
``k ∈ [-(D'//2), (D'-1)//2]`` (cycles per box) on each axis and samples the same signal on a
grid of D' pixels of size ``pixel_size × D / D'`` Å. Conventions kept:

* **Centre** — pixel ``D // 2`` of the input and pixel ``D' // 2`` of the output are the same
  point (:mod:`cryogeom.imaging.grid`), for odd and even D and D'. When ``(D//2)/D ≠ (D'//2)/D'``
  (any odd box) this needs a sub-pixel phase ramp, applied here.
* **Intensities** — output pixels are samples of the same band-limited function: a smooth image
  keeps its values, and the real-space **mean is preserved** (the sum scales by (D'/D)²).
* **Nyquist** — for even D' the new Nyquist row/column receives the average of the input's
  ``+D'/2`` and ``-D'/2`` components (the real part of the cropped inverse DFT, taken about the
  centre), so the output is real and symmetric about the centre.
"""

from __future__ import annotations

import math

import torch


def _integer_frequencies(box: int, device) -> torch.Tensor:
    """Frequencies in cycles per box in unshifted FFT order: 0, 1, …, -1 (Nyquist −D/2 for even D)."""
    k = torch.arange(box, device=device)
    return torch.where(k < (box + 1) // 2, k, k - box)


def fourier_crop(images: torch.Tensor, box_out: int) -> torch.Tensor:
    """Downsample real images [..., D, D] to [..., box_out, box_out] (box_out ≤ D) by Fourier cropping.

    Real-space mean preserved; centre pixel D // 2 maps onto box_out // 2; works on any device and
    is differentiable. The pixel size grows from p to ``p * D / box_out``.
    """
    box = images.shape[-1]
    if images.shape[-2] != box:
        raise ValueError(f"fourier_crop: images must be square, got {tuple(images.shape[-2:])}")
    box_out = int(box_out)
    if not 1 <= box_out <= box:
        raise ValueError(f"fourier_crop: box_out must be in [1, {box}], got {box_out}")
    if box_out == box:
        return images
    spectrum = torch.fft.fft2(images)
    k_out = _integer_frequencies(box_out, images.device)
    rows = k_out % box
    cropped = spectrum.index_select(-2, rows).index_select(-1, rows)
    offset = (box // 2) / box - (box_out // 2) / box_out  # centre alignment, in boxes
    if offset != 0.0:
        ramp = torch.polar(torch.ones_like(k_out, dtype=images.real.dtype), 2 * math.pi * offset * k_out.to(images.real.dtype))
        cropped = cropped * ramp[:, None] * ramp[None, :]
    return torch.fft.ifft2(cropped).real * (box_out / box) ** 2

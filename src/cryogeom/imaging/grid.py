"""The pixel grid: which array axis is x, where the centre of a box is, and Fourier frequencies.

The convention, fixed here once for the whole package
------------------------------------------------------
* Images are arrays ``[..., D, D]`` indexed ``[y, x]``: axis -2 (rows) is y, axis -1 (columns)
  is x, as in MRC files read by ``mrcfile`` (``data[z, y, x]``) and in RELION.
* The centre of a box of D pixels is pixel index ``D // 2`` on each axis, for odd and even D
  (RELION, SPIDER, XMIPP, cryoDRGN; also the zero frequency of ``fftshift``). Pixel ``j`` sits at
  ``(j - D // 2) * pixel_size_angstrom`` Å.
* Frequencies are in 1/Å; the unshifted layout of ``torch.fft.fft2``/``rfft2`` is used
  throughout (zero frequency at index 0), so no ``fftshift`` appears on hot paths.
"""

from __future__ import annotations

import torch


def center_index(box: int) -> int:
    """Index of the pixel holding the rotation centre in a box of ``box`` pixels."""
    return box // 2


def pixel_coordinates_angstrom(box: int, pixel_size_angstrom: float, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """Positions [box] (Å) of the pixel centres along one axis, zero at :func:`center_index`."""
    return (torch.arange(box, dtype=dtype, device=device) - box // 2) * pixel_size_angstrom


def frequencies_rfft2(box: int, pixel_size_angstrom, *, dtype=torch.float32, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Spatial frequencies (1/Å) of an ``rfft2`` of a ``[box, box]`` image.

    Returns ``(ky [box, 1], kx [1, box // 2 + 1])`` for a scalar pixel size, or with a leading
    batch dimension ``[B, box, 1]``, ``[B, 1, box // 2 + 1]`` for a tensor of B pixel sizes.
    """
    fy = torch.fft.fftfreq(box, dtype=dtype, device=device)
    fx = torch.fft.rfftfreq(box, dtype=dtype, device=device)
    pix = torch.as_tensor(pixel_size_angstrom, dtype=dtype, device=device)
    if pix.ndim == 0:
        return fy[:, None] / pix, fx[None, :] / pix
    return fy[None, :, None] / pix[:, None, None], fx[None, None, :] / pix[:, None, None]


def background_mask(box: int, *, device=None) -> torch.Tensor:
    """[box, box] bool: the pixels outside the circle of diameter ``box`` about the centre pixel
    :func:`center_index` — the background of a particle image (RELION's particle normalisation)."""
    c = torch.arange(box, device=device, dtype=torch.float32) - box // 2
    r2 = c[:, None] ** 2 + c[None, :] ** 2
    return r2 > (box / 2) ** 2

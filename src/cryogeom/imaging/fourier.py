"""Fourier-space helpers on the package's pixel grid: centre crop/pad, Fourier crop, phase-ramp shift.

All follow :mod:`cryogeom.imaging.grid`: images ``[..., D, D]`` indexed ``[y, x]`` with the centre
at index ``D // 2``; spectra are ``torch.fft.rfft2`` outputs ``[..., D, D // 2 + 1]`` in the
unshifted layout. Centre crop and pad keep the centre pixel on the centre pixel for any mix of odd
and even sizes.

Units of a Fourier crop: :func:`fourier_crop` keeps the *sum* of the image (the zero frequency)
and band-limits it, so an image of electrons per pixel stays electrons per (larger) pixel. This is
what the projector renders at a coarser pixel size (:mod:`cryogeom.imaging.projector`).
"""

from __future__ import annotations

import math

import torch

from cryogeom.errors import require
from cryogeom.imaging.grid import frequencies_rfft2


def centre_crop(images: torch.Tensor, box: int) -> torch.Tensor:
    """The central ``[box, box]`` of ``images [..., D, D]`` (a view; ``box <= D``).

    Pixel ``D // 2`` of the input becomes pixel ``box // 2`` of the output.
    """
    size = images.shape[-1]
    require(images.shape[-2] == size, f"centre_crop: images must be square [..., D, D], got {tuple(images.shape)}")
    require(1 <= box <= size, f"centre_crop: box must lie in 1..{size}, got {box}")
    start = size // 2 - box // 2
    return images[..., start : start + box, start : start + box]


def centre_pad(images: torch.Tensor, padded_box: int) -> torch.Tensor:
    """``images [..., D, D]`` zero-padded to ``[padded_box, padded_box]``, centre on centre.

    The inverse of :func:`centre_crop`: ``centre_crop(centre_pad(x, P), D) == x``.
    """
    size = images.shape[-1]
    require(images.shape[-2] == size, f"centre_pad: images must be square [..., D, D], got {tuple(images.shape)}")
    require(padded_box >= size, f"centre_pad: padded_box must be >= {size}, got {padded_box}")
    before = padded_box // 2 - size // 2
    after = padded_box - size - before
    return torch.nn.functional.pad(images, (before, after, before, after))


def fourier_crop_rfft2(spectrum: torch.Tensor, box: int) -> torch.Tensor:
    """Keep the frequencies of a ``[box, box]`` grid from an rfft2 spectrum of a larger grid.

    ``spectrum [..., N, N // 2 + 1]`` → ``[..., box, box // 2 + 1]`` (``box <= N``): rows with
    ``fftfreq(box) * box`` indices ``0 … ceil(box/2) - 1`` and ``-(box // 2) … -1``, columns
    ``0 … box // 2``. ``torch.fft.irfft2(out, s=(box, box))`` is then the band-limited image
    on the coarser grid with the same sum. (At an even ``box`` the Nyquist row and column are
    taken as they are, the usual convention.)
    """
    n = spectrum.shape[-2]
    require(spectrum.shape[-1] == n // 2 + 1, f"fourier_crop_rfft2: spectrum must be [..., N, N // 2 + 1], got {tuple(spectrum.shape)}")
    require(1 <= box <= n, f"fourier_crop_rfft2: box must lie in 1..{n}, got {box}")
    if box == n:
        return spectrum
    positive, negative = (box + 1) // 2, box // 2
    rows = torch.cat([spectrum[..., :positive, : box // 2 + 1], spectrum[..., n - negative :, : box // 2 + 1]], dim=-2)
    return rows


def fourier_crop(images: torch.Tensor, box: int) -> torch.Tensor:
    """Downsample ``images [..., D, D]`` to ``[..., box, box]`` by cropping their spectrum.

    The pixel size grows by ``D / box``; the image sum is kept (see the module docstring), the
    centre pixel stays the centre pixel.
    """
    size = images.shape[-1]
    require(images.shape[-2] == size, f"fourier_crop: images must be square [..., D, D], got {tuple(images.shape)}")
    require(1 <= box <= size, f"fourier_crop: box must lie in 1..{size}, got {box}")
    if box == size:
        return images
    # Move the centre pixel to index 0 so that cropping frequencies keeps it fixed.
    shifted = torch.roll(images, (-(size // 2),) * 2, dims=(-2, -1))
    out = torch.fft.irfft2(fourier_crop_rfft2(torch.fft.rfft2(shifted), box), s=(box, box))
    return torch.roll(out, (box // 2, box // 2), dims=(-2, -1))


def _filter(images: torch.Tensor, transfer: torch.Tensor) -> torch.Tensor:
    size = images.shape[-1]
    return torch.fft.irfft2(torch.fft.rfft2(images).mul_(transfer), s=(size, size))


class _EvenFilterCrop(torch.autograd.Function):
    """``centre_crop(irfft2(rfft2(x) · H), box)`` whose gradient is the same filter on the padded gradient.

    For H real and even in k, ``x ↦ irfft2(rfft2(x) · H)`` is a circular convolution with a real,
    even kernel: a symmetric linear map, so its adjoint is itself. (At an even box the Nyquist
    column of H need not be even: ``irfft2`` then uses ``(H(kx, ky) + H(kx, -ky)) / 2`` there, in
    forward and backward alike.) The adjoint of the crop is the zero-padding.
    """

    @staticmethod
    def forward(ctx, images, transfer, box):
        ctx.save_for_backward(transfer)
        ctx.box = box
        return centre_crop(_filter(images, transfer), box).contiguous()

    @staticmethod
    def backward(ctx, grad):
        (transfer,) = ctx.saved_tensors
        size = transfer.shape[-2]
        return _filter(centre_pad(grad, size), transfer), None, None


def filter_and_crop(images: torch.Tensor, transfer_rfft2: torch.Tensor, box: int) -> torch.Tensor:
    """``centre_crop(irfft2(rfft2(images) · transfer), box)`` for a real filter that is even in k.

    ``images [B, P, P]``, ``transfer_rfft2 [B or 1, P, P // 2 + 1]`` (real, ``H(-k) = H(k)``, as the
    CTF), result ``[B, box, box]``. The gradient with respect to the images applies the same filter
    to the zero-padded gradient (two FFTs instead of autograd's four); if the filter requires grad
    the plain autograd composition is used.
    """
    size = images.shape[-1]
    require(
        transfer_rfft2.shape[-2:] == (size, size // 2 + 1),
        f"filter_and_crop: transfer_rfft2 must be [..., {size}, {size // 2 + 1}] for images [..., {size}, {size}], got {tuple(transfer_rfft2.shape)}",
    )
    if transfer_rfft2.requires_grad:
        return centre_crop(torch.fft.irfft2(torch.fft.rfft2(images) * transfer_rfft2, s=(size, size)), box)
    return _EvenFilterCrop.apply(images, transfer_rfft2, box)


def phase_ramp_rfft2(
    shift_angstrom: torch.Tensor, box: int, pixel_size_angstrom: float, *, dtype=torch.float32, device=None
) -> torch.Tensor:
    """``exp(-2πi (kx dx + ky dy))`` [B, box, box // 2 + 1] for shifts [B, 2] (Å, (dx, dy)).

    Multiplying an rfft2 spectrum by it moves the image content by ``+(dx, dy)`` (circularly).
    """
    shift = torch.as_tensor(shift_angstrom, dtype=dtype, device=device)
    require(shift.ndim == 2 and shift.shape[-1] == 2, f"phase_ramp_rfft2: shift_angstrom must be [B, 2], got {tuple(shift.shape)}")
    ky, kx = frequencies_rfft2(box, pixel_size_angstrom, dtype=dtype, device=shift.device)
    phase = (-2.0 * math.pi) * (kx[None] * shift[:, 0, None, None] + ky[None] * shift[:, 1, None, None])
    return torch.polar(torch.ones_like(phase), phase)


def shift_images(images: torch.Tensor, shift_angstrom: torch.Tensor, pixel_size_angstrom: float) -> torch.Tensor:
    """Move ``images [B, D, D]`` by ``shift_angstrom [B, 2]`` (Å, (dx, dy)) with a Fourier phase ramp.

    Exact for band-limited images (circular at the box edges).
    """
    size = images.shape[-1]
    ramp = phase_ramp_rfft2(shift_angstrom, size, pixel_size_angstrom, dtype=images.dtype, device=images.device)
    return torch.fft.irfft2(torch.fft.rfft2(images) * ramp, s=(size, size))


__all__ = ["centre_crop", "centre_pad", "filter_and_crop", "fourier_crop", "fourier_crop_rfft2", "phase_ramp_rfft2", "shift_images"]

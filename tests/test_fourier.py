"""Fourier helpers: centre crop/pad, Fourier crop, phase-ramp shifts, the symmetric CTF filter."""

import math

import pytest
import torch

from cryogeom.errors import InputError
from cryogeom.imaging.fourier import centre_crop, centre_pad, filter_and_crop, fourier_crop, phase_ramp_rfft2, shift_images


def gaussian_image(box, centre_xy, sigma, pixel=1.0):
    c = (torch.arange(box, dtype=torch.float64) - box // 2) * pixel
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    return torch.exp(-((xx - centre_xy[0]) ** 2 + (yy - centre_xy[1]) ** 2) / (2 * sigma**2))


@pytest.mark.parametrize("size,box", [(10, 4), (10, 5), (11, 4), (11, 5), (7, 7)])
def test_centre_crop_and_pad_keep_the_centre_pixel(size, box):
    image = torch.zeros(size, size)
    image[size // 2, size // 2] = 1.0
    cropped = centre_crop(image, box)
    assert cropped[box // 2, box // 2] == 1.0 and cropped.sum() == 1.0
    padded = centre_pad(cropped, size + 3)
    assert padded[(size + 3) // 2, (size + 3) // 2] == 1.0
    x = torch.randn(2, box, box)
    torch.testing.assert_close(centre_crop(centre_pad(x, size + 3), box), x)


@pytest.mark.parametrize("size,box", [(96, 32), (96, 33), (99, 33), (99, 48)])
def test_fourier_crop_samples_a_band_limited_image_on_the_coarse_grid(size, box):
    pixel = 1.0
    coarse_pixel = pixel * size / box
    centre = (1.3, -2.1)
    sigma = 2.0 * coarse_pixel  # band-limited on the coarse grid too, and > 8σ from the edges
    fine = gaussian_image(size, centre, sigma, pixel)
    coarse = fourier_crop(fine, box)
    # Sum kept: the coarse image is the fine one integrated over larger pixels.
    expected = gaussian_image(box, centre, sigma, coarse_pixel) * (coarse_pixel / pixel) ** 2
    torch.testing.assert_close(coarse, expected, atol=1e-9 * expected.max().item(), rtol=0)
    torch.testing.assert_close(coarse.sum(), fine.sum())


def test_fourier_crop_of_the_same_size_is_the_identity():
    x = torch.randn(3, 16, 16)
    assert fourier_crop(x, 16) is x


@pytest.mark.parametrize("box", [20, 21])
def test_integer_shift_is_a_roll_and_sub_pixel_shift_moves_a_gaussian(box):
    x = torch.randn(2, box, box, dtype=torch.float64)
    shifts = torch.tensor([[3.0, -2.0], [-1.0, 4.0]], dtype=torch.float64)
    moved = shift_images(x, shifts * 0.5, 0.5)  # pixel size 0.5 Å: shifts of (3, -2) and (-1, 4) px
    for b in range(2):
        expected = torch.roll(x[b], shifts=(int(shifts[b, 1]), int(shifts[b, 0])), dims=(0, 1))
        torch.testing.assert_close(moved[b], expected)
    big = 2 * box  # > 7σ from the edges: nothing wraps
    g = gaussian_image(big, (0.0, 0.0), 2.5)[None]
    moved = shift_images(g, torch.tensor([[0.37, -1.61]], dtype=torch.float64), 1.0)
    torch.testing.assert_close(moved[0], gaussian_image(big, (0.37, -1.61), 2.5), atol=1e-9, rtol=0)


def test_phase_ramp_has_unit_modulus_and_is_one_at_zero_frequency():
    ramp = phase_ramp_rfft2(torch.tensor([[1.5, -0.7]]), 16, 1.0)
    torch.testing.assert_close(ramp.abs(), torch.ones(1, 16, 9))
    assert ramp[0, 0, 0] == 1
    with pytest.raises(InputError, match="shift_angstrom"):
        phase_ramp_rfft2(torch.zeros(3), 16, 1.0)


@pytest.mark.parametrize("size", [16, 17])
def test_filter_and_crop_is_the_filter_and_its_gradient_the_adjoint(size):
    g = torch.Generator().manual_seed(0)
    ky = torch.fft.fftfreq(size, dtype=torch.float64)[:, None]
    kx = torch.fft.rfftfreq(size, dtype=torch.float64)[None, :]
    # Even in k with an astigmatic (kx ky) term, like a CTF.
    transfer = torch.stack([-torch.sin(40 * (kx**2 + ky**2) + 15 * a * kx * ky + 0.1) for a in (1.0, -2.0)])
    x = torch.randn(2, size, size, generator=g, dtype=torch.float64, requires_grad=True)
    out = filter_and_crop(x, transfer, 9)
    expected = centre_crop(torch.fft.irfft2(torch.fft.rfft2(x) * transfer, s=(size, size)), 9)
    torch.testing.assert_close(out, expected)
    assert torch.autograd.gradcheck(lambda x: filter_and_crop(x, transfer, 9), (x,), fast_mode=True)
    # <A x, y> = <x, Aᵀ y> with Aᵀ y = filter(pad(y)): the operator is symmetric.
    y = torch.randn(2, 9, 9, generator=g, dtype=torch.float64)
    (out * y).sum().backward()
    adjoint = torch.fft.irfft2(torch.fft.rfft2(centre_pad(y, size)) * transfer, s=(size, size))
    torch.testing.assert_close(x.grad, adjoint)
    assert math.isclose((out * y).sum().item(), (x * adjoint).sum().item(), rel_tol=1e-10)
    with pytest.raises(InputError, match="transfer_rfft2"):
        filter_and_crop(x, transfer[..., :-1], 9)

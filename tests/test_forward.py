"""The composed forward model (paper appendix B, eqs. 2-5): pose, shift, padding, CTF, resolution."""

import dataclasses

import numpy as np
import pytest
import torch
from test_projector import dense_splat_reference

from cryogeom.errors import InputError
from cryogeom.imaging.ctf import CTFParams, ctf_rfft2
from cryogeom.imaging.forward import ForwardModel, ForwardSettings, padded_box_for_ctf
from cryogeom.imaging.rotations import pose_points
from cryogeom.imaging.fourier import fourier_crop, shift_images
from cryogeom.imaging.rotations import random_rotations


def cloud(points=40, spread=6.0, batch=3, dtype=torch.float64, seed=0, sigma_range=(1.4, 2.2)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(points, 3, generator=g, dtype=dtype) * spread
    sigma = sigma_range[0] + (sigma_range[1] - sigma_range[0]) * torch.rand(points, generator=g, dtype=dtype)
    mass = 30 + 70 * torch.rand(points, generator=g, dtype=dtype)
    rotations = torch.as_tensor(random_rotations(batch, seed), dtype=dtype)
    return x.expand(batch, points, 3).clone(), rotations, sigma, mass


def ctf_params(batch, dtype=torch.float64, defocus=15000.0):
    return CTFParams.from_values(
        defocus_u_angstrom=defocus + 1000.0 * torch.arange(batch, dtype=dtype),
        defocus_v_angstrom=defocus - 800.0,
        astigmatism_angle_deg=25.0,
        amplitude_contrast=0.07,
        batch_size=batch,
        dtype=dtype,
    )


def relative_error(a, b):
    return ((a - b).norm() / b.norm()).item()


def reference_forward(clouds, rotations, shifts, ctf, sigma, mass, box, pixel, padded):
    """Eqs. 2-5 spelled out in float64 NumPy: pose, dense splat on the padded box, CTF, crop."""
    r = rotations.double().numpy()
    moved = np.einsum("bij,bmj->bmi", r, clouds.double().numpy())
    moved[..., :2] += shifts.double().numpy()[:, None, :]
    canvas = dense_splat_reference(torch.from_numpy(moved), sigma, mass, padded, pixel).numpy()
    if ctf is not None:
        transfer = ctf_rfft2(ctf.to(torch.float64), padded, pixel).numpy()
        canvas = np.fft.irfft2(np.fft.rfft2(canvas) * transfer, s=(padded, padded))
    start = padded // 2 - box // 2
    return torch.from_numpy(canvas[:, start : start + box, start : start + box])


@pytest.mark.parametrize("box,padded", [(24, 48), (25, 50), (24, 37), (25, 25)])
def test_matches_float64_reference(box, padded):
    clouds, rotations, sigma, mass = cloud()
    shifts = torch.tensor([[1.3, -0.4], [-2.2, 0.7], [0.0, 3.1]], dtype=torch.float64)
    ctf = ctf_params(3)
    model = ForwardModel(ForwardSettings(box, 1.2, padded_box=padded))
    expected = reference_forward(clouds, rotations, shifts, ctf, sigma, mass, box, 1.2, padded)
    got = model(clouds, rotations, shifts, ctf, sigma, mass)
    assert got.shape == (3, box, box)
    assert (got - expected).abs().max() < 2e-8 * expected.abs().max()  # 6σ truncation


def test_float32_agrees_with_float64():
    clouds, rotations, sigma, mass = cloud(points=100)
    shifts = torch.randn(3, 2, dtype=torch.float64)
    model = ForwardModel(ForwardSettings(32, 1.0))
    f64 = model(clouds, rotations, shifts, ctf_params(3), sigma, mass)
    f32 = model(clouds.float(), rotations.float(), shifts.float(), ctf_params(3), sigma.float(), mass.float())
    assert f32.dtype == torch.float32
    assert relative_error(f32.double(), f64) < 1e-5


@pytest.mark.parametrize("box", [95, 96])
def test_large_box_without_ctf_integrates_to_total_electrons(box):
    clouds, rotations, sigma, mass = cloud(points=80)
    shifts = torch.tensor([[2.0, -1.0], [0.5, 0.5], [-3.0, 1.5]], dtype=torch.float64)
    image = ForwardModel(ForwardSettings(box, 1.0))(clouds, rotations, shifts, None, sigma, mass)
    torch.testing.assert_close(image.sum((-2, -1)), mass.sum().expand(3), rtol=1e-8, atol=0)


@pytest.mark.parametrize("box", [33, 34])
def test_centroid_of_one_point_lies_at_its_rotated_position(box):
    pixel = 1.1
    g = torch.Generator().manual_seed(4)
    rotations = torch.as_tensor(random_rotations(10, 4), dtype=torch.float64)
    point = torch.tensor([[3.3, -2.1, 4.4]], dtype=torch.float64).expand(10, 1, 3)
    shifts = (torch.rand(10, 2, generator=g, dtype=torch.float64) - 0.5) * 4 * pixel  # sub-pixel shifts
    image = ForwardModel(ForwardSettings(box, pixel))(point, rotations, shifts, None, torch.tensor([1.6]), torch.tensor([50.0]))
    expected = torch.einsum("bij,bj->bi", rotations[:, :2, :], point[:, 0]) + shifts  # p' = R p + d, (x, y)
    c = (torch.arange(box, dtype=torch.float64) - box // 2) * pixel
    total = image.sum((-2, -1))
    centroid = torch.stack([(image.sum(-2) * c).sum(-1), (image.sum(-1) * c).sum(-1)], -1) / total[:, None]
    assert (centroid - expected).abs().max() / pixel < 0.01


def test_rendering_rotated_cloud_with_identity_equals_rendering_cloud_with_rotation():
    clouds, rotations, sigma, mass = cloud()
    shifts = torch.tensor([[0.5, -1.0], [1.5, 0.0], [0.0, 0.0]], dtype=torch.float64)
    model = ForwardModel(ForwardSettings(30, 1.0))
    ctf = ctf_params(3)
    posed = model(clouds, rotations, shifts, ctf, sigma, mass)
    identity = torch.eye(3, dtype=torch.float64).expand(3, 3, 3)
    moved = torch.einsum("bij,bmj->bmi", rotations, clouds)
    torch.testing.assert_close(model(moved, identity, shifts, ctf, sigma, mass), posed, rtol=0, atol=1e-12)
    assert relative_error(model(clouds, identity, shifts, ctf, sigma, mass), posed) > 0.1  # the pose matters


@pytest.mark.parametrize("box", [64, 65])
@pytest.mark.parametrize("with_ctf", [False, True])
def test_shift_equals_fourier_phase_ramp(box, with_ctf):
    # Band-limited (σ >= 2 px: the spectrum is < 1e-8 at Nyquist) and compact (zero at the edges),
    # so the circular phase-ramp shift is exact. With CTF the canvas is the box itself: then the CTF
    # is a circular convolution too, and must commute with the shift.
    clouds, rotations, sigma, mass = cloud(points=30, spread=3.0, sigma_range=(2.0, 2.4))
    shifts = torch.tensor([[2.37, -1.61], [-0.5, 0.25], [3.9, 2.2]], dtype=torch.float64)
    ctf = ctf_params(3, defocus=3000.0) if with_ctf else None
    model = ForwardModel(ForwardSettings(box, 1.0, padded_box=box if with_ctf else None))
    shifted = model(clouds, rotations, shifts, ctf, sigma, mass)
    centred = model(clouds, rotations, torch.zeros_like(shifts), ctf, sigma, mass)
    ramped = shift_images(centred, shifts, 1.0)
    assert (shifted - ramped).abs().max() < 1e-8 * centred.abs().max()
    assert relative_error(centred, shifted) > 0.1


def test_padding_removes_ctf_wrap_around_and_converges():
    clouds, rotations, sigma, mass = cloud(points=60, spread=7.0)
    shifts = torch.zeros(3, 2, dtype=torch.float64)
    ctf = ctf_params(3, defocus=20000.0)
    render = lambda padded: ForwardModel(ForwardSettings(32, 1.0, padded_box=padded))(clouds, rotations, shifts, ctf, sigma, mass)  # noqa: E731
    reference = render(32 * 12)
    errors = [relative_error(render(32 * f), reference) for f in (1, 2, 3, 5)]
    assert errors[0] > 0.2  # no padding: the CTF's point spread wraps round into the box
    assert errors[0] > errors[1] > errors[2] > errors[3]
    assert errors[3] < 1e-3
    # The canvas from the point-spread radius leaves nothing to wrap round (defocus up to 2.2 µm).
    safe = padded_box_for_ctf(32, 1.0, defocus_max_angstrom=22000.0)
    assert relative_error(render(safe), reference) < 1e-5 < errors[3]
    # Without CTF padding changes nothing: only the CTF spreads signal.
    no_ctf = [ForwardModel(ForwardSettings(32, 1.0, padded_box=p))(clouds, rotations, shifts, None, sigma, mass) for p in (32, 96)]
    torch.testing.assert_close(no_ctf[0], no_ctf[1], rtol=0, atol=1e-12)


def test_protein_is_dark_at_low_frequency():
    # With the box as canvas the CTF is a circular convolution: the image sum is CTF(0) · electrons.
    clouds, rotations, sigma, mass = cloud(points=30, spread=3.0)
    ctf = ctf_params(3)
    image = ForwardModel(ForwardSettings(48, 1.0, padded_box=48))(clouds, rotations, torch.zeros(3, 2, dtype=torch.float64), ctf, sigma, mass)
    torch.testing.assert_close(image.sum((-2, -1)), -0.07 * mass.sum().expand(3), rtol=1e-6, atol=0)


@pytest.mark.parametrize("box", [48, 45])
def test_coarse_render_matches_fourier_cropped_fine_render(box):
    clouds, rotations, sigma, mass = cloud(points=50, spread=3.5, sigma_range=(1.4, 1.6))
    shifts = torch.tensor([[0.3, -0.8], [1.1, 0.0], [-0.6, 0.9]], dtype=torch.float64)
    fine = ForwardSettings(box, 1.0, pad_factor=1.0)
    fine_image = ForwardModel(fine)(clouds, rotations, shifts, None, sigma, mass)
    small = box // 3
    target = fourier_crop(fine_image, small)
    coarse = fine.with_box(small)
    assert coarse.box * coarse.pixel_size_angstrom == pytest.approx(box * 1.0)
    # Oversampling 3× renders on the fine grid and Fourier-crops: the same numbers.
    exact = ForwardModel(ForwardSettings(small, coarse.pixel_size_angstrom, pad_factor=1.0, oversample=3))(clouds, rotations, shifts, None, sigma, mass)
    assert (exact - target).abs().max() < 1e-10 * target.abs().max()
    # Point sampling at 3 Å aliases; oversampling 2× (1.5 Å) removes most of it.
    errors = [
        relative_error(ForwardModel(dataclasses.replace(coarse, oversample=s))(clouds, rotations, shifts, None, sigma, mass), target) for s in (1, 2)
    ]
    assert errors[0] > 0.02 and errors[1] < 0.1 * errors[0]


def test_gradcheck_through_pose_splat_ctf_and_oversampling():
    clouds, rotations, sigma, mass = cloud(points=4, spread=2.0, batch=2)
    clouds.requires_grad_(True)
    shifts = torch.tensor([[0.4, -0.3], [0.0, 1.0]], dtype=torch.float64, requires_grad=True)
    model = ForwardModel(ForwardSettings(10, 1.5, padded_box=15, oversample=2))
    ctf = ctf_params(2, defocus=5000.0)
    assert torch.autograd.gradcheck(lambda x, d: model(x, rotations, d, ctf, sigma, mass), (clouds, shifts), fast_mode=True)


@pytest.mark.parametrize("padded", [14, 15])
def test_gradients_of_the_symmetric_ctf_filter(padded):
    """The CTF step's hand-written backward (the filter is its own adjoint) against autograd."""
    clouds, rotations, sigma, mass = cloud(points=5, spread=2.0, batch=2)
    shifts = torch.tensor([[0.4, -0.3], [0.0, 1.0]], dtype=torch.float64)
    model = ForwardModel(ForwardSettings(9, 1.4, padded_box=padded))
    ctf = ctf_params(2, defocus=4000.0)
    x = clouds.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: model(x, rotations, shifts, ctf, sigma, mass), (x,), fast_mode=True)
    upstream = torch.randn(2, 9, 9, dtype=torch.float64)
    (model(x, rotations, shifts, ctf, sigma, mass) * upstream).sum().backward()
    # A CTF parameter that requires grad switches to plain autograd through torch.fft.
    ctf_autograd = ctf_params(2, defocus=4000.0)
    ctf_autograd.defocus_u_angstrom.requires_grad_(True)
    y = clouds.clone().requires_grad_(True)
    (model(y, rotations, shifts, ctf_autograd, sigma, mass) * upstream).sum().backward()
    torch.testing.assert_close(x.grad, y.grad, rtol=1e-10, atol=1e-12)
    assert ctf_autograd.defocus_u_angstrom.grad.abs().max() > 0


def test_pose_points_is_eq_2():
    clouds, rotations, _, _ = cloud(points=5)
    shifts = torch.randn(3, 2, dtype=torch.float64)
    moved = pose_points(clouds, rotations, shifts)
    expected = torch.einsum("bij,bmj->bmi", rotations, clouds)[..., :2] + shifts[:, None, :]
    torch.testing.assert_close(moved, expected)


def test_settings_and_inputs_are_checked():
    with pytest.raises(InputError, match="padded_box"):
        ForwardSettings(64, 1.0, padded_box=32)
    with pytest.raises(InputError, match="oversample"):
        ForwardSettings(64, 1.0, oversample=0)
    with pytest.raises(InputError, match="pixel_size_angstrom"):
        ForwardSettings(64, -1.0)
    assert ForwardSettings(80, 1.0).render_box >= 160
    assert ForwardSettings(80, 1.0, padded_box=300).with_box(40).padded_box == 150
    clouds, rotations, sigma, mass = cloud(batch=2)
    model = ForwardModel(ForwardSettings(16, 1.0))
    with pytest.raises(InputError, match="rotations"):
        model(clouds, rotations[:1], torch.zeros(2, 2), None, sigma, mass)
    with pytest.raises(InputError, match="shifts_angstrom"):
        model(clouds, rotations, torch.zeros(2, 3), None, sigma, mass)
    with pytest.raises(InputError, match="clouds_angstrom"):
        model(clouds[..., :2], rotations, torch.zeros(2, 2), None, sigma, mass)
    with pytest.raises(InputError, match="ctf"):
        model(clouds, rotations, torch.zeros(2, 2), ctf_params(3), sigma, mass)

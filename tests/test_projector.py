"""The separable Gaussian splat (paper eq. 3) against a dense float64 reference, values and gradients."""

import math

import pytest
import torch

from cryogeom.errors import InputError
from cryogeom.imaging.projector import splat_gaussians


def dense_splat_reference(points, sigma, mass, box, pixel_size, truncate_sigmas=None):
    """Eq. 3 summed literally over a dense [B, M, box, box] array in float64 (electrons per pixel).

    With ``truncate_sigmas`` each Gaussian is cut to ``|dx|, |dy| < k σ`` as the fast path does.
    """
    points, sigma, mass = (torch.as_tensor(t, dtype=torch.float64) for t in (points, sigma, mass))
    sigma = sigma.expand(points.shape[0], -1) if sigma.ndim == 1 else sigma
    mass = mass.expand(points.shape[0], -1) if mass.ndim == 1 else mass
    c = (torch.arange(box, dtype=torch.float64) - box // 2) * pixel_size
    yy, xx = torch.meshgrid(c, c, indexing="ij")  # image [y, x]
    dx = xx - points[..., 0, None, None]
    dy = yy - points[..., 1, None, None]
    s2 = (sigma * sigma)[..., None, None]
    pdf = torch.exp(-(dx * dx + dy * dy) / (2 * s2)) / (2 * math.pi * s2)
    if truncate_sigmas is not None:
        reach = truncate_sigmas * sigma[..., None, None]
        pdf = pdf * (dx.abs() < reach) * (dy.abs() < reach)
    return (mass[..., None, None] * pdf * pixel_size**2).sum(1)


def random_points(batch, points, spread, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    xyz = torch.randn(batch, points, 3, generator=g, dtype=dtype) * spread
    sigma = 1.2 + torch.rand(points, generator=g, dtype=dtype)
    mass = 30 + 70 * torch.rand(points, generator=g, dtype=dtype)
    return xyz, sigma, mass


@pytest.mark.parametrize("box", [25, 26])
def test_matches_dense_reference(box, dtype):
    # spread 9 Å in a 25-26 px box of 1.1 Å: some Gaussians are cut by the box edges.
    xyz, sigma, mass = random_points(3, 12, 9.0)
    expected = dense_splat_reference(xyz, sigma, mass, box, 1.1)
    got = splat_gaussians(xyz.to(dtype), sigma.to(dtype), mass.to(dtype), box, 1.1)
    assert got.shape == (3, box, box) and got.dtype == dtype
    if dtype == torch.float64:
        truncated = dense_splat_reference(xyz, sigma, mass, box, 1.1, truncate_sigmas=6.0)
        torch.testing.assert_close(got, truncated, atol=1e-13 * truncated.abs().max().item(), rtol=0)
    # Truncation at 6σ changes values by < 1.5e-8 of a peak; float32 rounding by ~1e-6.
    scale = expected.abs().max()
    assert (got.double() - expected).abs().max() / scale < (2e-6 if dtype == torch.float32 else 2e-8)


@pytest.mark.parametrize("box", [72, 73])
def test_off_centre_cluster_inside_the_box(box):
    """Only the window the Gaussians reach is computed: different extents in x and y, all inside."""
    xyz, sigma, mass = random_points(2, 8, 1.5, seed=2)
    xyz[..., 1] *= 1.6
    xyz = xyz + torch.tensor([-6.0, 4.0, 0.0], dtype=torch.float64)
    expected = dense_splat_reference(xyz, sigma, mass, box, 0.8)
    got = splat_gaussians(xyz, sigma, mass, box, 0.8)
    torch.testing.assert_close(got, expected, atol=2e-8 * expected.abs().max().item(), rtol=0)
    # Against the same truncation, every pixel the Gaussians reach must be there.
    truncated = dense_splat_reference(xyz, sigma, mass, box, 0.8, truncate_sigmas=6.0)
    torch.testing.assert_close(got, truncated, atol=1e-13 * expected.abs().max().item(), rtol=0)
    for border in (got[:, :3], got[:, -3:], got[..., :3], got[..., -3:]):  # the window is inside
        assert border.abs().max() == 0


def test_per_particle_sigma_and_mass():
    xyz, sigma, mass = random_points(2, 6, 5.0)
    sigma_b = torch.stack([sigma, sigma * 1.3])
    mass_b = torch.stack([mass, mass * 0.5])
    got = splat_gaussians(xyz, sigma_b, mass_b, 30, 1.0)
    expected = dense_splat_reference(xyz, sigma_b, mass_b, 30, 1.0)
    torch.testing.assert_close(got, expected, atol=2e-8 * expected.abs().max().item(), rtol=0)


def test_gradcheck_positions_sigma_mass():
    xyz, sigma, mass = random_points(2, 4, 4.0, seed=3)
    xyz.requires_grad_(True)
    sigma.requires_grad_(True)
    mass.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p, s, m: splat_gaussians(p, s, m, 17, 0.9), (xyz, sigma, mass), fast_mode=True)
    sigma_b = (1.2 + torch.rand(2, 4, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p, s: splat_gaussians(p, s, mass.detach(), 16, 1.0), (xyz, sigma_b), fast_mode=True)


def test_gradients_match_reference_under_random_upstream_gradient():
    xyz, sigma, mass = random_points(3, 10, 6.0, seed=5)
    upstream = torch.randn(3, 28, 28, dtype=torch.float64)
    grads = []
    for render in (splat_gaussians, dense_splat_reference):
        leaves = [t.clone().requires_grad_(True) for t in (xyz, sigma, mass)]
        (render(*leaves, 28, 1.2) * upstream).sum().backward()
        grads.append([t.grad for t in leaves])
    for fast, slow in zip(*grads):
        torch.testing.assert_close(fast, slow, atol=1e-6 * slow.abs().max().item(), rtol=0)
    assert grads[0][0][..., 2].abs().max() == 0  # z does not enter a projection


def test_float32_gradients_agree_with_float64():
    xyz, sigma, mass = random_points(2, 30, 6.0, seed=7)
    upstream = torch.randn(2, 40, 40, dtype=torch.float64)
    grads = {}
    for dtype in (torch.float32, torch.float64):
        p = xyz.to(dtype).requires_grad_(True)
        (splat_gaussians(p, sigma.to(dtype), mass.to(dtype), 40, 1.0) * upstream.to(dtype)).sum().backward()
        grads[dtype] = p.grad.double()
    ref = grads[torch.float64]
    assert (grads[torch.float32] - ref).abs().max() < 1e-4 * ref.abs().max()


@pytest.mark.parametrize("box", [64, 65])
def test_large_box_integrates_to_total_electrons(box, dtype):
    xyz, sigma, mass = random_points(4, 50, 5.0)
    image = splat_gaussians(xyz.to(dtype), sigma.to(dtype), mass.to(dtype), box, 1.0)
    # 6σ truncation removes 2 erfc(6/√2) = 4e-9 of each Gaussian; float32 summation adds ~1e-7.
    rel = (image.double().sum((-2, -1)) / mass.sum() - 1).abs().max()
    assert rel < (1e-6 if dtype == torch.float32 else 1e-8)


@pytest.mark.parametrize("box", [31, 32])
def test_centroid_of_one_gaussian_is_its_position(box):
    g = torch.Generator().manual_seed(1)
    pixel = 1.1
    xy = (torch.rand(20, 1, 2, generator=g, dtype=torch.float64) - 0.5) * 8 * pixel  # sub-pixel positions
    image = splat_gaussians(xy, torch.tensor([1.5 * pixel], dtype=torch.float64), torch.tensor([50.0], dtype=torch.float64), box, pixel)
    c = (torch.arange(box, dtype=torch.float64) - box // 2) * pixel
    total = image.sum((-2, -1))
    centroid_x = (image.sum(-2) * c).sum(-1) / total
    centroid_y = (image.sum(-1) * c).sum(-1) / total
    assert (centroid_x - xy[:, 0, 0]).abs().max() / pixel < 0.01
    assert (centroid_y - xy[:, 0, 1]).abs().max() / pixel < 0.01


def test_no_subnormal_values_even_far_from_the_gaussians():
    xyz, sigma, mass = random_points(2, 20, 3.0, dtype=torch.float32)
    image = splat_gaussians(xyz, sigma, mass, 200, 1.0)
    tiny = torch.finfo(torch.float32).tiny
    assert not ((image != 0) & (image.abs() < tiny)).any()
    assert image[:, :5, :].abs().max() == 0  # beyond 6σ: exactly zero


def test_points_outside_the_box_render_nothing_but_keep_the_graph():
    xyz = torch.tensor([[[500.0, 0.0, 0.0], [0.0, -500.0, 0.0]]], dtype=torch.float64, requires_grad=True)
    image = splat_gaussians(xyz, torch.tensor([1.5, 1.5], dtype=torch.float64), torch.tensor([40.0, 40.0], dtype=torch.float64), 20, 1.0)
    assert image.abs().max() == 0
    image.sum().backward()
    assert xyz.grad.abs().max() == 0


def test_empty_clouds_render_zero_images():
    assert splat_gaussians(torch.zeros(2, 0, 3), torch.zeros(0), torch.zeros(0), 8, 1.0).shape == (2, 8, 8)
    assert splat_gaussians(torch.zeros(0, 3, 3), torch.ones(3), torch.ones(3), 8, 1.0).shape == (0, 8, 8)


def test_bad_input_raises_one_line_errors():
    xyz, sigma, mass = random_points(2, 5, 3.0)
    with pytest.raises(InputError, match="points_angstrom"):
        splat_gaussians(xyz[0], sigma, mass, 16, 1.0)
    with pytest.raises(InputError, match="sigma_angstrom"):
        splat_gaussians(xyz, sigma[:3], mass, 16, 1.0)
    with pytest.raises(InputError, match="mass_electrons"):
        splat_gaussians(xyz, sigma, torch.ones(3, 5), 16, 1.0)
    with pytest.raises(InputError, match="pixel_size_angstrom"):
        splat_gaussians(xyz, sigma, mass, 16, 0.0)

"""The differentiable projector: isotropic Gaussians splatted onto the pixel grid (paper appendix B, eqs. 2-3).

Each point i (a residue) at image-plane position ``(x_i, y_i)`` (Å, already moved by the pose,
eq. 2; z is dropped: projection along the optical axis) with standard deviation ``σ_i`` (Å) and
``m_i`` electrons contributes the 2-D normal pdf of eq. 3 times its mass.

Pixel value: **electrons per pixel**, the pdf evaluated at the pixel centre times the pixel area::

    I[b, row, col] = Σ_i  m_i p² / (2π σ_i²) · exp(-(y_row - y_i)² / 2σ_i²) · exp(-(x_col - x_i)² / 2σ_i²)

with ``x_col = (col - D // 2) · p`` (:mod:`cryogeom.imaging.grid`). Point sampling (rather than the
pdf integrated over each pixel with erf) is eq. 3 as written, and it is what a Fourier-cropped
(downsampled) image approximates: integrating over the pixel would multiply the spectrum by a
``sinc(k p)`` that Fourier cropping of the data does not apply. The sum over a large box equals
``Σ m_i`` up to aliasing, ``~2 exp(-2π² σ² / p²)`` relative (1e-17 at σ = 1.4 Å, p = 1 Å; 6e-5 at
p = 2 Å); :class:`cryogeom.imaging.forward.ForwardModel` can oversample to remove it.

Speed and memory: the Gaussian is separable, so the image of a batch is the batched matrix
product ``gyᵀ · diag(a) · gx`` of 1-D profiles ``gx, gy [B, M, W]``: memory O(B·M·D), never
O(B·M·D²). A custom :class:`torch.autograd.Function` computes the gradients with two more batched
products (faster and leaner than autograd through the elementwise chain;
``benchmarks/bench_projector.py`` compares them). Only the rectangle of pixels that the Gaussians of the batch
reach is computed; the rest of the box is zero-padded (finding the rectangle reads two numbers
back to the host: one synchronisation per call on a GPU). For large proteins and batches
(``B · M · W`` above :data:`MAX_PROFILE_ELEMENTS`) the points are splatted in chunks and their
profiles recomputed in the backward pass, so memory stays O(B·W² + MAX_PROFILE_ELEMENTS).

Truncation (no denormals): each 1-D profile is ``exp(-z²/2)`` for ``|z| < k`` and exactly 0
beyond, with ``z = (x_col - x_i)/σ_i`` and ``k = truncate_sigmas`` (default 6). The argument of
``exp`` is clamped at ``-k²/2`` first, so ``exp`` never underflows into the subnormal floats that
slow the render on CPUs, and no global ``torch.set_flush_denormal`` is needed. At k = 6
the profile jumps by ``exp(-18) = 1.5e-8`` of its peak at the cut and loses ``erfc(6/√2) = 2e-9``
of its mass: below float32 resolution. The hand-written gradient is the exact derivative of the
truncated profile (zero beyond the cut).
"""

from __future__ import annotations

import math
import numbers

import torch

from cryogeom.errors import require
from cryogeom.imaging.grid import center_index

DEFAULT_TRUNCATE_SIGMAS = 6.0

MAX_PROFILE_ELEMENTS = 1 << 24
"""Above this many profile values ``B · M · (Wx + Wy)`` (64 MB in float32) the splat works through the
points in chunks of at most this many values and recomputes the profiles in the backward pass, so
that its memory stays bounded for large proteins and batches (e.g. N = 10,000 residues)."""


def _standardised(coords: torch.Tensor, centre: torch.Tensor, inv_sigma: torch.Tensor) -> torch.Tensor:
    """``z [B, M, W] = (coords[W] - centre[B, M]) / σ``."""
    return (coords - centre.unsqueeze(-1)).mul_(inv_sigma.unsqueeze(-1))


def _truncated_gaussian(z: torch.Tensor, cut: float) -> torch.Tensor:
    """``exp(-z²/2)`` where ``z²/2 < cut``, else exactly 0; ``exp`` never underflows."""
    g = torch.square(z).mul_(-0.5).clamp_min_(-cut).exp_()
    # Clamped entries hold exp(-cut); the margin absorbs a last-bit difference of exp's kernels.
    return torch.nn.functional.threshold_(g, math.exp(-cut) * (1 + 1e-4), 0.0)


def _profiles(x, y, inv_sigma, coords_x, coords_y, cut):
    """Truncated 1-D Gaussian profiles ``gx [B, M, Wx]``, ``gy [B, M, Wy]`` of points ``x, y [B, M]``."""
    return (_truncated_gaussian(_standardised(coords_x, x, inv_sigma), cut),
            _truncated_gaussian(_standardised(coords_y, y, inv_sigma), cut))


def _point_chunks(n_points: int, chunk_points: int | None):
    step = n_points if chunk_points is None else max(1, min(int(chunk_points), n_points))
    return [slice(m0, m0 + step) for m0 in range(0, n_points, step)]


class _SeparableSplat(torch.autograd.Function):
    """``image [B, Wy, Wx] = Σ_m amp · gy[b, m, :]ᵀ gx[b, m, :]`` with hand-written gradients.

    Inputs: ``x, y [B, M]`` (Å), ``sigma, amp [B or 1, M]`` (Å, electrons per pixel at the
    peak), ``coords_x [Wx]``, ``coords_y [Wy]`` (Å), ``cut = k²/2``, ``chunk_points``: None keeps
    the profiles ``gx, gy`` for the backward pass (memory O(B·M·W)); an integer works through the
    points in chunks of that many and recomputes the profiles in the backward pass (memory
    O(B·chunk·W): bounded for any number of points, at the cost of a second ``exp``).
    """

    @staticmethod
    def forward(ctx, x, y, sigma, amp, coords_x, coords_y, cut, chunk_points):
        inv_sigma = sigma.reciprocal()
        ctx.cut, ctx.chunk_points = cut, chunk_points
        if chunk_points is None:
            gx, gy = _profiles(x, y, inv_sigma, coords_x, coords_y, cut)
            image = torch.bmm(gy.transpose(1, 2), gx * amp.unsqueeze(-1))
            ctx.save_for_backward(x, y, sigma, amp, coords_x, coords_y, gx, gy)
            return image
        image = x.new_zeros(x.shape[0], len(coords_y), len(coords_x))
        for part in _point_chunks(x.shape[1], chunk_points):
            gx, gy = _profiles(x[:, part], y[:, part], inv_sigma[:, part], coords_x, coords_y, cut)
            image.baddbmm_(gy.transpose(1, 2), gx.mul_(amp[:, part].unsqueeze(-1)))
        ctx.save_for_backward(x, y, sigma, amp, coords_x, coords_y)
        return image

    @staticmethod
    def backward(ctx, grad_image):
        x, y, sigma, amp, coords_x, coords_y, *saved = ctx.saved_tensors
        needs = ctx.needs_input_grad[:4]
        inv_sigma = sigma.reciprocal()
        if ctx.chunk_points is None:
            grads = _splat_grads(grad_image, x, y, inv_sigma, amp, coords_x, coords_y, *saved, needs)
        else:
            parts = []
            for part in _point_chunks(x.shape[1], ctx.chunk_points):
                xp, yp, isp, ap = x[:, part], y[:, part], inv_sigma[:, part], amp[:, part]
                gx, gy = _profiles(xp, yp, isp, coords_x, coords_y, ctx.cut)
                parts.append(_splat_grads(grad_image, xp, yp, isp, ap, coords_x, coords_y, gx, gy, needs))
            grads = [None if g[0] is None else torch.cat(g, dim=1) for g in zip(*parts)]
        grad_x, grad_y, grad_sigma, grad_amp = grads
        if grad_sigma is not None and sigma.shape[0] != grad_sigma.shape[0]:
            grad_sigma = grad_sigma.sum(0, keepdim=True)
        if grad_amp is not None and amp.shape[0] != grad_amp.shape[0]:
            grad_amp = grad_amp.sum(0, keepdim=True)
        return grad_x, grad_y, grad_sigma, grad_amp, None, None, None, None


def _splat_grads(grad_image, x, y, inv_sigma, amp, coords_x, coords_y, gx, gy, needs):
    """dL/d(x, y, σ, amp) [B, M] (None where not needed) of the splat of points with profiles gx, gy."""
    need_x, need_y, need_sigma, need_amp = needs
    a = amp.unsqueeze(-1)
    grad_x = grad_y = grad_sigma = grad_amp = None
    # dL/dgx[b,m,j] = amp Σ_i gy[b,m,i] G[b,i,j];  dL/dgy[b,m,i] = amp Σ_j G[b,i,j] gx[b,m,j].
    u = torch.bmm(gy, grad_image)  # [B, M, Wx], without the factor amp
    if need_amp:
        grad_amp = (u * gx).sum(-1)
    if need_x or need_y or need_sigma:
        v = torch.bmm(gx, grad_image.transpose(1, 2)).mul_(a)  # [B, M, Wy]
        u.mul_(a)

        def shape_terms(upstream, coords, centre, g):
            # d g / d centre = g z / σ and d g / d σ = g z² / σ (0 beyond the cut, where g = 0).
            z = _standardised(coords, centre, inv_sigma)
            w = upstream.mul_(g).mul_(z)
            d_centre = w.sum(-1).mul_(inv_sigma) if (need_x or need_y) else None
            d_sigma = w.mul_(z).sum(-1).mul_(inv_sigma) if need_sigma else None
            return d_centre, d_sigma

        dx, dsx = shape_terms(u, coords_x, x, gx)
        dy, dsy = shape_terms(v, coords_y, y, gy)
        grad_x = dx if need_x else None
        grad_y = dy if need_y else None
        if need_sigma:
            grad_sigma = dsx + dsy
    return grad_x, grad_y, grad_sigma, grad_amp


def _per_point(values, name: str, batch: int, points: int, like: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(values, dtype=like.dtype, device=like.device)
    if t.ndim == 1:
        t = t.unsqueeze(0)
    require(
        t.ndim == 2 and t.shape[-1] == points and t.shape[0] in (1, batch),
        f"{name}: expected shape [M] or [B, M] with M = {points}, B = {batch}, got {tuple(t.shape)}",
    )
    return t


def _support_window(xy: torch.Tensor, reach: torch.Tensor, box: int, origin: int, pixel_size: float) -> tuple[int, int, int, int]:
    """Pixel ranges ``x0, x1, y0, y1`` (half-open) of the box that any Gaussian reaches (one host sync)."""
    with torch.no_grad():
        low = (xy - reach.unsqueeze(-1)).amin(dim=(0, 1))
        high = (xy + reach.unsqueeze(-1)).amax(dim=(0, 1))
        bounds = torch.cat([low, high]).div_(pixel_size).add_(origin).tolist()
    if not all(math.isfinite(b) for b in bounds):
        return 0, box, 0, box  # let NaN/inf propagate through the full computation
    (x_low, y_low, x_high, y_high) = bounds
    x0 = max(0, min(box, math.floor(x_low)))
    y0 = max(0, min(box, math.floor(y_low)))
    return x0, max(x0, min(box, math.ceil(x_high) + 1)), y0, max(y0, min(box, math.ceil(y_high) + 1))


def splat_gaussians(
    points_angstrom: torch.Tensor,
    sigma_angstrom: torch.Tensor,
    mass_electrons: torch.Tensor,
    box: int,
    pixel_size_angstrom: float,
    *,
    truncate_sigmas: float = DEFAULT_TRUNCATE_SIGMAS,
    centre_index: int | None = None,
    max_profile_elements: int = MAX_PROFILE_ELEMENTS,
) -> torch.Tensor:
    """Render Gaussians as electrons per pixel: ``[B, M, 2 or 3]`` → ``[B, box, box]`` (paper eq. 3).

    ``points_angstrom``: positions in the microscope frame (Å; x, y used, z ignored).
    ``sigma_angstrom``, ``mass_electrons``: per point, ``[M]`` or ``[B, M]`` (Å, electrons).
    ``pixel_size_angstrom``: p (Å). The image is indexed ``[y, x]``; the coordinate origin is
    pixel ``centre_index`` (default ``box // 2``, the package convention).
    Differentiable in positions, σ and mass; the output dtype and device follow the points.
    Memory: the 1-D profiles take ``B · M · (Wx + Wy)`` values (W: the window's width in pixels);
    above ``max_profile_elements`` the points are splatted in chunks that stay under it (same
    result, profiles recomputed in the backward pass).
    """
    require(isinstance(box, numbers.Integral) and box >= 1, f"splat_gaussians: box must be a positive integer, got {box!r}")
    box = int(box)
    require(float(pixel_size_angstrom) > 0, f"splat_gaussians: pixel_size_angstrom must be positive, got {pixel_size_angstrom}")
    require(truncate_sigmas >= 3, f"splat_gaussians: truncate_sigmas must be >= 3, got {truncate_sigmas}")
    require(
        points_angstrom.ndim == 3 and points_angstrom.shape[-1] in (2, 3),
        f"splat_gaussians: points_angstrom must be [B, M, 2 or 3], got {tuple(points_angstrom.shape)}",
    )
    batch, points = points_angstrom.shape[:2]
    pixel = float(pixel_size_angstrom)
    origin = center_index(box) if centre_index is None else int(centre_index)
    sigma = _per_point(sigma_angstrom, "sigma_angstrom", batch, points, points_angstrom)
    mass = _per_point(mass_electrons, "mass_electrons", batch, points, points_angstrom)
    if batch == 0 or points == 0:
        return points_angstrom.new_zeros(batch, box, box) + 0.0 * points_angstrom.sum()  # keeps the graph
    x0, x1, y0, y1 = _support_window(points_angstrom[..., :2].detach(), sigma.detach() * truncate_sigmas, box, origin, pixel)
    if x1 == x0 or y1 == y0:
        return points_angstrom.new_zeros(batch, box, box) + 0.0 * points_angstrom.sum()
    x = points_angstrom[..., 0]
    y = points_angstrom[..., 1]
    kwargs = dict(dtype=points_angstrom.dtype, device=points_angstrom.device)
    coords_x = (torch.arange(x0, x1, **kwargs) - origin) * pixel
    coords_y = (torch.arange(y0, y1, **kwargs) - origin) * pixel
    amp = mass * (pixel * pixel / (2.0 * math.pi)) / (sigma * sigma)  # electrons per pixel at the peak
    per_point = batch * (len(coords_x) + len(coords_y))
    chunk = None if per_point * points <= max_profile_elements else max(1, max_profile_elements // per_point)
    window = _SeparableSplat.apply(x.contiguous(), y.contiguous(), sigma, amp, coords_x, coords_y, 0.5 * truncate_sigmas**2, chunk)
    if (x0, x1, y0, y1) == (0, box, 0, box):
        return window
    return torch.nn.functional.pad(window, (x0, box - x1, y0, box - y1))


__all__ = ["DEFAULT_TRUNCATE_SIGMAS", "MAX_PROFILE_ELEMENTS", "splat_gaussians"]

"""All-atom projection in real space: the band-limited projected potential of posed atoms on a pixel grid.

The simulator computes the same image in Fourier space, faster and independent of how narrow the
atoms are (:mod:`cryogeom.simulate.fourier_projection`); this module keeps the direct float64
reference both are checked against
(:func:`project_atoms_reference`) and the real-space splatting (:func:`project_atoms`), an
independent second method for the tests.

What is computed
----------------
Each atom is a sum of normalised 2-D Gaussians (:func:`~cryogeom.physics.scattering.
projected_potential_gaussians`), so the projected potential of posed atoms at image positions
``(x_a, y_a)`` is ``V_z(x, y) = Σ_a Σ_t w_at N(x - x_a, y - y_a; σ_at)`` (V·Å). The image returned is
that function **band-limited to the pixel grid** (frequencies |q_x|, |q_y| < 1/(2·pixel); the
Nyquist row and column of an even box are left out, so the image is real and symmetric) and sampled
at the pixel centres, on a periodic canvas of ``box`` pixels whose centre is pixel ``box // 2``
(:mod:`cryogeom.imaging.grid`). Its discrete Fourier transform is therefore exactly
``F[V_z](q) / pixel²`` at the kept frequencies — what a continuous image followed by an ideal
anti-aliasing filter and a CTF applied on the grid (paper eq. 4) sees.

How (and why this way)
----------------------
A direct Fourier sum ``Σ_atoms F_a(q) exp(-2πi q·r_a)`` is O(A·D²) complex exponentials per image
(far too slow for data sets of tens of thousands of images) — it is kept as
the float64 reference (:func:`project_atoms_reference`). The fast path splats each Gaussian term
separably on a grid ``oversample`` times finer: the 1-D integral of each Gaussian over each fine
pixel is a difference of ``erf`` at the pixel edges (exact for any width, including the
0.05 Å-wide inner terms of the scattering factors), the image is the matrix product
``Σ_t w_t g_y[t] ⊗ g_x[t]`` (GEMMs, no scatter; terms sorted by x so that each chunk only
touches the columns within 8 σ of its Gaussians), and the fine image is Fourier-cropped
to the output band. The fine pixels' box filter is divided out in the kept band (sinc), so the
only error left is aliasing of frequencies above ``oversample/(2·pixel)`` into the band, which
decays like the scattering factor there; with ``oversample = 2`` and the default image
B-factor it is < 1e-3 of the image (tests check it against the reference). Cost:
O(A·5·(k·D)²) flops of GEMM and O(A·5·k·D) erf per image.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from cryogeom.errors import InputError


def oversample_for(b_total_angstrom2: float, pixel_size_angstrom: float) -> int:
    """Oversampling of :func:`project_atoms` that keeps aliasing below ~1e-4 of the image (measured
    in the tests): 2 if the total B-factor is >= 10 pixel², 3 if >= 3 pixel², else 4."""
    b = b_total_angstrom2 / pixel_size_angstrom**2
    return 2 if b >= 10 else 3 if b >= 3 else 4


def _sinc_deconvolution(box: int, oversample: int, *, dtype, device) -> torch.Tensor:
    """1 / (sinc(q_y h) sinc(q_x h)) on the rfft2 layout of the output box (h = fine pixel / pixel)."""
    fy = torch.fft.fftfreq(box, dtype=torch.float64, device=device) / oversample
    fx = torch.fft.rfftfreq(box, dtype=torch.float64, device=device) / oversample
    return (1.0 / (torch.sinc(fy)[:, None] * torch.sinc(fx)[None, :])).to(dtype)


def _band_mask(box: int, *, dtype, device) -> torch.Tensor:
    """1 on the kept frequencies of the rfft2 layout, 0 on the Nyquist row/column of an even box."""
    mask = torch.ones(box, box // 2 + 1, dtype=dtype, device=device)
    if box % 2 == 0:
        mask[box // 2, :] = 0
        mask[:, box // 2] = 0
    return mask


def _erf_at_edges(centres: torch.Tensor, inv_width: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """``erf((edge - μ) / (√2 σ))`` [K, m + 1] for Gaussian centres [K] and ``1/(√2 σ)`` [K]."""
    return torch.erf(torch.addcmul((-centres * inv_width)[:, None], inv_width[:, None], edges[None, :]))


def project_atoms(
    positions_angstrom: torch.Tensor,
    weight: torch.Tensor,
    sigma_angstrom: torch.Tensor,
    box: int,
    pixel_size_angstrom: float,
    *,
    oversample: int = 2,
    chunk_terms: int = 1024,
) -> torch.Tensor:
    """Band-limited projected potential [B, box, box] (V·Å) of atoms at image positions.

    ``positions_angstrom`` [B, A, 2] are (x, y) in Å relative to pixel ``box // 2`` (e.g. from
    :func:`~cryogeom.imaging.rotations.pose_points`); ``weight`` [A, T] (V·Å³) and ``sigma_angstrom`` [A, T] (Å) describe each
    atom's projected potential as Gaussians (:func:`~cryogeom.physics.scattering.
    projected_potential_gaussians`). Computed in the dtype and on the device of
    ``positions_angstrom``. Atoms must lie inside the canvas: density beyond its edge is dropped.
    See the module docstring for the method and its accuracy.
    """
    if positions_angstrom.ndim != 3 or positions_angstrom.shape[-1] != 2:
        raise InputError(f"positions: expected a tensor [B, A, 2], got shape {tuple(positions_angstrom.shape)}")
    if int(oversample) != oversample or oversample < 1:
        raise InputError(f"oversample: expected an integer >= 1, got {oversample!r}")
    dtype, device = positions_angstrom.dtype, positions_angstrom.device
    weight = torch.as_tensor(weight, dtype=dtype, device=device)
    sigma = torch.as_tensor(sigma_angstrom, dtype=dtype, device=device)
    m = oversample * box
    h = pixel_size_angstrom / oversample
    # Fine pixel j is centred at x0 + j·h with x0 the first output pixel, so every oversample-th
    # fine pixel is an output pixel centre and the cropped transform samples the output grid.
    x0 = -(box // 2) * pixel_size_angstrom
    edges = x0 + (torch.arange(m + 1, dtype=dtype, device=device) - 0.5) * h
    # Per Gaussian term k (atom a, term t): ∫_pixel N = (erf(right) - erf(left)) / 2 per axis; the
    # two halves go into the weight, and the pixel mean divides by the fine pixel area h².
    w = (0.25 / (h * h)) * weight.reshape(-1)
    inv_width = (1.0 / (math.sqrt(2.0) * sigma)).reshape(-1)
    terms = sigma.shape[1]
    deconv = _sinc_deconvolution(box, oversample, dtype=dtype, device=device) * _band_mask(box, dtype=dtype, device=device)
    rows = torch.as_tensor(np.fft.fftfreq(box, 1.0 / box).astype(np.int64) % m, device=device)
    # Terms are sorted by x and taken in chunks: a chunk's x profiles are only evaluated (and
    # multiplied) over the columns its Gaussians reach (8 σ: the rest is < 1e-14 of the term), and
    # its [chunk, m] profiles stay in cache (memory traffic, not flops, bounds the element-wise work).
    chunk = max(1, chunk_terms // terms) * terms
    reach = 8.0 * float(sigma.max()) + h
    out = torch.empty(positions_angstrom.shape[0], box, box, dtype=dtype, device=device)
    for i, pos in enumerate(positions_angstrom):
        cx = pos[:, 0].repeat_interleave(terms)
        order = torch.argsort(cx)
        cx = cx[order]
        cy = pos[:, 1].repeat_interleave(terms)[order]
        wi, inv = w[order], inv_width[order]
        fine = torch.zeros(m, m, dtype=dtype, device=device)
        for s in range(0, cx.shape[0], chunk):
            part = slice(s, s + chunk)
            lo = min(max(int(math.floor((float(cx[s]) - reach - x0) / h)), 0), m)
            hi = max(min(int(math.ceil((float(cx[part][-1]) + reach - x0) / h)) + 1, m), lo)
            if hi == lo:
                continue  # the chunk lies wholly off the canvas
            ex = _erf_at_edges(cx[part], inv[part], edges[lo : hi + 1])
            ey = _erf_at_edges(cy[part], inv[part], edges)
            gx = ex[:, 1:] - ex[:, :-1]
            gy = (ey[:, 1:] - ey[:, :-1]) * wi[part, None]
            fine[:, lo:hi].addmm_(gy.T, gx)  # [m(y), window(x)]
        spectrum = torch.fft.rfft2(fine)[rows, : box // 2 + 1] * deconv
        out[i] = torch.fft.irfft2(spectrum, s=(box, box)) / oversample**2
    return out


def project_atoms_reference(
    positions_angstrom: np.ndarray,
    weight: np.ndarray,
    sigma_angstrom: np.ndarray,
    box: int,
    pixel_size_angstrom: float,
) -> np.ndarray:
    """Slow float64 reference of :func:`project_atoms` for one image: positions [A, 2] -> [box, box].

    The direct band-limited Fourier series of the analytic transform
    ``F[V_z](q) = Σ_a Σ_t w_at exp(-2π² σ_at² q²) exp(-2πi q·r_a)`` over the kept frequencies
    q = k / (box·pixel), evaluated at the pixel centres ``(j - box//2)·pixel``.
    """
    pos = np.asarray(positions_angstrom, dtype=np.float64).reshape(-1, 2)
    w = np.asarray(weight, dtype=np.float64).reshape(pos.shape[0], -1)
    s = np.asarray(sigma_angstrom, dtype=np.float64).reshape(pos.shape[0], -1)
    length = box * pixel_size_angstrom
    k = np.fft.fftfreq(box, 1.0 / box)
    if box % 2 == 0:
        k = k[k != -(box // 2)]  # drop the Nyquist frequency
    q = k / length  # [K]
    qy, qx = q[:, None], q[None, :]
    transform = np.zeros((q.size, q.size), dtype=np.complex128)
    for a in range(pos.shape[0]):
        phase = np.exp(-2j * np.pi * qy * pos[a, 1]) * np.exp(-2j * np.pi * qx * pos[a, 0])
        envelope = np.sum(w[a, :, None, None] * np.exp(-2 * np.pi**2 * s[a, :, None, None] ** 2 * (qy**2 + qx**2)[None]), axis=0)
        transform += envelope * phase
    x = (np.arange(box) - box // 2) * pixel_size_angstrom
    basis = np.exp(2j * np.pi * x[:, None] * q[None, :])  # [pixels, K]
    image = basis @ transform @ basis.T / length**2
    return image.real

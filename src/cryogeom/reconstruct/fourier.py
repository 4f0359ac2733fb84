"""Direct Fourier reconstruction of a map from particles with known poses and CTF.

For each particle the centred 2-D Fourier transform of its image, shifted back by its shift and
multiplied by its CTF, is inserted into a 3-D Fourier grid on the central slice of its pose
(Fourier slice theorem), and the CTF² into a second grid; the map is their ratio with a Tikhonov
(Wiener) term, ``V(k) = Σ c_i X_i(k) / (Σ c_i²(k) + λ)`` (as RELION's ``relion_reconstruct``
does with its 1/SNR term), transformed back to real space.

Conventions (:mod:`cryogeom.imaging.rotations`, :mod:`cryogeom.imaging.grid`): R moves the
atoms and the image is the projection along z of the moved density, so the image's transform at
``(kx, ky)`` samples the map's at ``Rᵀ (kx, ky, 0)``; an image is shifted by ``shift_angstrom``
(where the rotation centre lands), undone by the phase ``exp(+2πi k·s)``; the box centre is
voxel ``D // 2`` on each axis. A sample is spread to its 8 neighbouring voxels with trilinear
weights, into the numerator and the CTF² sums alike, so their ratio is a normalised interpolation
(no real-space gridding correction applies); only frequencies inside the Nyquist sphere are
inserted. Accumulation is in float64 and bounded in memory (two
complex and one real D³ grid per half map, whatever the number of particles).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from cryogeom.imaging.ctf import CTFParams, ctf_at_frequencies


class FourierAccumulator:
    """Running sums ``Σ c X`` and ``Σ c²`` on a D³ Fourier grid (unshifted FFT layout)."""

    def __init__(self, box: int, pixel_size_angstrom: float):
        self.box, self.pixel = int(box), float(pixel_size_angstrom)
        n = self.box**3
        self.num_re = torch.zeros(n, dtype=torch.float64)
        self.num_im = torch.zeros(n, dtype=torch.float64)
        self.den = torch.zeros(n, dtype=torch.float64)
        self.n_particles = 0
        f = torch.fft.fftfreq(self.box, dtype=torch.float64) * self.box  # frequency index, unshifted
        ky, kx = torch.meshgrid(f, f, indexing="ij")
        inside = kx**2 + ky**2 < (self.box / 2) ** 2
        self._kx, self._ky = kx[inside], ky[inside]  # [P] the 2-D frequencies inserted
        self._mask = inside

    def add(self, images: torch.Tensor, rotations: torch.Tensor, shifts_angstrom: torch.Tensor, ctf: CTFParams) -> None:
        """Insert ``images`` [B, D, D] at ``rotations`` [B, 3, 3] and ``shifts_angstrom`` [B, 2],
        with their CTF. Images follow the forward model's contrast (CTF ⊛ density, protein dark
        at low frequency); negate RELION's inverted images first."""
        d, pixel = self.box, self.pixel
        images = images.to(torch.float64)
        spectrum = torch.fft.fft2(torch.fft.ifftshift(images, dim=(-2, -1)))[:, self._mask]  # origin at D // 2
        kx, ky = self._kx, self._ky
        kxa, kya = kx / (d * pixel), ky / (d * pixel)  # 1/Å
        s = shifts_angstrom.to(torch.float64)
        phase = 2 * math.pi * (kxa[None] * s[:, :1] + kya[None] * s[:, 1:2])
        spectrum = spectrum * torch.polar(torch.ones_like(phase), phase)
        c = ctf_at_frequencies(ctf.to(torch.float64), kxa, kya)  # [B, P]
        values = spectrum * c
        weights = c * c
        # positions in the map's Fourier grid: Rᵀ (kx, ky, 0), in frequency-index units
        r = rotations.to(torch.float64)
        points = kx[None, :, None] * r[:, 0, None, :] + ky[None, :, None] * r[:, 1, None, :]  # [B, P, 3] (x, y, z)
        self._splat(points.reshape(-1, 3), values.reshape(-1), weights.reshape(-1))
        self.n_particles += len(images)

    def _splat(self, points: torch.Tensor, values: torch.Tensor, weights: torch.Tensor) -> None:
        d = self.box
        base = torch.floor(points)
        frac = points - base
        base = base.to(torch.int64)
        for corner in range(8):
            o = torch.tensor([(corner >> 0) & 1, (corner >> 1) & 1, (corner >> 2) & 1], dtype=torch.int64)
            w = torch.where(o.bool(), frac, 1 - frac).prod(dim=1)
            ix, iy, iz = ((base + o) % d).unbind(1)
            flat = (iz * d + iy) * d + ix  # grid [z, y, x]
            self.num_re.index_add_(0, flat, w * values.real)
            self.num_im.index_add_(0, flat, w * values.imag)
            self.den.index_add_(0, flat, w * weights)

    def merged(self, other: "FourierAccumulator") -> "FourierAccumulator":
        out = FourierAccumulator(self.box, self.pixel)
        for name in ("num_re", "num_im", "den"):
            setattr(out, name, getattr(self, name) + getattr(other, name))
        out.n_particles = self.n_particles + other.n_particles
        return out

    def volume(self, tikhonov: float = 1e-2) -> np.ndarray:
        """The map [D, D, D] (z, y, x) in real space, centre voxel D // 2, float32.

        ``tikhonov`` λ is relative to the mean CTF² weight of the filled voxels."""
        d = self.box
        filled = self.den > 0
        lam = tikhonov * float(self.den[filled].mean()) if bool(filled.any()) else 1.0
        spectrum = torch.complex(self.num_re, self.num_im) / (self.den + lam)
        grid = spectrum.reshape(d, d, d)
        f = torch.fft.fftfreq(d, dtype=torch.float64) * d
        kz, ky, kx = torch.meshgrid(f, f, f, indexing="ij")
        grid = torch.where(kx**2 + ky**2 + kz**2 < (d / 2) ** 2, grid, torch.zeros((), dtype=grid.dtype))
        vol = torch.fft.fftshift(torch.fft.ifftn(grid).real)

        return vol.numpy().astype(np.float32)


def fourier_shell_correlation(a: np.ndarray, b: np.ndarray, pixel_size_angstrom: float) -> tuple[np.ndarray, np.ndarray]:
    """(spatial frequency [S] in 1/Å, FSC [S]) of two maps [D, D, D], one shell per Fourier pixel."""
    d = a.shape[0]
    fa, fb = np.fft.fftn(a), np.fft.fftn(b)
    f = np.fft.fftfreq(d) * d
    kz, ky, kx = np.meshgrid(f, f, f, indexing="ij")
    shell = np.rint(np.sqrt(kx**2 + ky**2 + kz**2)).astype(np.int64).reshape(-1)
    n = d // 2
    keep = shell < n
    cross = np.bincount(shell[keep], weights=(fa * np.conj(fb)).real.reshape(-1)[keep], minlength=n)
    pa = np.bincount(shell[keep], weights=(np.abs(fa) ** 2).reshape(-1)[keep], minlength=n)
    pb = np.bincount(shell[keep], weights=(np.abs(fb) ** 2).reshape(-1)[keep], minlength=n)
    fsc = cross / np.sqrt(np.maximum(pa * pb, 1e-300))
    return np.arange(n) / (d * pixel_size_angstrom), fsc


def resolution_at(frequencies: np.ndarray, fsc: np.ndarray, threshold: float = 0.143) -> float:
    """The resolution (Å) where the FSC first falls below ``threshold`` (linear interpolation);
    the Nyquist resolution if it never does, infinity if it starts below."""
    below = np.flatnonzero(fsc[1:] < threshold) + 1
    if not len(below):
        return float(1 / frequencies[-1]) if frequencies[-1] > 0 else math.inf
    i = int(below[0])
    f0, f1, c0, c1 = frequencies[i - 1], frequencies[i], fsc[i - 1], fsc[i]
    f = f0 + (c0 - threshold) / (c0 - c1) * (f1 - f0) if c0 != c1 else f1
    return float(1 / f) if f > 0 else math.inf

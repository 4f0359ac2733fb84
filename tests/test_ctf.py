"""The CTF (paper appendix D, eqs. 7-11): physics properties and a literal float64 reference."""

import math

import numpy as np
import pytest
import torch
from conftest import tol

from cryogeom.errors import InputError
from cryogeom.imaging.ctf import (
    CTFParams,
    ctf_at_frequencies,
    ctf_fft2,
    ctf_point_spread_radius_angstrom,
    ctf_rfft2,
    electron_wavelength_angstrom,
)


def literal_ctf(params: CTFParams, kx, ky):
    """Eqs. 7-11 written out literally in float64 NumPy, with α_g = atan2(ky, kx)."""
    out = []
    for b in range(params.batch_size):
        get = lambda name: float(getattr(params, name).reshape(-1)[b if getattr(params, name).numel() > 1 else 0])  # noqa: E731
        volts = get("voltage_kv") * 1e3
        lam = 12.2639 / math.sqrt(volts + 0.97845e-6 * volts**2)
        f1, f2 = get("defocus_u_angstrom"), get("defocus_v_angstrom")
        alpha_ast = math.radians(get("astigmatism_angle_deg"))
        cs = get("cs_mm") * 1e7
        w = get("amplitude_contrast")
        g2 = kx**2 + ky**2
        alpha_g = np.arctan2(ky, kx)
        f = 0.5 * (f1 + f2 + (f1 - f2) * np.cos(2 * (alpha_g - alpha_ast)))
        chi = np.pi * lam * g2 * (f - 0.5 * lam**2 * g2 * cs) + np.arctan(w / np.sqrt(1 - w**2)) + math.radians(get("phase_shift_deg"))
        out.append(-np.sin(chi))
    return np.stack(out)


def random_params(batch, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(batch, generator=g, dtype=dtype)  # noqa: E731
    return CTFParams(
        defocus_u_angstrom=u(5000, 30000),
        defocus_v_angstrom=u(5000, 30000),
        astigmatism_angle_deg=u(-180, 180),
        voltage_kv=u(100, 300),
        cs_mm=u(0, 3),
        amplitude_contrast=u(0, 0.2),
        phase_shift_deg=u(0, 120),
    )


def test_wavelength_300kv_and_200kv():
    assert electron_wavelength_angstrom(300.0).item() == pytest.approx(0.019687, abs=2e-6)
    assert electron_wavelength_angstrom(200.0).item() == pytest.approx(0.025079, abs=2e-6)


@pytest.mark.parametrize("box", [31, 32])
def test_rfft2_matches_literal_equations(box, dtype):
    params = random_params(4).to(dtype)
    pixel = 1.3
    ctf = ctf_rfft2(params, box, pixel)
    assert ctf.shape == (4, box, box // 2 + 1) and ctf.dtype == dtype
    ky = np.fft.fftfreq(box)[:, None] / pixel
    kx = np.fft.rfftfreq(box)[None, :] / pixel
    expected = literal_ctf(params.to(torch.float64), *np.broadcast_arrays(kx, ky))
    # float32: the phase reaches ~1000 rad in the corners (100 kV, 3 µm), whose float32 spacing
    # is 6e-5 rad: that, not the formula, limits the agreement.
    np.testing.assert_allclose(ctf.double().numpy(), expected, atol=3e-4 if dtype == torch.float32 else 1e-10)


def test_zero_frequency_is_minus_amplitude_contrast(dtype):
    w = torch.tensor([0.0, 0.06, 0.1, 0.5], dtype=dtype)
    params = CTFParams.from_values(defocus_u_angstrom=15000.0, defocus_v_angstrom=12000.0, amplitude_contrast=w, dtype=dtype)
    ctf = ctf_rfft2(params, 64, 1.0)
    torch.testing.assert_close(ctf[:, 0, 0], -w, atol=tol(dtype), rtol=0)
    # A 90° phase plate turns -sin(arcsin w) into -sin(arcsin w + π/2) = -sqrt(1 - w²).
    plate = CTFParams.from_values(defocus_u_angstrom=15000.0, amplitude_contrast=w, phase_shift_deg=90.0, dtype=dtype)
    torch.testing.assert_close(ctf_rfft2(plate, 64, 1.0)[:, 0, 0], -torch.sqrt(1 - w * w), atol=tol(dtype), rtol=0)


def test_magnitude_at_most_one_and_envelope_bounds_it():
    params = random_params(16)
    ctf = ctf_rfft2(params, 96, 0.8)
    assert ctf.abs().max() <= 1.0
    assert ctf.abs().max() > 0.999  # it does oscillate through ±1
    b = 80.0
    damped = ctf_rfft2(params, 96, 0.8, b_factor_angstrom2=b)
    ky, kx = np.fft.fftfreq(96)[:, None] / 0.8, np.fft.rfftfreq(96)[None, :] / 0.8
    envelope = torch.from_numpy(np.exp(-b * (kx**2 + ky**2) / 4))
    torch.testing.assert_close(damped, ctf * envelope)


def _zero_crossings(values, k):
    """Frequencies where ``values`` changes sign (linear interpolation between samples)."""
    idx = np.nonzero(np.sign(values[:-1]) != np.sign(values[1:]))[0]
    return k[idx] - values[idx] * (k[idx + 1] - k[idx]) / (values[idx + 1] - values[idx])


def test_zeros_without_cs_and_amplitude_contrast_follow_defocus():
    defocus = 20000.0
    params = CTFParams.from_values(defocus_u_angstrom=defocus, cs_mm=0.0, amplitude_contrast=0.0, dtype=torch.float64)
    lam = electron_wavelength_angstrom(300.0).item()
    k = torch.linspace(1e-4, 0.3, 200001, dtype=torch.float64)
    ctf = ctf_at_frequencies(params, k, torch.zeros_like(k))[0].numpy()
    crossings = _zero_crossings(ctf, k.numpy())
    n = np.arange(1, len(crossings) + 1)
    assert len(crossings) == 35  # k_n <= 0.3 / Å at λΔf = 394 Å²
    np.testing.assert_allclose(crossings, np.sqrt(n / (lam * defocus)), rtol=1e-6)


def test_underfocus_makes_low_frequencies_negative():
    k = torch.linspace(0, 0.02, 50, dtype=torch.float64)  # below the first zero at 2 µm
    under = ctf_at_frequencies(CTFParams.from_values(defocus_u_angstrom=20000.0, dtype=torch.float64), k, 0 * k)
    over = ctf_at_frequencies(CTFParams.from_values(defocus_u_angstrom=-20000.0, dtype=torch.float64), k, 0 * k)
    assert (under < 0).all()
    assert over[0, -1] > 0  # overfocus turns the first lobe positive once |χ| exceeds arcsin(w)


@pytest.mark.parametrize("angle_deg", [0.0, 35.0, 90.0, -120.0])
def test_astigmatism_zeros_follow_defocus_u_along_the_angle(angle_deg):
    fu, fv = 25000.0, 15000.0
    params = CTFParams.from_values(
        defocus_u_angstrom=fu, defocus_v_angstrom=fv, astigmatism_angle_deg=angle_deg, cs_mm=0.0, amplitude_contrast=0.0, dtype=torch.float64
    )
    lam = electron_wavelength_angstrom(300.0).item()
    k = torch.linspace(1e-4, 0.15, 100001, dtype=torch.float64)
    for direction, defocus in ((angle_deg, fu), (angle_deg + 90.0, fv)):
        a = math.radians(direction)
        ctf = ctf_at_frequencies(params, k * math.cos(a), k * math.sin(a))[0].numpy()
        crossings = _zero_crossings(ctf, k.numpy())
        n = np.arange(1, len(crossings) + 1)
        np.testing.assert_allclose(crossings, np.sqrt(n / (lam * defocus)), rtol=1e-5)


def test_grid_axes_x_is_last_axis():
    """Angle 0 puts defocus_u along kx (array axis -1); 90° puts it along ky (axis -2)."""
    fu, fv = 25000.0, 15000.0
    box, pixel = 128, 1.0
    k = torch.fft.rfftfreq(box, dtype=torch.float64) / pixel
    along_u = ctf_at_frequencies(CTFParams.from_values(defocus_u_angstrom=fu, dtype=torch.float64), k, 0 * k)[0]
    along_v = ctf_at_frequencies(CTFParams.from_values(defocus_u_angstrom=fv, dtype=torch.float64), k, 0 * k)[0]
    for angle, row_profile, col_profile in ((0.0, along_u, along_v), (90.0, along_v, along_u)):
        ctf = ctf_rfft2(CTFParams.from_values(defocus_u_angstrom=fu, defocus_v_angstrom=fv, astigmatism_angle_deg=angle, dtype=torch.float64), box, pixel)[0]
        torch.testing.assert_close(ctf[0, :], row_profile)  # ky = 0: the kx axis
        torch.testing.assert_close(ctf[: box // 2 + 1, 0], col_profile)  # kx = 0: the ky axis


@pytest.mark.parametrize("box", [15, 16])
def test_full_grid_is_even_and_extends_rfft2(box):
    params = random_params(3)
    full = ctf_fft2(params, box, 1.1)
    half = ctf_rfft2(params, box, 1.1)
    # Columns 0 .. ceil(box/2) - 1 are the same frequencies (rfftfreq's Nyquist column of an even
    # box is +1/2 where fftfreq has -1/2).
    torch.testing.assert_close(full[..., : (box + 1) // 2], half[..., : (box + 1) // 2])
    negated = torch.roll(torch.flip(full, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))  # k -> -k
    # An even box's Nyquist row/column maps to itself without changing sign: skip it there.
    inner = slice(None) if box % 2 else torch.arange(box) != box // 2
    torch.testing.assert_close(negated[:, inner][..., inner], full[:, inner][..., inner])


def test_per_particle_pixel_sizes():
    params = random_params(3)
    pixels = torch.tensor([0.9, 1.3, 2.0], dtype=torch.float64)
    batched = ctf_rfft2(params, 40, pixels)
    for b in range(3):
        torch.testing.assert_close(batched[b], ctf_rfft2(params[b : b + 1], 40, float(pixels[b]))[0])


def test_differentiable_in_defocus():
    params = random_params(2)
    params.defocus_u_angstrom.requires_grad_(True)
    k = torch.linspace(0.01, 0.2, 7, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda fu: ctf_at_frequencies(CTFParams(fu, *[getattr(params, n) for n in CTFParams.field_names()[1:]]), k, 0.5 * k), (params.defocus_u_angstrom,)
    )


def test_point_spread_radius():
    lam = electron_wavelength_angstrom(300.0).item()
    # Without Cs the displacement λ f k grows to the largest frequency.
    assert ctf_point_spread_radius_angstrom(20000.0, 300.0, 0.0, 0.5) == pytest.approx(lam * 20000 * 0.5, rel=1e-9)
    # With Cs it peaks where λ f = 3 Cs λ³ k², at (2/3) λ f k*.
    cs = 2.7e7
    k_star = math.sqrt(20000.0 / (3 * cs * lam**2))
    radius = ctf_point_spread_radius_angstrom(20000.0, 300.0, 2.7, 1.2 * k_star)
    assert radius == pytest.approx(2 / 3 * lam * 20000 * k_star, rel=1e-6)


def test_from_values_broadcasts_and_validate_rejects_bad_values():
    p = CTFParams.from_values(defocus_u_angstrom=[1e4, 2e4, 3e4], amplitude_contrast=0.07)
    assert p.batch_size == 3 and p.amplitude_contrast.shape == (3,)
    assert p.as_tensor().shape == (3, 7)
    assert CTFParams.from_values(defocus_u_angstrom=1e4, batch_size=5).batch_size == 5
    scalars = CTFParams(*(torch.tensor(v) for v in (1e4, 1e4, 0.0, 300.0, 2.7, 0.1, 0.0)))
    assert scalars.batch_size == 1 and ctf_rfft2(scalars, 8, 1.0).shape == (1, 8, 5)
    with pytest.raises(InputError, match="amplitude_contrast"):
        CTFParams.from_values(defocus_u_angstrom=1e4, amplitude_contrast=1.0).validate("particles.star")
    with pytest.raises(InputError, match="defocus_u_angstrom"):
        CTFParams.from_values(defocus_u_angstrom=float("nan")).validate()
    with pytest.raises(InputError, match="box"):
        ctf_rfft2(p, 0, 1.0)
    with pytest.raises(InputError, match="pixel_size_angstrom"):
        ctf_rfft2(p, 32, -1.0)

"""Electron scattering by atoms: scattering factors, the projected potential, the interaction constant.

Scattering factors
------------------
The elastic electron scattering factor of a neutral atom is Peng et al.'s (1996) five-Gaussian fit,
tabulated in International Tables for Crystallography vol. C, table 4.3.2.2 (gemmi ships it as
``gemmi.Element(symbol).c4322``)::

    f_e(s) = Σ_i a_i exp(-b_i s²)        f_e in Å, a_i in Å, b_i in Å², s = sin θ / λ = q / 2,

where q = |q| is the spatial frequency (1/Å) and 2θ the scattering angle. An isotropic
Debye-Waller (B) factor multiplies f_e by exp(-B s²), i.e. b_i → b_i + B.

From f_e to the potential (first Born approximation, non-relativistic rest mass m0 as in the table)
--------------------------------------------------------------------------------------------------
``f_e(q/2) = (2π m0 e / h²) ∫ V(r) exp(-2πi q·r) d³r``, so with the constant
``K = h² / (2π m0 e) = 47.878 V·Å²`` (:data:`POTENTIAL_PER_SCATTERING_VOLT_ANGSTROM2`, computed from
CODATA constants below) the 3-D Fourier transform of an atom's potential is ``K f_e(q/2)``
(V·Å³). By the projection-slice theorem the 2-D Fourier transform of the potential projected along
z, ``V_z(x, y) = ∫ V dz`` (V·Å), is the same function on the plane q_z = 0::

    F[V_z](q) = K Σ_i a_i exp(-b_i q² / 4).

Each term is the transform of a normalised 2-D Gaussian (``∫ exp(-α r²) e^{-2πi q·r} d²r =
(π/α) exp(-π² q²/α)`` with α = 4π²/b_i), so in real space::

    V_z(r) = K Σ_i a_i (4π / b_i) exp(-4π² r² / b_i)
           = Σ_i w_i N(r; σ_i),   w_i = K a_i (V·Å³),   σ_i² = b_i / (8π²) (Å²),

with ``N(r; σ) = exp(-r²/2σ²) / (2πσ²)``. The integral of the projected potential of one atom is
``∫ V_z d²r = K Σ a_i = K f_e(0)`` (V·Å³), which the tests check.

The interaction constant
------------------------
A phase object shifts the phase of the electron wave by ``φ = σ_e V_z`` with the relativistic
``σ_e = 2π γ m0 e λ / h²`` (rad / (V·Å)); ≈ 6.53e-4 at 300 kV (Kirkland, *Advanced Computing in
Electron Microscopy*, eq. 5.6), with the package's relativistic wavelength λ
(:func:`cryogeom.imaging.ctf.electron_wavelength_angstrom`).
"""

from __future__ import annotations

from functools import lru_cache

import gemmi
import numpy as np
from scipy import constants

from cryogeom.errors import InputError
from cryogeom.imaging.ctf import electron_wavelength_angstrom

#: K = h² / (2π m0 e) in V·Å²: turns a scattering factor (Å) into a potential transform (V·Å³).
POTENTIAL_PER_SCATTERING_VOLT_ANGSTROM2: float = (
    constants.h**2 / (2 * np.pi * constants.m_e * constants.e) * 1e20
)

#: Number of Gaussian terms in the Peng 1996 / ITC table 4.3.2.2 fit.
N_TERMS = 5


@lru_cache(maxsize=None)
def _coefficients(symbol: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    element = gemmi.Element(symbol)
    if element.atomic_number == 0 or symbol.strip() == "":
        raise InputError(f"atom element {symbol!r}: expected a chemical element symbol (H, C, N, O, S, ...)")
    coef = element.c4322
    a, b = tuple(float(x) for x in coef.a), tuple(float(x) for x in coef.b)
    if not any(a):
        raise InputError(f"atom element {symbol!r}: no electron scattering factor tabulated for it")
    return a, b


def scattering_coefficients(elements) -> tuple[np.ndarray, np.ndarray]:
    """Peng five-Gaussian coefficients for element symbols [A] -> ``(a [A, 5] Å, b [A, 5] Å²)``.

    Symbols are case-insensitive (``"C"``, ``"MG"``, ``"Mg"``); an unknown symbol raises
    :class:`~cryogeom.errors.InputError`.
    """
    symbols = [str(e).strip() for e in np.asarray(elements).reshape(-1)]
    unique = sorted(set(symbols))
    table = {s: _coefficients(s) for s in unique}
    a = np.array([table[s][0] for s in symbols], dtype=np.float64).reshape(-1, N_TERMS)
    b = np.array([table[s][1] for s in symbols], dtype=np.float64).reshape(-1, N_TERMS)
    return a, b


def electron_scattering_factor(elements, s_inv_angstrom, b_factor_angstrom2: float = 0.0) -> np.ndarray:
    """``f_e(s) exp(-B s²)`` in Å for elements [A] at ``s = sinθ/λ = q/2`` (1/Å, any shape) -> [A, ...]."""
    a, b = scattering_coefficients(elements)
    s2 = np.asarray(s_inv_angstrom, dtype=np.float64)[..., None] ** 2
    extra = (1,) * (s2.ndim - 1)
    a = a.reshape(a.shape[:1] + extra + (N_TERMS,))
    b = b.reshape(b.shape[:1] + extra + (N_TERMS,)) + b_factor_angstrom2
    return np.sum(a * np.exp(-b * s2), axis=-1)


def projected_potential_gaussians(elements, b_factor_angstrom2: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The projected potential of each atom as five normalised 2-D Gaussians.

    Returns ``(weight [A, 5] in V·Å³, sigma [A, 5] in Å)`` such that an atom at the origin has
    ``V_z(r) = Σ_i weight_i exp(-r²/2σ_i²) / (2π σ_i²)`` in V·Å (module docstring:
    ``w_i = K a_i``, ``σ_i² = (b_i + B) / 8π²``).
    """
    if not np.isfinite(b_factor_angstrom2) or b_factor_angstrom2 < 0:
        raise InputError(f"B-factor: expected a number >= 0 Å², got {b_factor_angstrom2!r}")
    a, b = scattering_coefficients(elements)
    weight = POTENTIAL_PER_SCATTERING_VOLT_ANGSTROM2 * a
    sigma = np.sqrt((b + b_factor_angstrom2) / (8 * np.pi**2))
    return weight, sigma


def projected_potential_atom(element: str, r_angstrom, b_factor_angstrom2: float = 0.0) -> np.ndarray:
    """The analytic projected potential ``V_z(r)`` (V·Å) of one atom at radial distance r (Å, any shape).

    ``V_z(r) = K Σ_i a_i (4π / b_i') exp(-4π² r² / b_i')`` with ``b_i' = b_i + B`` (module docstring).
    """
    a, b = scattering_coefficients([element])
    b = b[0] + b_factor_angstrom2
    r2 = np.asarray(r_angstrom, dtype=np.float64)[..., None] ** 2
    terms = a[0] * (4 * np.pi / b) * np.exp(-4 * np.pi**2 * r2 / b)
    return POTENTIAL_PER_SCATTERING_VOLT_ANGSTROM2 * terms.sum(axis=-1)


def interaction_constant(voltage_kv: float) -> float:
    """Relativistic interaction constant σ_e = 2π γ m0 e λ / h² in rad / (V·Å) (≈ 6.53e-4 at 300 kV)."""
    if not voltage_kv > 0:
        raise InputError(f"voltage: expected a positive number of kV, got {voltage_kv!r}")
    volts = voltage_kv * 1e3
    gamma = 1 + constants.e * volts / (constants.m_e * constants.c**2)
    wavelength_m = float(electron_wavelength_angstrom(voltage_kv)) * 1e-10
    sigma_per_volt_metre = 2 * np.pi * gamma * constants.m_e * constants.e * wavelength_m / constants.h**2
    return float(sigma_per_volt_metre * 1e-10)

"""Amorphous ice: the power spectrum of a slab of vitreous water, and its mean potential.

Model
-----
A slab of thickness t of water molecules (number density n) projects to a potential ``V_z`` whose
fluctuations have the power spectral density (kinematic scattering, molecules as rigid O + 2 H)::

    S_Vz(q) = t · n · K² · |f_H2O(q/2)|² · S(q)          [V²·Å⁴ = (V·Å)² per Å⁻² of frequency]

* ``K = h²/(2π m0 e)`` turns scattering factors into potential transforms
  (:mod:`cryogeom.physics.scattering`);
* ``|f_H2O(s)|²`` is the orientation-averaged molecular form factor (Debye formula) from the
  neutral-atom Peng factors of O and H: ``f_O² + 2 f_H² + 4 f_O f_H j0(2π q d_OH) +
  2 f_H² j0(2π q d_HH)``, ``j0(x) = sin x / x``, d_OH = 0.9572 Å, d_HH = 1.5139 Å;
* ``S(q)`` is the molecular structure factor of low-density amorphous ice, a phenomenological
  form that has its three known features: the suppressed long-wavelength density fluctuations
  of a nearly incompressible liquid (``S(0) = S0`` ≈ 0.05), the first diffraction peak at
  1/3.7 Å⁻¹ (the "ice ring" of cryo-EM power spectra, Q = 1.7 Å⁻¹), and ``S → 1`` at high q::

      S(q) = 1 - (1 - S0) exp(-(q / q_rise)²) + A exp(-(q - q_peak)² / (2 w²))

  with S0 = 0.05, q_rise = 0.2 Å⁻¹, q_peak = 1/3.7 Å⁻¹, w = 0.02 Å⁻¹ (FWHM ≈ 0.3 Å⁻¹ in Q) and
  A = 1.6 (peak S ≈ 2.4), all in :class:`IceModel`.

The simulator draws the phase field ``φ = σ_e V_z`` (:mod:`cryogeom.simulate.ice`) (:func:`~cryogeom.physics.scattering.interaction_constant`),
a stationary Gaussian random field (random phases, amplitudes from the spectrum) on the periodic
simulation canvas. Its mean (the uniform phase of the slab, which does not change a weak-phase
image apart from a uniform dimming) is left out. Not modelled: the fluctuations of the solvent
inside the molecule's volume (the field is not masked there; the mean potential the protein displaces
is subtracted by :mod:`cryogeom.physics.solvent`), inelastic scattering by the ice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cryogeom.physics.scattering import POTENTIAL_PER_SCATTERING_VOLT_ANGSTROM2, electron_scattering_factor

#: O-H bond length and H-H distance of a water molecule (Å).
WATER_OH_ANGSTROM = 0.9572
WATER_HH_ANGSTROM = 1.5139


@dataclass(frozen=True)
class IceModel:
    """Parameters of the amorphous-ice power spectrum (module docstring)."""

    thickness_angstrom: float = 300.0
    molecules_per_angstrom3: float = 0.0314  # low-density amorphous ice, 0.94 g/cm³
    s0: float = 0.05
    q_rise_per_angstrom: float = 0.2
    q_peak_per_angstrom: float = 1 / 3.7
    peak_width_per_angstrom: float = 0.02
    peak_height: float = 1.6

    def mean_potential_volt(self) -> float:
        """Mean inner potential of the ice (V): ``n K f_H2O(0)`` ≈ 4.6 V (measured for vitreous ice: 4.5 V)."""
        return float(self.molecules_per_angstrom3 * POTENTIAL_PER_SCATTERING_VOLT_ANGSTROM2 * np.sqrt(water_form_factor_squared(0.0)))

    def structure_factor(self, q_per_angstrom) -> np.ndarray:
        """S(q) of the molecules (dimensionless), q in 1/Å (any shape)."""
        q = np.asarray(q_per_angstrom, dtype=np.float64)
        rise = 1 - (1 - self.s0) * np.exp(-((q / self.q_rise_per_angstrom) ** 2))
        peak = self.peak_height * np.exp(-((q - self.q_peak_per_angstrom) ** 2) / (2 * self.peak_width_per_angstrom**2))
        return rise + peak

    def projected_potential_psd(self, q_per_angstrom) -> np.ndarray:
        """S_Vz(q) in V²·Å⁴: power spectral density of the slab's projected potential V_z."""
        q = np.asarray(q_per_angstrom, dtype=np.float64)
        return (
            self.thickness_angstrom
            * self.molecules_per_angstrom3
            * POTENTIAL_PER_SCATTERING_VOLT_ANGSTROM2**2
            * water_form_factor_squared(q / 2)
            * self.structure_factor(q)
        )


def water_form_factor_squared(s_inv_angstrom) -> np.ndarray:
    """Orientation-averaged ``|f_H2O(s)|²`` (Å²) of one water molecule, s = q/2 in 1/Å (Debye formula)."""
    s = np.asarray(s_inv_angstrom, dtype=np.float64)
    f_o, f_h = electron_scattering_factor(["O", "H"], s)
    q = 2 * s
    j0 = lambda d: np.sinc(2 * q * d)  # np.sinc(x) = sin(πx)/(πx), so this is sin(2πqd)/(2πqd)
    return f_o**2 + 2 * f_h**2 + 4 * f_o * f_h * j0(WATER_OH_ANGSTROM) + 2 * f_h**2 * j0(WATER_HH_ANGSTROM)


def ice_phase_amplitude_rfft2(
    model: IceModel,
    box: int,
    pixel_size_angstrom: float,
    interaction_constant_rad_per_volt_angstrom: float,
    *,
    envelope_b_angstrom2: float = 0.0,
) -> np.ndarray:
    """Filter [box, box // 2 + 1] that turns ``rfft2`` of unit white noise into the ice phase spectrum.

    For ``w`` of i.i.d. N(0, 1) pixels, ``irfft2(rfft2(w) · filter)`` is a phase field (rad) with
    power spectral density ``σ_e² S_Vz(q) exp(-B q²/2)``: its pixel variance is
    ``Σ_q S / (box · pixel)²`` over the grid's frequencies, the discrete form of ``∫ S d²q``. The
    zero frequency (the slab's mean phase) is 0. Unshifted rfft2 layout (:mod:`cryogeom.imaging.grid`).
    """
    fy = np.fft.fftfreq(box, d=pixel_size_angstrom)[:, None]
    fx = np.fft.rfftfreq(box, d=pixel_size_angstrom)[None, :]
    q = np.sqrt(fy**2 + fx**2)
    amplitude = (
        interaction_constant_rad_per_volt_angstrom
        * np.sqrt(model.projected_potential_psd(q))
        / pixel_size_angstrom
        * np.exp(-envelope_b_angstrom2 * q**2 / 4)
    )
    amplitude[0, 0] = 0.0
    return amplitude

"""The solvent a protein displaces: each atom removes its volume of ice from the projected potential.

A protein in ice replaces water, so its contrast is (protein − displaced water), not protein in
vacuum; at low resolution this roughly halves the signal of a protein (mean inner potential of
ice ≈ 4.6 V, of protein ≈ 8 V). As in CRYSOL (Svergun et al. 1995) each atom gets the
excluded volume v of Fraser, MacRae & Suzuki (1978) (H 5.15, C 16.44, N 2.49, O 9.13, S 19.86,
P 5.73 Å³; united-atom volumes that sum to the protein volume, e.g. 29,600 Å³ for all-atom ADK
against 28,600 Å³ from its mass and 0.73 cm³/g) filled with solvent of mean potential V0, as a
Gaussian sphere ``V0 exp(-π r² / v^(2/3))`` (integral V0 · v). Projected along z that is a 2-D
Gaussian of weight ``-V0 · v`` (V·Å³) and ``σ² = v^(2/3) / (2π)``. An extra B-factor widens it like
the atoms' own terms (σ² += B / 8π²). Elements without a tabulated volume use the volume of a
sphere of their covalent radius (gemmi).
"""

from __future__ import annotations

import gemmi
import numpy as np

#: Fraser, MacRae & Suzuki (1978) excluded volumes (Å³), as used by CRYSOL.
EXCLUDED_VOLUME_ANGSTROM3 = {"H": 5.15, "D": 5.15, "C": 16.44, "N": 2.49, "O": 9.13, "S": 19.86, "P": 5.73}


def excluded_volume_angstrom3(elements) -> np.ndarray:
    """Excluded volume [A] (Å³) of each atom, by element (module docstring)."""
    out = []
    for symbol in np.asarray(elements).reshape(-1):
        name = gemmi.Element(str(symbol)).name.upper()
        if name in EXCLUDED_VOLUME_ANGSTROM3:
            out.append(EXCLUDED_VOLUME_ANGSTROM3[name])
        else:
            radius = gemmi.Element(str(symbol)).covalent_r
            out.append(4.0 / 3.0 * np.pi * radius**3)
    return np.asarray(out, dtype=np.float64)


def displaced_solvent_gaussians(elements, solvent_potential_volt: float, b_factor_angstrom2: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The displaced solvent of each atom as one 2-D Gaussian: ``(weight [A, 1] V·Å³ (negative), sigma [A, 1] Å)``."""
    volume = excluded_volume_angstrom3(elements)
    weight = -solvent_potential_volt * volume
    sigma = np.sqrt(volume ** (2.0 / 3.0) / (2 * np.pi) + b_factor_angstrom2 / (8 * np.pi**2))
    return weight[:, None], sigma[:, None]

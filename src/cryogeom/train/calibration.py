"""Before training: the data's contrast polarity and the fixed output normalisation (μ0, s0).

Renders of the base structure at the particles' own poses, shifts and CTFs are compared with the
(standardised) particle images by a least-squares fit ``image ≈ a · render + b`` over all pixels
of a sample. The sign of ``a`` is the polarity: ``a < 0`` means protein is bright in the data
(RELION-extracted stacks), so the data are negated. Then ``(render − μ0) / s0`` with
``s0 = 1 / |a|`` and ``μ0 = −b / |a|`` puts renders on the data's scale (paper appendix F estimated
these by eye; here they are fitted). The correlation of that fit tells how clear the answer is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from cryogeom.particles.batch import standardise


@dataclass
class Calibration:
    invert_data: bool
    mu0: float
    s0: float
    correlation: float  # of the fit, after the polarity is applied (> 0)
    n_particles: int

    def describe(self) -> str:
        what = "protein bright (inverted contrast, as RELION writes particles); the data will be negated" if self.invert_data else "protein dark (raw micrograph contrast)"
        return f"contrast polarity: {what} (correlation with base-structure renders {self.correlation:+.3f} over {self.n_particles} particles)"


@torch.no_grad()
def calibrate(model, dataset, positions: np.ndarray, *, batch_size: int = 128) -> Calibration:
    """Fit ``image ≈ a · render(base) + b`` on the particles at dataset ``positions``."""
    sums = torch.zeros(5, dtype=torch.float64)  # Σr, Σd, Σr², Σd², Σrd
    count = 0
    for start in range(0, len(positions), batch_size):
        batch = dataset.get_batch(positions[start : start + batch_size])
        data = standardise(batch.images).double()
        base = model.base_ca.expand(len(batch), -1, -1)
        render = model.render_raw(base, batch.rotations, batch.shifts_angstrom, batch.ctf).double()
        sums += torch.stack([render.sum(), data.sum(), (render**2).sum(), (data**2).sum(), (render * data).sum()])
        count += data.numel()
    sr, sd, srr, sdd, srd = (s.item() / count for s in sums)
    var_r, var_d, cov = srr - sr**2, sdd - sd**2, srd - sr * sd
    if not all(math.isfinite(v) for v in (sr, sd, srr, sdd, srd)):
        raise ValueError("images or renders hold non-finite values")
    if var_d <= 1e-12:
        raise ValueError(f"the {len(positions)} images sampled are blank (constant over every pixel); expected particle images")
    if var_r <= 0:
        raise ValueError("renders of the base structure at the particles' poses are blank (are the shifts and the pixel size right?)")
    a = cov / var_r
    b = sd - a * sr
    corr = cov / math.sqrt(var_r * max(var_d, 1e-30))
    invert = a < 0
    a_abs = abs(a) if a != 0 else 1e-12
    return Calibration(invert_data=bool(invert), mu0=-(b if not invert else -b) / a_abs, s0=1.0 / a_abs, correlation=abs(corr), n_particles=len(positions))

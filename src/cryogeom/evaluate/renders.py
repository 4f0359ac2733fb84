"""Particle images beside the network's renders of their predicted conformations.

For each particle: the image as the network sees it (Fourier-downsampled to the training box,
standardised on its background and, for inverted-contrast data, negated;
:func:`cryogeom.particles.batch.prepare`) and the render of X(z) under the particle's own pose
(refined, where training refined it: the run's particles.npz), shift and CTF, normalised like the data (paper Fig. 1 and appendix F). Agreement of the two is
what the image loss measures; it needs no ground truth, so it works for real data.
"""

from __future__ import annotations

import numpy as np
import torch

from cryogeom import run_dir as rd
from cryogeom.model.pose_correction import PoseCorrections
from cryogeom.particles.dataset import ParticleDataset


@torch.no_grad()
def images_and_renders(run, particles, indices) -> tuple[np.ndarray, np.ndarray]:
    """(prepared images [B, D', D'], renders [B, D', D']) float32 for ``particles[indices]`` under ``run``.

    ``run`` is a :class:`cryogeom.train.run.Run`; D' is the network's training box.
    """
    model = run.model
    device = model.base_ca.device
    dataset = ParticleDataset(particles, indices=np.asarray(indices, dtype=np.int64), downsample_box=model.renderer.settings.box)
    batch = dataset.get_batch(np.arange(len(dataset))).to(device)
    data = batch.prepared_images(run.calibration.invert_data)
    z = model.encode(data, batch.rotations, batch.shifts_angstrom, batch.ctf)
    rotations, shifts = batch.rotations, batch.shifts_angstrom
    quality = rd.read_particle_quality(run.path)
    if quality is not None and len(quality["score"]) == particles.n:
        idx = np.asarray(indices, dtype=np.int64)
        correction = np.concatenate([quality["pose_correction_rotvec_rad"][idx], quality["pose_correction_shift_angstrom"][idx]], axis=1)
        rotations, shifts = PoseCorrections.apply(torch.as_tensor(correction, device=device), rotations, shifts)
    renders = model.render(model.decode(z), rotations, shifts, batch.ctf)
    return data.float().cpu().numpy(), renders.float().cpu().numpy()

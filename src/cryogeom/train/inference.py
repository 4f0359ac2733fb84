"""Latents and conformations of particles under a trained network (``cryogeom predict``)."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from cryogeom.errors import InputError
from cryogeom.particles.dataset import ParticleDataset


@torch.no_grad()
def predict(run, particles, indices=None, *, batch_size: int = 256, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(z [n, d] float32, Cα [n, N, 3] float32 Å in the base structure's frame) for ``particles``.

    ``run`` is a :class:`cryogeom.train.run.Run`; ``indices`` selects particles (default all, in
    file order).
    """
    if particles.box * float(np.median(particles.pixel_size_angstrom)) <= 0:
        raise InputError(f"{particles.source_path}: images have no extent")
    field_run = run.box * run.pixel_size_angstrom
    field = particles.box * float(np.median(particles.pixel_size_angstrom))
    if abs(field - field_run) > 0.02 * field_run:
        raise InputError(
            f"{particles.source_path}: images span {field:.1f} Å but the network was trained on {field_run:.1f} Å boxes "
            f"({run.box} px of {run.pixel_size_angstrom:g} Å)"
        )
    model = run.model
    dataset = ParticleDataset(particles, indices=indices, downsample_box=model.renderer.settings.box)
    n = len(dataset)
    zs = np.empty((n, run.config.network.latent_dim), dtype=np.float32)
    cas = np.empty((n, model.n_residues, 3), dtype=np.float32)
    centroid = torch.as_tensor(run.rotation_centre, dtype=torch.float32)
    bar = tqdm(total=n, desc="predict", unit="img", disable=not progress, dynamic_ncols=True)
    for start in range(0, n, batch_size):
        pos = np.arange(start, min(n, start + batch_size))
        batch = dataset.get_batch(pos)
        z = model.encode(batch.prepared_images(run.calibration.invert_data), batch.rotations, batch.shifts_angstrom, batch.ctf)
        zs[pos] = z.cpu().numpy()
        cas[pos] = (model.decode(z) + centroid.to(z.device)).cpu().numpy()
        bar.update(len(pos))
    bar.close()
    return zs, cas

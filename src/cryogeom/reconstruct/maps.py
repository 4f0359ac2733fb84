"""Reconstructing a particle set: two half maps from a fixed random split, their FSC, the full map,
and writing maps as MRC files that overlay the structures cryogeom writes.

The map's voxel ``D // 2`` on each axis is the particles' rotation centre. Written on its own, a map
has the RELION convention (MRC origin 0, so that voxel lies at ``(D // 2) · pixel`` Å), which is
the frame of a model fitted into the consensus map and of the base structure ``cryogeom simulate``
writes; a run's maps put it at the run's rotation centre (:mod:`cryogeom.structure.map_frame`).
"""

from __future__ import annotations

from dataclasses import dataclass

import mrcfile
import numpy as np
import torch
from tqdm.auto import tqdm

from cryogeom.errors import InputError
from cryogeom.files import atomic_output
from cryogeom.imaging.grid import background_mask
from cryogeom.particles.dataset import ParticleDataset
from cryogeom.structure.map_frame import box_centre_angstrom
from cryogeom.reconstruct.fourier import FourierAccumulator, fourier_shell_correlation, resolution_at

MIN_PER_HALF = 10


@dataclass
class Reconstruction:
    full: np.ndarray  # [D, D, D] (z, y, x)
    half1: np.ndarray
    half2: np.ndarray
    frequencies_per_angstrom: np.ndarray  # [S]
    fsc: np.ndarray  # [S], between the half maps
    resolution_angstrom: float  # at FSC = 0.143
    fsc_masked: np.ndarray  # [S], between the half maps inside a soft sphere (:func:`soft_sphere`)
    resolution_masked_angstrom: float
    pixel_size_angstrom: float
    n_particles: int


def reconstruct(particles, indices=None, *, invert: bool = True, batch_size: int = 256, seed: int = 0,
                tikhonov: float = 1e-2, progress: bool = True) -> Reconstruction:
    """Reconstruct ``particles[indices]`` (all by default). ``invert``: the images have protein
    bright (RELION's convention) and are negated to the forward model's contrast."""
    idx = np.arange(particles.n) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
    pixels = np.unique(np.round(particles.pixel_size_angstrom[idx], 6))
    if len(pixels) > 1:
        raise InputError(f"{particles.source_path}: the particles have different pixel sizes ({', '.join(f'{p:g}' for p in pixels[:4])} Å); "
                         "one map needs one voxel size: reconstruct each optics group on its own")
    if len(idx) < 2 * MIN_PER_HALF:
        raise InputError(f"{particles.source_path}: {len(idx)} particles selected; two half maps need at least {2 * MIN_PER_HALF}")
    pixel = float(pixels[0])
    half = np.random.default_rng([seed, 17]).permutation(len(idx)) % 2  # a fixed random split
    dataset = ParticleDataset(particles, indices=idx)
    accumulators = [FourierAccumulator(particles.box, pixel), FourierAccumulator(particles.box, pixel)]
    sign = -1.0 if invert else 1.0
    background = background_mask(particles.box)
    with tqdm(total=len(idx), desc="reconstruct", unit="img", disable=not progress, dynamic_ncols=True) as bar:
        for start in range(0, len(idx), batch_size):
            pos = np.arange(start, min(len(idx), start + batch_size))
            batch = dataset.get_batch(pos)
            for h in (0, 1):
                take = torch.as_tensor(np.flatnonzero(half[pos] == h))
                if len(take):
                    images = batch.images[take]
                    images = images - images[:, background].mean(dim=1)[:, None, None]  # no DC offset: it is not the particle
                    accumulators[h].add(sign * images, batch.rotations[take], batch.shifts_angstrom[take], batch.ctf[take])
            bar.update(len(pos))
    half1, half2 = accumulators[0].volume(tikhonov), accumulators[1].volume(tikhonov)
    full = accumulators[0].merged(accumulators[1]).volume(tikhonov)
    freq, fsc = fourier_shell_correlation(half1, half2, pixel)
    mask = soft_sphere(particles.box)
    _, fsc_masked = fourier_shell_correlation(half1 * mask, half2 * mask, pixel)
    return Reconstruction(full, half1, half2, freq, fsc, resolution_at(freq, fsc), fsc_masked, resolution_at(freq, fsc_masked),
                          pixel, len(idx))


def soft_sphere(box: int, radius_fraction: float = 0.4, edge_voxels: float = 4.0) -> np.ndarray:
    """[D, D, D] 1 inside a sphere of ``radius_fraction``·D about voxel D // 2, falling to 0 over
    ``edge_voxels`` with a raised cosine: the mask of the masked FSC (noise outside the particle left out)."""
    c = np.arange(box) - box // 2
    r = np.sqrt(c[:, None, None] ** 2 + c[None, :, None] ** 2 + c[None, None, :] ** 2)
    inner = radius_fraction * box
    t = np.clip((r - inner) / edge_voxels, 0.0, 1.0)
    return 0.5 * (1 + np.cos(np.pi * t))


def write_map(path, volume: np.ndarray, pixel_size_angstrom: float, centre_angstrom=None) -> None:
    """``volume`` [D, D, D] (z, y, x) as an MRC file whose voxel D // 2 lies at ``centre_angstrom``
    (x, y, z) — the particles' rotation centre in the coordinates of the structures it should
    overlay (a run's rotation centre for its maps); None: MRC origin 0, RELION's convention."""
    d = volume.shape[0]
    centre = box_centre_angstrom(d, pixel_size_angstrom) if centre_angstrom is None else centre_angstrom
    origin = np.asarray(centre, dtype=np.float64) - (d // 2) * pixel_size_angstrom
    with atomic_output(path) as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(np.ascontiguousarray(volume, dtype=np.float32))
            mrc.voxel_size = pixel_size_angstrom
            mrc.header.origin = tuple(float(o) for o in origin)

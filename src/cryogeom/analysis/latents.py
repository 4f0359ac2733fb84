"""The latents to analyse: predicted with a run's encoder, or read from a z.npy, and checked.

``predict_latents`` runs :func:`cryogeom.train.inference.predict` over the particles in chunks,
keeping only z (the Cα it also returns would take n × N × 12 bytes at once).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from cryogeom.errors import InputError
from cryogeom.particles.relion import particle_block_name, read_star_blocks
from cryogeom.train import inference

CHUNK = 4096


def predict_latents(run, particles, *, batch_size: int = 256, progress: bool = True) -> np.ndarray:
    """z [n, d] float32 of every particle of ``particles`` (file order) under ``run``'s encoder."""
    n = particles.n
    z = np.empty((n, run.config.network.latent_dim), dtype=np.float32)
    with tqdm(total=n, desc="latents", unit="img", disable=not progress, dynamic_ncols=True) as bar:
        for start in range(0, n, CHUNK):
            indices = np.arange(start, min(n, start + CHUNK))
            z[indices], _ = inference.predict(run, particles, indices, batch_size=batch_size, progress=False)
            bar.update(len(indices))
    return z


def load_latents(path: str | os.PathLike, latent_dim: int, n_particles: int | None = None, *, name: str = "--z") -> np.ndarray:
    """Read z [n, ``latent_dim``] from a .npy (as ``cryogeom predict`` writes); check its width,
    its length (``n_particles``, when known) and that it is finite."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{name} {path}: file not found")
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(f"{name} {path}: not a NumPy .npy array ({exc})") from None
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise InputError(f"{name} {path}: shape {z.shape}; expected [n, {latent_dim}] (the run's latent dimension is {latent_dim})")
    if n_particles is not None and len(z) != n_particles:
        raise InputError(f"{name} {path}: {len(z)} latents for {n_particles} particles; expected one latent per particle, in file order")
    if not np.issubdtype(z.dtype, np.floating) or not np.all(np.isfinite(z)):
        raise InputError(f"{name} {path}: expected finite floating-point latents")
    return z


def count_star_particles(path: str | os.PathLike) -> int:
    """The number of particle rows of a RELION .star (metadata only; the image stacks are not opened)."""
    path = Path(path)
    blocks = read_star_blocks(path)
    return len(blocks[particle_block_name(path, blocks)])

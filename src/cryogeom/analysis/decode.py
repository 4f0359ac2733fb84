"""Latents -> Cα conformations in the base structure's frame, with a trained run's decoder."""

from __future__ import annotations

import numpy as np
import torch

from cryogeom.errors import InputError


@torch.no_grad()
def decode_latents(run, z, *, batch_size: int = 1024) -> np.ndarray:
    """Cα [n, N, 3] float32 Å, in the base structure's frame, for latents ``z`` [n, d].

    ``run`` is a :class:`cryogeom.train.run.Run`: its network decodes z to Cα about the
    particles' rotation centre, and ``run.rotation_centre`` moves them into the base structure's frame (the frame of
    ``cryogeom predict``'s ca.npy, so a decoded particle latent equals its predicted Cα).
    """
    model = run.model
    z = np.asarray(z, dtype=np.float32)
    d = int(run.config.network.latent_dim)
    if z.ndim != 2 or z.shape[1] != d:
        raise InputError(f"latents: expected shape [n, {d}] for this run, got {z.shape}")
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    centre = torch.as_tensor(run.rotation_centre, dtype=torch.float32, device=device)
    out = np.empty((len(z), model.n_residues, 3), dtype=np.float32)
    for start in range(0, len(z), batch_size):
        batch = torch.as_tensor(z[start : start + batch_size], device=device)
        out[start : start + len(batch)] = (model.decode(batch) + centre).cpu().numpy()
    return out

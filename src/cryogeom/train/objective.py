"""The training objective: one forward pass of a batch, and the loss terms on it.

``L = L_img + α L_geom + β L_bond + γ L_centering + δ L_chain`` (paper eq. 4, plus the chain
loss), with the weights of :class:`cryogeom.train.config.Losses`. :func:`forward` is the one
forward pass of a :class:`~cryogeom.particles.batch.ParticleBatch` through the network; training
(:meth:`Objective.__call__`) and validation both use it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from cryogeom.losses.bond import bond_loss
from cryogeom.losses.centering import centering_loss
from cryogeom.losses.geometry import GeometryLoss, chain_window_pairs
from cryogeom.losses.image import image_loss
from cryogeom.particles.batch import ParticleBatch
from cryogeom.train.config import Losses, geometry_neighbours

TERMS = ("loss", "image", "geometry", "bond", "centering", "chain")


class Forward(NamedTuple):
    data: torch.Tensor  # [B, D, D] the prepared images
    z: torch.Tensor  # [B, d]
    ca: torch.Tensor  # [B, N, 3] Å, about the rotation centre
    render: torch.Tensor  # [B, D, D]


def forward(model, batch: ParticleBatch, invert: bool, render_pose=None) -> Forward:
    """Images prepared, encoded, decoded and the conformations rendered at the particles' poses
    (or at ``render_pose``, (rotations, shifts): the refined poses).

    ``model`` is a :class:`~cryogeom.model.network.Reconstructor` (or its DDP wrapper)."""
    data = batch.prepared_images(invert)
    z, ca, render = model(data, batch.rotations, batch.shifts_angstrom, batch.ctf, render_pose)
    return Forward(data, z, ca, render)


class Objective:
    """The loss terms of a batch under the weights ``losses``, for the base Cα ``base_ca`` [N, 3]
    (the network's coordinates) with covalent ``bonded_pairs`` [M, 2]."""

    def __init__(self, losses: Losses, base_ca: torch.Tensor, bonded_pairs):
        self.weights = losses
        self.base_centroid = base_ca.detach().mean(0)  # where the centring loss holds every cloud's centroid
        self.geometry = GeometryLoss(base_ca.double(), k=geometry_neighbours(losses.geometry_k, len(base_ca)))
        self.bonds = torch.as_tensor(bonded_pairs, dtype=torch.long).reshape(-1, 2)
        pairs = chain_window_pairs(bonded_pairs, len(base_ca), losses.chain_window)
        self.chain = GeometryLoss(base_ca.double(), pairs=pairs) if losses.chain_weight and len(pairs) else None

    def to(self, device) -> "Objective":
        """The base-structure tensors of every term moved to ``device`` (the model's)."""
        self.base_centroid = self.base_centroid.to(device)
        self.bonds = self.bonds.to(device)
        self.geometry = self.geometry.to(device)
        if self.chain is not None:
            self.chain = self.chain.to(device)
        return self

    def terms(self, out: Forward, particle_weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Every term and their weighted sum ``"loss"`` for a forward pass; ``particle_weights``
        [B] weigh each particle's image loss (junk down-weighted, :mod:`cryogeom.train.junk`)."""
        w, ca = self.weights, out.ca
        zero = out.render.new_zeros(())
        if particle_weights is None:
            terms = {"image": image_loss(out.render, out.data)}
        else:
            per_particle = (out.render - out.data).square().mean(dim=(-2, -1))
            weights = particle_weights.to(per_particle) / particle_weights.to(per_particle).mean().clamp_min(1e-6)
            terms = {"image": (per_particle * weights).mean()}
        terms["geometry"] = self.geometry(ca) if w.geometry_weight else zero
        terms["bond"] = bond_loss(ca, self.bonds) if w.bond_weight and len(self.bonds) else zero
        terms["centering"] = centering_loss(ca, self.base_centroid) if w.centering_weight else zero
        terms["chain"] = self.chain(ca) if self.chain is not None else zero
        terms["loss"] = (terms["image"] + w.geometry_weight * terms["geometry"] + w.bond_weight * terms["bond"]
                         + w.centering_weight * terms["centering"] + w.chain_weight * terms["chain"])
        return terms

    def __call__(self, model, batch: ParticleBatch, invert: bool) -> dict[str, torch.Tensor]:
        return self.terms(forward(model, batch, invert))

    def evaluate(self, model, batch: ParticleBatch, invert: bool, *, render_pose=None, particle_weights=None):
        """(terms, the forward pass): :meth:`terms` of the batch rendered at ``render_pose``."""
        out = forward(model, batch, invert, render_pose)
        return self.terms(out, particle_weights), out

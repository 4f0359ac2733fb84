"""Training losses: image, geometry degradation, bond and centering, and the chain's local fold.

``L = L_img + α L_geom + β L_bond + γ L_centering`` (paper section 2; α, β, γ = 0.05, 0.005, 0.1),
plus ``δ L_chain``: L_geom over the residue pairs 1…3 bonds apart (:func:`chain_window_pairs`).
"""

from cryogeom.losses.bond import CA_CA_DISTANCE_ANGSTROM, bond_loss
from cryogeom.losses.centering import centering_loss
from cryogeom.losses.geometry import (
    MIN_SQUARED_DISTANCE_ANGSTROM2,
    GeometryLoss,
    chain_window_pairs,
    geometry_loss,
    geometry_loss_pairs,
    geometry_loss_reference,
    nearest_neighbour_pairs,
    pairs_within_cutoff,
)
from cryogeom.losses.image import circular_mask, image_loss

__all__ = [
    "CA_CA_DISTANCE_ANGSTROM",
    "MIN_SQUARED_DISTANCE_ANGSTROM2",
    "GeometryLoss",
    "bond_loss",
    "centering_loss",
    "chain_window_pairs",
    "circular_mask",
    "geometry_loss",
    "geometry_loss_pairs",
    "geometry_loss_reference",
    "image_loss",
    "nearest_neighbour_pairs",
    "pairs_within_cutoff",
]

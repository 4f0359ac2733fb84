"""A generated multi-domain motion of a protein: soft rigid-domain modes, relaxed into a chain.

Where no molecular-dynamics trajectory is at hand (the large built-in example,
:mod:`cryogeom.examples.large`), :func:`multi_domain_path` makes one in four steps:

1. **Domain modes** (:mod:`~cryogeom.examples.elastic_network`): the softest rotation–translation
   block modes of an elastic network with one rigid block per domain — the collective domain
   motions that least strain the contacts between domains.
2. **Time profiles** (:mod:`~cryogeom.examples.time_profiles`): every mode gets its own smooth
   random profile; the profiles are uncorrelated, with variances 1, 1/2, 1/3, ... so no single
   mode dominates, and all start at 0 (frame 0 is the reference structure). Each domain's move
   (translation, rotation about its centroid) is the profile-weighted sum of the modes, applied
   as a finite rigid motion: the domains move in different directions, out of step.
3. **Relaxation** (:mod:`~cryogeom.examples.restrained_relaxation`): those rigidly moved domains
   are only targets. Frame by frame the Cα trace is minimised under a weak pull to them, an
   elastic network at reference lengths, stiff Cα–Cα bonds and repulsion between Cα and between
   heavy atoms, so interfaces and linkers yield without broken bonds or clashes.
4. **Superposition**: every frame is superposed on frame 0 (Kabsch/QCP on all Cα), so the path
   carries no overall rotation or drift.

Atoms follow their residue's local Cα frame (:mod:`~cryogeom.structure.frames`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from MDAnalysis.analysis.align import rotation_matrix

from cryogeom.examples.elastic_network import (
    anm_hessian,
    move_domains,
    network_springs,
    rigid_block_projection,
    rigid_domain_modes,
)
from cryogeom.structure.frames import AtomFrames
from cryogeom.examples.restrained_relaxation import RestrainedRelaxation
from cryogeom.examples.time_profiles import uncorrelated_profiles


@dataclass(frozen=True)
class MotionSettings:
    """Parameters of :func:`multi_domain_path` (lengths in Å).

    n_modes                 soft domain modes combined
    target_rms_angstrom     mean over frames of the RMS Cα displacement of the (linearised)
                            rigid-domain targets; the relaxed path moves somewhat less
    network_cutoff_angstrom elastic-network springs between Cα closer than this
    interdomain_scale       spring constant across domains (1 inside a domain)
    target_weight           λ of the pull towards the targets (see RestrainedRelaxation)
    """

    n_modes: int = 6
    target_rms_angstrom: float = 6.0
    network_cutoff_angstrom: float = 10.0
    interdomain_scale: float = 0.3
    target_weight: float = 0.05


def segments_from_bonds(n_residues: int, bonded_pairs: np.ndarray) -> np.ndarray:
    """Label [N] of the covalent stretch of every residue (a new label after every missing bond)."""
    bonded_next = np.zeros(n_residues, bool)
    bonded_next[np.asarray(bonded_pairs).min(axis=1)] = True
    return np.r_[0, np.cumsum(~bonded_next[:-1])]


def superpose_on_first(ca_path_angstrom: np.ndarray, on: np.ndarray | None = None) -> np.ndarray:
    """Every frame of [F, N, 3] rotated and translated onto frame 0 (least-squares over all Cα, or
    over the residues where the [N] mask ``on`` is true; the whole frame moves)."""
    on = np.ones(ca_path_angstrom.shape[1], bool) if on is None else np.asarray(on, bool)
    ref = ca_path_angstrom[0, on]
    ref_centre = ref.mean(0)
    out = np.empty_like(ca_path_angstrom)
    for f, x in enumerate(ca_path_angstrom):
        centre = x[on].mean(0)
        rot, _ = rotation_matrix(x[on] - centre, ref - ref_centre)  # ref ≈ rot @ (x − centre)
        out[f] = (x - centre) @ np.asarray(rot).T + ref_centre
    return out


def multi_domain_path(ca_angstrom: np.ndarray, atom_positions_angstrom: np.ndarray, atom_residue_index: np.ndarray,
                      bonded_pairs: np.ndarray, domain: np.ndarray, n_frames: int, seed: int,
                      settings: MotionSettings = MotionSettings()) -> np.ndarray:
    """Cα path [F, N, 3] (Å) of a multi-domain motion starting at the reference ``ca_angstrom`` [N, 3].

    ``atom_positions_angstrom`` [A, 3] with ``atom_residue_index`` [A]: the reference's heavy
    atoms (for the clash terms); ``bonded_pairs`` [M, 2]: consecutive covalently bonded
    residues; ``domain`` [N]: domain label 0..D−1 of every residue. Deterministic for a given
    ``seed``. Atoms of frame f are ``AtomFrames.from_reference(...).place(path[f])``.
    """
    ca0 = np.asarray(ca_angstrom, dtype=np.float64)
    segment = segments_from_bonds(len(ca0), bonded_pairs)
    springs, constants = network_springs(ca0, settings.network_cutoff_angstrom, domain, segment,
                                         settings.interdomain_scale)
    _, modes = rigid_domain_modes(ca0, domain, anm_hessian(ca0, springs, constants), settings.n_modes)

    rng = np.random.default_rng(seed)
    profiles = uncorrelated_profiles(n_frames, 1.0 / np.arange(1, settings.n_modes + 1), rng)  # [F, K]
    moves = np.einsum("fk,kdc->fdc", profiles, modes)  # [F, D, 6]
    linear = (moves.reshape(n_frames, -1) @ rigid_block_projection(ca0, domain).T).reshape(n_frames, -1, 3)
    moves *= settings.target_rms_angstrom / np.sqrt((linear ** 2).sum(-1).mean(-1)).mean()
    targets = move_domains(ca0, domain, moves)

    relaxation = RestrainedRelaxation(
        reference_ca=ca0, reference_atoms=np.asarray(atom_positions_angstrom, dtype=np.float64),
        atom_frames=AtomFrames.from_reference(ca0, atom_positions_angstrom, atom_residue_index, bonded_pairs),
        bonded_pairs=np.asarray(bonded_pairs), spring_pairs=springs, spring_constants=constants,
        target_weight=settings.target_weight,
    )
    return superpose_on_first(relaxation.track(targets))

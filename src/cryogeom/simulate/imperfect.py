"""What a consensus refinement's particle set has that a friendly simulation does not: pose and shift
errors, junk particles and uneven populations of the conformations.

* **Pose errors** (:func:`perturb_poses`): the poses written to the .star are the true ones turned by
  a random rotation whose axis-angle vector has independent normal components of standard
  deviation ``angle_rms / √3`` (so the RMS angle is ``angle_rms``), applied as ``R' = ΔR R`` (R moves
  the atoms); shifts get independent normal errors of ``shift_rms / √2`` on x and y.
* **Junk** (:func:`draw_junk`), three kinds, in equal shares of the junk fraction unless chosen:
  ``ice`` — the same ice, CTF and noise with no molecule; ``other`` — a different protein of about
  the same size (the first nucleotide-binding domain of CFTR, PDB 6MSM residues 389–637, 249
  residues, :func:`other_protein`) at a random pose; ``pose`` — the right protein whose written pose
  is an unrelated random rotation.
* **Uneven populations** (:func:`frame_weights`): ``two-state``, the frames drawn with probability
  proportional to two Gaussians over the path (at 25 % and 75 % of it, standard deviation 12 % of
  it, the second half as populated), a typical two-state equilibrium.

The imperfections draw from ``SeedSequence(seed, spawn_key=(2,))`` so that the true particles (frames,
poses, CTF, noise) of a seed are the same with or without them.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from scipy.spatial.transform import Rotation

from cryogeom.errors import require
from cryogeom.imaging.rotations import random_rotations
from cryogeom.simulate.simulator import AtomicEnsemble, ImageFormation, ParticleParameters
from cryogeom.structure.read import read_structure

JUNK_KINDS = ("ice", "other", "pose")  # junk_kind 1, 2, 3 in ground_truth.npz (0: a true particle)
POPULATIONS = ("uniform", "two-state")
OTHER_PROTEIN_RESIDUES = (389, 637)


def imperfection_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,)))


def frame_weights(n_frames: int, population: str) -> np.ndarray | None:
    """Probabilities [F] of the frames (None for ``uniform``: every frame equally often)."""
    require(population in POPULATIONS, f"populations: expected one of {', '.join(POPULATIONS)}, got {population!r}")
    if population == "uniform":
        return None
    tau = np.linspace(0.0, 1.0, n_frames)
    w = np.exp(-0.5 * ((tau - 0.25) / 0.12) ** 2) + 0.5 * np.exp(-0.5 * ((tau - 0.75) / 0.12) ** 2)
    return w / w.sum()


def random_offset(magnitude_angstrom: float, rng: np.random.Generator) -> np.ndarray:
    """[3] a vector of length ``magnitude_angstrom`` in a uniformly random direction."""
    v = rng.normal(size=3)
    return magnitude_angstrom * v / np.linalg.norm(v)


def perturb_poses(rotations, shifts_angstrom, angle_rms_deg: float, shift_rms_angstrom: float, rng: np.random.Generator):
    """(rotations [n, 3, 3], shifts [n, 2]) with the errors of the module docstring."""
    rotations = np.asarray(rotations, dtype=np.float64)
    shifts = np.asarray(shifts_angstrom, dtype=np.float64)
    n = len(rotations)
    omega = rng.normal(size=(n, 3)) * np.deg2rad(angle_rms_deg) / np.sqrt(3)
    turned = Rotation.from_rotvec(omega).as_matrix() @ rotations
    moved = shifts + rng.normal(size=(n, 2)) * shift_rms_angstrom / np.sqrt(2)
    return turned, moved


def draw_junk(n: int, fraction: float, kinds, rng: np.random.Generator) -> np.ndarray:
    """junk_kind [n] int8: 0 for a true particle, else 1 + the index of its kind in :data:`JUNK_KINDS`;
    round(``fraction`` · n) junk particles, the kinds in equal shares, at random places."""
    require(0 <= fraction < 1, f"junk: expected a fraction in [0, 1), got {fraction!r}")
    kinds = list(kinds)
    require(len(kinds) > 0 and all(k in JUNK_KINDS for k in kinds), f"junk kinds: expected some of {', '.join(JUNK_KINDS)}, got {kinds!r}")
    kind = np.zeros(n, dtype=np.int8)
    count = int(round(fraction * n))
    chosen = rng.permutation(n)[:count]
    kind[chosen] = [1 + JUNK_KINDS.index(kinds[i % len(kinds)]) for i in range(count)]
    return kind


def other_protein() -> AtomicEnsemble:
    """A different protein of about ADK's size: CFTR's first nucleotide-binding domain (one frame)."""
    from MDAnalysisTests.datafiles import PDB_CHECK_RIGHTHAND_PA

    first, last = OTHER_PROTEIN_RESIDUES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = read_structure(PDB_CHECK_RIGHTHAND_PA, select=f"protein and chainID A and resid {first}:{last}")
    return AtomicEnsemble.from_frames(s.atom_positions[None], s.atom_elements, s.ca[None])


class MixedFormation:
    """Renders each particle as its junk kind says: true particles and ``pose`` junk with ``main``,
    ``ice`` junk with ``main`` and no molecule, ``other`` junk with ``other`` (frame 0). The same
    interface as :class:`~cryogeom.simulate.simulator.ImageFormation` (and its attributes)."""

    def __init__(self, main: ImageFormation, junk_kind: np.ndarray, other: ImageFormation | None = None):
        self.main, self.junk_kind, self.other = main, np.asarray(junk_kind), other
        require(other is not None or not np.any(self.junk_kind == 2), "junk: 'other' particles need the other protein's image formation")

    def __getattr__(self, name):  # config, oversample, projector, …: the main formation's
        return getattr(self.main, name)

    def images(self, params: ParticleParameters, first_index: int, seed: int) -> np.ndarray:
        numbers = first_index + np.arange(len(params))
        kind = self.junk_kind[numbers]
        box = self.main.config.box
        out = np.empty((len(params), box, box), dtype=np.float32)
        groups = ((np.isin(kind, (0, 3)), self.main, True), (kind == 1, self.main, False), (kind == 2, self.other, True))
        for take, formation, protein in groups:
            if take.any():
                part = params[take]
                if formation is self.other:
                    part = dataclasses.replace(part, frame=np.zeros_like(part.frame))
                out[take] = formation.images(part, 0, seed, indices=numbers[take], protein=protein)
        return out


def written_poses(params: ParticleParameters, junk_kind: np.ndarray, angle_rms_deg: float, shift_rms_angstrom: float,
                  rng: np.random.Generator):
    """The poses a refinement would have given: the true ones with errors, and for ``pose`` junk
    an unrelated random rotation."""
    rotations, shifts = perturb_poses(params.rotations, params.shifts_angstrom, angle_rms_deg, shift_rms_angstrom, rng)
    wrong = np.flatnonzero(np.asarray(junk_kind) == 3)
    if len(wrong):
        rotations[wrong] = random_rotations(len(wrong), rng)
    return rotations, shifts

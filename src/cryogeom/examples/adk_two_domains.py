"""A two-dimensional ADK landscape: the LID and NMP domains close independently.

ADK's closed → open path (:mod:`cryogeom.examples.adk`) moves both domains together, a single
degree of freedom. This example takes the two motions apart. For every path fraction t ∈ [0, 1]
(t = 0 the closed frame 0, t = 1 the open frame 101) each frame of the path is superposed on
frame 0's CORE, which gives where that frame's LID and NMP sit relative to the CORE. A conformation
(t_LID, t_NMP) of the grid is frame 0 with the LID's residues taken from the frame at t_LID and the
NMP's from the frame at t_NMP (both superposed on the CORE): each domain keeps the shape it has
on the real path; the other domain and the CORE are those of the closed state. The composites are
then relaxed (:mod:`cryogeom.examples.restrained_relaxation`: the chain's Cα–Cα bonds at the
four hinges restored, no clashes, an elastic network only inside each domain so that nothing pulls
the domains back), tracked along the grid in serpentine order so neighbouring conformations stay
close.

Ground truth per frame: ``coordinates`` [F, 2], the two path fractions (LID, NMP) of each
conformation. Frames are ordered LID-major: frame ``i * n + j`` has t_LID = i / (n − 1) and
t_NMP = j / (n − 1). How it is made and what it measures: docs/examples.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cryogeom.examples.adk import adk
from cryogeom.examples.domain_motion import segments_from_bonds, superpose_on_first
from cryogeom.examples.elastic_network import network_springs
from cryogeom.examples.large import AtomsOnTrace, default_cache_dir, read_cache, write_cache
from cryogeom.examples.restrained_relaxation import RestrainedRelaxation
from cryogeom.structure.frames import AtomFrames
from cryogeom.structure.types import Trajectory

#: ADK (E. coli) domains by residue number, inclusive.
ADK_DOMAINS: dict[str, list[tuple[int, int]]] = {
    "CORE": [(1, 29), (60, 121), (160, 214)],
    "NMP": [(30, 59)],
    "LID": [(122, 159)],
}
COORDINATE_NAMES = ("LID closure path fraction", "NMP closure path fraction")
GRID = 16  # conformations per coordinate: GRID² frames
#: Changes whenever the generated coordinates would change (names the cache file).
VERSION = "adk-two-domains-v1"


def domain_mask(resids: np.ndarray, name: str) -> np.ndarray:
    """[N] bool: residues of ADK domain ``name``."""
    resids = np.asarray(resids)
    return np.any([(resids >= a) & (resids <= b) for a, b in ADK_DOMAINS[name]], axis=0)


def adk_two_domains(grid: int = GRID, cache_dir: str | os.PathLike | None = None) -> Trajectory:
    """ADK over a ``grid`` × ``grid`` lattice of independent LID and NMP closures (a Trajectory of
    grid² frames, 214 residues, all-atom positions; ``coordinates`` [grid², 2] path fractions).

    The relaxed Cα are read from the cache (``cache_dir``, default
    :func:`~cryogeom.examples.large.default_cache_dir`) or made (a few CPU minutes for the
    default grid) and written there.
    """
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 2:
        raise ValueError(f"grid: expected an integer >= 2, got {grid!r}")
    path = adk()
    structure = path.structure
    ca_path = superpose_on_first(path.ca, on=domain_mask(structure.resids, "CORE"))
    lid, nmp = domain_mask(structure.resids, "LID"), domain_mask(structure.resids, "NMP")
    steps = np.rint(np.linspace(0, len(ca_path) - 1, grid)).astype(int)
    fraction = steps / (len(ca_path) - 1)
    coords = np.stack(np.meshgrid(fraction, fraction, indexing="ij"), axis=-1).reshape(-1, 2)
    cache_file = Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"{VERSION}-grid{grid}.npz"
    ca = read_cache(cache_file, (grid * grid, structure.n_residues, 3), VERSION)
    atoms0 = path.atom_positions(0)
    frames = AtomFrames.from_reference(ca_path[0], atoms0, structure.atom_residue_index, structure.bonded_pairs)
    if ca is None:
        ca = _relaxed_grid(ca_path, structure, frames, atoms0, steps, lid, nmp)
        write_cache(cache_file, ca, VERSION)
    return Trajectory(structure, ca, AtomsOnTrace(frames, ca), coordinates=coords, coordinate_names=COORDINATE_NAMES)


def _relaxed_grid(ca_path, structure, frames, atoms0, steps, lid, nmp) -> np.ndarray:
    """The composites of the grid relaxed into chains, [grid², N, 3] LID-major."""
    grid = len(steps)
    order, targets = [], []
    for i in range(grid):
        row = range(grid) if i % 2 == 0 else range(grid - 1, -1, -1)  # serpentine: neighbours stay close
        for j in row:
            target = ca_path[0].copy()
            target[lid] = ca_path[steps[i]][lid]
            target[nmp] = ca_path[steps[j]][nmp]
            targets.append(target)
            order.append(i * grid + j)
    labels = np.select([lid, nmp], [1, 2], 0)
    segment = segments_from_bonds(structure.n_residues, structure.bonded_pairs)
    springs, constants = network_springs(ca_path[0], 10.0, labels, segment, interdomain_scale=0.0)
    keep = constants > 0
    relaxation = RestrainedRelaxation(
        reference_ca=ca_path[0], reference_atoms=atoms0, atom_frames=frames,
        bonded_pairs=np.asarray(structure.bonded_pairs), spring_pairs=springs[keep], spring_constants=constants[keep],
        target_weight=1.0,
    )
    relaxed = relaxation.track(np.stack(targets))
    ca = np.empty_like(relaxed)
    ca[order] = relaxed
    return ca


"""The large built-in example: CFTR (1,181 residues) in a generated multi-domain motion.

A stand-in for the paper's second protein, Nsp13 (590 residues, 200 frames of a D. E. Shaw MD
trajectory), which cannot be obtained offline. The structure is chain A of PDB 6MSM
(phosphorylated, ATP-bound human CFTR, cryo-EM, Zhang et al. 2018), shipped with MDAnalysisTests
as ``6msm.pdb.bz2`` (``MDAnalysisTests.datafiles.PDB_CHECK_RIGHTHAND_PA``): 1,181 resolved
residues in five covalent stretches (gaps after residues 409, 637, 889 and 1173), 9,466 heavy
atoms. Chain B (a 17-residue poly-UNK piece of the R region), ligands, lipids and ions are left
out.

The motion (:func:`cryogeom.examples.domain_motion.multi_domain_path`): the five domains of
:data:`CFTR_DOMAINS` move as rigid bodies along a mix of six soft domain modes with uncorrelated
random time profiles, and every frame is relaxed by restrained minimisation (Cα–Cα bonds kept,
no new clashes); atoms follow their residue's local Cα frame; frames are superposed on frame 0,
which is the deposited structure. How it is made and what it measures: docs/examples.md.

Generating takes ~20 s of CPU (one thread); the Cα path is cached in ``$XDG_CACHE_HOME/cryogeom`` (default
``~/.cache/cryogeom``) under a name made of :data:`VERSION`, the frame count and the seed.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from cryogeom.examples.domain_motion import MotionSettings, multi_domain_path
from cryogeom.errors import InputError
from cryogeom.structure.frames import AtomFrames
from cryogeom.files import atomic_output
from cryogeom.structure.read import read_structure
from cryogeom.structure.types import Structure, Trajectory

#: Changes whenever the generated coordinates would change (names the cache file).
VERSION = "cftr-6msm-v1"
N_FRAMES = 200
SEED = 0
SETTINGS = MotionSettings()

#: CFTR's domains by residue number (UniProt P13569 numbering, as in 6MSM), inclusive ranges:
#: the N-terminal lasso motif, the two transmembrane domains and the two nucleotide-binding
#: domains (the R region, 640–840, is not resolved in chain A).
CFTR_DOMAINS: dict[str, tuple[int, int]] = {
    "lasso": (1, 63),
    "TMD1": (64, 388),
    "NBD1": (389, 677),
    "TMD2": (838, 1173),
    "NBD2": (1174, 1480),
}


def cftr_structure() -> Structure:
    """Chain A of CFTR (PDB 6MSM) from MDAnalysisTests: 1,181 residues with all heavy atoms."""
    from MDAnalysisTests.datafiles import PDB_CHECK_RIGHTHAND_PA

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dropped ligands and lipids are expected
        return read_structure(PDB_CHECK_RIGHTHAND_PA, select="protein and chainID A")


def domain_labels(resids: np.ndarray, domains: dict[str, tuple[int, int]] = CFTR_DOMAINS) -> np.ndarray:
    """Index [N] into ``domains`` (in order) of every residue number; ValueError if one is in none."""
    resids = np.asarray(resids)
    label = np.full(len(resids), -1)
    for d, (first, last) in enumerate(domains.values()):
        label[(resids >= first) & (resids <= last)] = d
    if np.any(label < 0):
        raise ValueError(f"residues {resids[label < 0][:5].tolist()} are in no domain")
    return label


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/cryogeom``, or ``~/.cache/cryogeom`` when XDG_CACHE_HOME is unset."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "cryogeom"


class AtomsOnTrace:
    """frame -> all-atom positions [A, 3] (float64 Å), each residue carried by its Cα frame."""

    def __init__(self, atom_frames: AtomFrames, ca_path: np.ndarray):
        self.atom_frames = atom_frames
        self.ca_path = ca_path

    def __call__(self, frame: int) -> np.ndarray:
        return self.atom_frames.place(torch.as_tensor(self.ca_path[frame], dtype=torch.float64)).numpy()


def cftr(n_frames: int = N_FRAMES, seed: int = SEED, cache_dir: str | os.PathLike | None = None) -> Trajectory:
    """CFTR in a multi-domain motion: a :class:`~cryogeom.structure.types.Trajectory` of ``n_frames``
    frames × 1,181 residues, frame 0 the deposited structure, all-atom positions for every frame.

    The Cα path is read from the cache (``cache_dir``, default :func:`default_cache_dir`) or
    generated and written there atomically; an unwritable cache only costs the regeneration.
    """
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames <= SETTINGS.n_modes:
        raise InputError(f"n_frames: expected an integer > {SETTINGS.n_modes} (one more than the modes mixed), got {n_frames!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed: expected a non-negative integer, got {seed!r}")
    structure = cftr_structure()
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_file = path / f"{VERSION}-frames{n_frames}-seed{seed}.npz"
    ca_path = read_cache(cache_file, (n_frames, structure.n_residues, 3), VERSION)
    if ca_path is None:
        ca_path = multi_domain_path(
            structure.ca, structure.atom_positions, structure.atom_residue_index, structure.bonded_pairs,
            domain_labels(structure.resids), n_frames, seed, SETTINGS,
        )
        write_cache(cache_file, ca_path, VERSION)
    atom_frames = AtomFrames.from_reference(structure.ca, structure.atom_positions,
                                            structure.atom_residue_index, structure.bonded_pairs)
    return Trajectory(structure, ca_path, AtomsOnTrace(atom_frames, ca_path))


def read_cache(cache_file: Path, shape: tuple[int, ...], version: str) -> np.ndarray | None:
    """The cached array ``ca`` of ``cache_file`` if it has ``shape`` and was written for ``version``, else None."""
    try:
        with np.load(cache_file) as data:
            ca = np.asarray(data["ca"], dtype=np.float64)
            stored = str(data["version"])
    except (OSError, KeyError, ValueError):
        return None
    if stored != version or ca.shape != tuple(shape):
        return None
    return ca


def write_cache(cache_file: Path, ca_path: np.ndarray, version: str) -> None:
    """``ca_path`` written to ``cache_file`` atomically (a warning, not an error, if it cannot be)."""
    try:
        with atomic_output(cache_file) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, ca=ca_path, version=np.str_(version))
    except OSError as exc:
        warnings.warn(f"could not cache a built-in example in {cache_file.parent}: {exc}", stacklevel=3)

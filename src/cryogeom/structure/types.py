"""Structures and trajectories: the Cα cloud, residues, chains and bonds of a protein.

:class:`Structure` is one conformation (Cα coordinates, residue names and numbers, chains, bonded
pairs, optional all-atom data); :class:`Trajectory` is several conformations of one topology.
Reading: :mod:`cryogeom.structure.read`; writing: :mod:`cryogeom.structure.write`.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np

from cryogeom.structure.bonds import consecutive_bonded_pairs
from cryogeom.structure.residues import ONE_LETTER_CODES, normalise_resname

PathLike = Union[str, os.PathLike]


@contextlib.contextmanager
def quiet_mdanalysis():
    """Silence MDAnalysis's warnings about guessed or missing attributes (they are handled here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@dataclass(eq=False, repr=False)
class Structure:
    """One protein conformation: a Cα cloud with residue names, numbers, chains and bonds.

    ca                  [N, 3] float64, Å
    resnames            list of N standard three-letter codes (aliases are normalised on creation)
    resids              [N] int64 residue numbers as in the file
    chain_ids           [N] str
    bonded_pairs        [M, 2] int64 residue indices (i, i+1); None = computed by
                        :func:`~cryogeom.structure.bonds.consecutive_bonded_pairs`
    icodes              [N] str insertion codes ('' for none)
    atom_positions      [A, 3] float64 Å (optional all-atom data: all four or none of these)
    atom_elements       [A] str element symbols ('C', 'N', 'O', 'S', 'H', ...)
    atom_residue_index  [A] int64 index into the N residues
    atom_names          [A] str (optional: may be None even with all-atom data)
    source              where it came from, for messages
    """

    ca: np.ndarray
    resnames: list[str]
    resids: np.ndarray
    chain_ids: np.ndarray
    bonded_pairs: np.ndarray | None = None
    icodes: np.ndarray | None = None
    atom_positions: np.ndarray | None = None
    atom_elements: np.ndarray | None = None
    atom_residue_index: np.ndarray | None = None
    atom_names: np.ndarray | None = None
    source: str = ""

    def __post_init__(self):
        self.ca = np.asarray(self.ca, dtype=np.float64)
        if self.ca.ndim != 2 or self.ca.shape[1] != 3:
            raise ValueError(f"Structure.ca must be [N, 3], got shape {self.ca.shape}")
        n = len(self.ca)
        self.resnames = [normalise_resname(r, source=self.source or None, resid=f"#{i}") for i, r in enumerate(self.resnames)]
        self.resids = np.asarray(self.resids, dtype=np.int64).reshape(-1)
        self.chain_ids = np.asarray(self.chain_ids, dtype=str).reshape(-1)
        self.icodes = np.full(n, "", dtype="<U1") if self.icodes is None else np.asarray(self.icodes, dtype=str).reshape(-1)
        for name in ("resnames", "resids", "chain_ids", "icodes"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Structure.{name} has {len(getattr(self, name))} entries for {n} residues")
        if self.bonded_pairs is None:
            self.bonded_pairs = consecutive_bonded_pairs(self.chain_ids, self.resids, self.icodes, self.ca)
        self.bonded_pairs = np.asarray(self.bonded_pairs, dtype=np.int64).reshape(-1, 2)
        if len(self.bonded_pairs) and (self.bonded_pairs.min() < 0 or self.bonded_pairs.max() >= n):
            raise ValueError("Structure.bonded_pairs index outside the residues")
        atom_fields = (self.atom_positions, self.atom_elements, self.atom_residue_index)
        if any(f is not None for f in atom_fields):
            if any(f is None for f in atom_fields):
                raise ValueError("all-atom data needs atom_positions, atom_elements and atom_residue_index together")
            self.atom_positions = np.asarray(self.atom_positions, dtype=np.float64)
            a = len(self.atom_positions)
            if self.atom_positions.shape != (a, 3):
                raise ValueError(f"Structure.atom_positions must be [A, 3], got {self.atom_positions.shape}")
            self.atom_elements = np.asarray(self.atom_elements, dtype=str).reshape(-1)
            self.atom_residue_index = np.asarray(self.atom_residue_index, dtype=np.int64).reshape(-1)
            if self.atom_names is not None:
                self.atom_names = np.asarray(self.atom_names, dtype=str).reshape(-1)
            for name in ("atom_elements", "atom_residue_index", "atom_names"):
                value = getattr(self, name)
                if value is not None and len(value) != a:
                    raise ValueError(f"Structure.{name} has {len(value)} entries for {a} atoms")
            if a and (self.atom_residue_index.min() < 0 or self.atom_residue_index.max() >= n):
                raise ValueError("Structure.atom_residue_index outside the residues")
        elif self.atom_names is not None:
            raise ValueError("Structure.atom_names given without atom positions")

    def __repr__(self) -> str:
        atoms = f", {self.n_atoms} atoms" if self.has_atoms else ""
        source = f", source={self.source!r}" if self.source else ""
        return (
            f"Structure({self.n_residues} residues, {len(set(self.chain_ids.tolist()))} chain(s), "
            f"{len(self.bonded_pairs)} bonded pairs{atoms}{source})"
        )

    @property
    def n_residues(self) -> int:
        return len(self.ca)

    @property
    def has_atoms(self) -> bool:
        """Whether all-atom data is present."""
        return self.atom_positions is not None

    @property
    def n_atoms(self) -> int:
        """Number of atoms of the all-atom data (0 if there is none)."""
        return 0 if self.atom_positions is None else len(self.atom_positions)

    @property
    def sequence(self) -> str:
        """One-letter sequence of all residues (chains concatenated)."""
        return "".join(ONE_LETTER_CODES[r] for r in self.resnames)

    def ca_centroid(self) -> np.ndarray:
        """Mean Cα position [3] (Å): the centre the package renders about."""
        return self.ca.mean(axis=0)

    def translated(self, shift_angstrom) -> "Structure":
        """A copy moved by ``shift_angstrom`` [3] (Cα and atoms alike)."""
        shift = np.asarray(shift_angstrom, dtype=np.float64).reshape(3)
        atoms = None if self.atom_positions is None else self.atom_positions + shift
        return self.with_coordinates(self.ca + shift, atoms)

    def centred(self) -> "Structure":
        """A copy with its Cα centroid at the origin (atoms moved by the same vector)."""
        return self.translated(-self.ca_centroid())

    def with_coordinates(self, ca_angstrom, atom_positions_angstrom=None) -> "Structure":
        """Same residues, chains and bonds at new coordinates ``ca`` [N, 3] (and atoms [A, 3]).

        Without ``atom_positions_angstrom`` the copy has no all-atom data (it would be stale).
        """
        ca = np.asarray(ca_angstrom, dtype=np.float64)
        if ca.shape != self.ca.shape:
            raise ValueError(f"new Cα coordinates have shape {ca.shape}, expected {self.ca.shape}")
        atoms = atom_positions_angstrom is not None and self.has_atoms
        if atom_positions_angstrom is not None and not self.has_atoms:
            raise ValueError("this structure has no all-atom data to place atom positions on")
        return Structure(
            ca=ca,
            resnames=list(self.resnames),
            resids=self.resids,
            chain_ids=self.chain_ids,
            bonded_pairs=self.bonded_pairs,
            icodes=self.icodes,
            atom_positions=atom_positions_angstrom if atoms else None,
            atom_elements=self.atom_elements if atoms else None,
            atom_residue_index=self.atom_residue_index if atoms else None,
            atom_names=self.atom_names if atoms else None,
            source=self.source,
        )

    def residue_label(self, i: int) -> str:
        """'A:GLY12' style label of residue ``i`` (for messages and plots)."""
        return f"{self.chain_ids[i]}:{self.resnames[i]}{self.resids[i]}{self.icodes[i]}"


class _UniverseAtomFrames:
    """Atom positions of one frame, read on demand from an MDAnalysis Universe (last frame cached)."""

    def __init__(self, universe, atom_indices: np.ndarray):
        self.universe = universe
        self.atom_indices = atom_indices
        self._cached: tuple[int, np.ndarray] | None = None

    def __call__(self, frame: int) -> np.ndarray:
        if self._cached is None or self._cached[0] != frame:
            with quiet_mdanalysis():
                ts = self.universe.trajectory[frame]
            self._cached = (frame, np.asarray(ts.positions[self.atom_indices], dtype=np.float64))
        return self._cached[1].copy()


@dataclass(eq=False, repr=False)
class Trajectory:
    """A sequence of conformations of one structure.

    structure    the topology with frame 0's coordinates
    ca           [F, N, 3] float64 Å, every frame
    atom_frames  all-atom positions: an array [F, A, 3], or a function frame -> [A, 3], or None
    coordinates  [F, K] float64: K known coordinates of every frame (a made landscape's ground
                 truth, e.g. two domains' closures), or None
    coordinate_names  K names of those coordinates
    """

    structure: Structure
    ca: np.ndarray
    atom_frames: np.ndarray | Callable[[int], np.ndarray] | None = field(default=None, repr=False)
    coordinates: np.ndarray | None = field(default=None, repr=False)
    coordinate_names: tuple[str, ...] = ()

    def __post_init__(self):
        self.ca = np.asarray(self.ca, dtype=np.float64)
        n = self.structure.n_residues
        if self.ca.ndim != 3 or self.ca.shape[1:] != (n, 3) or len(self.ca) == 0:
            raise ValueError(f"Trajectory.ca must be [F >= 1, {n}, 3], got shape {self.ca.shape}")
        if isinstance(self.atom_frames, np.ndarray) or isinstance(self.atom_frames, (list, tuple)):
            self.atom_frames = np.asarray(self.atom_frames, dtype=np.float64)
            if self.atom_frames.shape != (len(self.ca), self.structure.n_atoms, 3):
                raise ValueError(f"atom_frames must be [F, A, 3] = [{len(self.ca)}, {self.structure.n_atoms}, 3]")
        if self.coordinates is not None:
            self.coordinates = np.asarray(self.coordinates, dtype=np.float64)
            if self.coordinates.ndim != 2 or len(self.coordinates) != len(self.ca) or len(self.coordinate_names) != self.coordinates.shape[1]:
                raise ValueError(f"coordinates must be [F, K] = [{len(self.ca)}, len(coordinate_names)], got {self.coordinates.shape}")

    def __repr__(self) -> str:
        return f"Trajectory({self.n_frames} frames of {self.structure!r})"

    @property
    def n_frames(self) -> int:
        return len(self.ca)

    def __len__(self) -> int:
        return len(self.ca)

    def atom_positions(self, frame: int) -> np.ndarray:
        """All-atom positions [A, 3] (float64 Å) of ``frame`` (atoms of ``structure``)."""
        frame = range(self.n_frames)[frame]  # IndexError outside, negative counts from the end
        if self.atom_frames is None:
            raise ValueError("this trajectory has no all-atom data")
        if callable(self.atom_frames):
            return self.atom_frames(frame)
        return self.atom_frames[frame].copy()

    def frame(self, frame: int) -> Structure:
        """Frame ``frame`` as a :class:`Structure` (with atoms when the trajectory has them)."""
        frame = range(self.n_frames)[frame]
        atoms = self.atom_positions(frame) if self.atom_frames is not None else None
        return self.structure.with_coordinates(self.ca[frame], atoms)

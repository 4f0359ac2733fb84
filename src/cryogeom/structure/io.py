"""Structures and trajectories: the Cα cloud, residues, chains and bonds; reading and writing.

Reading goes through MDAnalysis, so anything it reads works: PDB (also multi-model and
compressed), mmCIF/PDBx (via gemmi; every model of a multi-model file is a frame), PSF + DCD,
GRO + XTC/TRR, TPR, PRMTOP + NetCDF, ...

What is kept
------------
* **Amino-acid residues**: residues whose name is a standard amino acid or a known alias
  (:mod:`cryogeom.structure.residues`), or that have backbone atoms N, CA and C. The latter with
  an unknown name (a modified residue such as SEP) raise InputError naming file and residue.
* Other residues (water, ions, ligands, caps) are dropped, with a warning that counts them.
* One Cα per residue: the first atom named CA. Alternate locations: per residue, atoms without
  an altloc plus those of the first altloc label that appears in it.
* Chains: the chain ID, or the segment ID where the chain ID is blank (PSF, GRO, CHARMM PDB).
* Bonded pairs: :func:`cryogeom.structure.bonds.consecutive_bonded_pairs` (same chain,
  consecutive numbering, Cα–Cα ≤ 4.3 Å in the first frame).
* All-atom data of the kept residues (hydrogens included) with elements from
  :func:`cryogeom.structure.elements.derive_elements`.

Writing uses MDAnalysis's writers through a temporary file that is renamed into place, so a
reader never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence, Union

import numpy as np

from cryogeom.errors import InputError
from cryogeom.structure.bonds import consecutive_bonded_pairs
from cryogeom.structure.elements import derive_elements
from cryogeom.structure.residues import ONE_LETTER_CODES, canonical_resname, normalise_resname

PathLike = Union[str, os.PathLike]


# --------------------------------------------------------------------------------------------
# Data types
# --------------------------------------------------------------------------------------------


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
            with _quiet():
                ts = self.universe.trajectory[frame]
            self._cached = (frame, np.asarray(ts.positions[self.atom_indices], dtype=np.float64))
        return self._cached[1].copy()


@dataclass(eq=False, repr=False)
class Trajectory:
    """A sequence of conformations of one structure.

    structure    the topology with frame 0's coordinates
    ca           [F, N, 3] float64 Å, every frame
    atom_frames  all-atom positions: an array [F, A, 3], or a function frame -> [A, 3], or None
    """

    structure: Structure
    ca: np.ndarray
    atom_frames: np.ndarray | Callable[[int], np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self):
        self.ca = np.asarray(self.ca, dtype=np.float64)
        n = self.structure.n_residues
        if self.ca.ndim != 3 or self.ca.shape[1:] != (n, 3) or len(self.ca) == 0:
            raise ValueError(f"Trajectory.ca must be [F >= 1, {n}, 3], got shape {self.ca.shape}")
        if isinstance(self.atom_frames, np.ndarray) or isinstance(self.atom_frames, (list, tuple)):
            self.atom_frames = np.asarray(self.atom_frames, dtype=np.float64)
            if self.atom_frames.shape != (len(self.ca), self.structure.n_atoms, 3):
                raise ValueError(f"atom_frames must be [F, A, 3] = [{len(self.ca)}, {self.structure.n_atoms}, 3]")

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


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_structure(path: PathLike, topology: PathLike | None = None, *, select: str | None = None) -> Structure:
    """The first frame of ``path`` as a :class:`Structure` (with all-atom data).

    ``path`` is a file with topology and coordinates (PDB, mmCIF, GRO, ...) or, with
    ``topology`` (PSF, TPR, PRMTOP, ...), a coordinate/trajectory file for it. ``select`` is an
    MDAnalysis selection applied first, e.g. ``"chainID A"`` or ``"segid PROA PROB"``.
    """
    universe, label = _open_universe(topology if topology is not None else path, path if topology is not None else None)
    structure, _, _ = _structure_from_universe(universe, label, select)
    return structure


def read_trajectory(
    topology: PathLike, trajectory: PathLike | Sequence[PathLike] | None = None, *, select: str | None = None
) -> Trajectory:
    """All frames of ``trajectory`` (or of a multi-model ``topology`` file) as a :class:`Trajectory`.

    The Cα of every frame is read now; all-atom positions are read per frame on demand.
    ``select``: an MDAnalysis selection applied first (see :func:`read_structure`).
    """
    universe, label = _open_universe(topology, trajectory)
    structure, ca_index, atom_index = _structure_from_universe(universe, label, select)
    ca = np.empty((len(universe.trajectory), structure.n_residues, 3))
    with _quiet():
        for f, ts in enumerate(universe.trajectory):
            ca[f] = ts.positions[ca_index]
        universe.trajectory[0]
    return Trajectory(structure, ca, _UniverseAtomFrames(universe, atom_index))


@contextlib.contextmanager
def _quiet():
    """Silence MDAnalysis's warnings about guessed or missing attributes (they are handled here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _require_file(path: PathLike, what: str) -> None:
    if not os.path.isfile(path):
        raise InputError(f"{os.fspath(path)}: file not found (expected {what})")


def _open_universe(topology: PathLike, trajectory=None):
    """An MDAnalysis Universe with at least one frame, and a label for messages."""
    import MDAnalysis as mda

    _require_file(topology, "a structure file: PDB, mmCIF, PSF, GRO, ... as read by MDAnalysis")
    files = [] if trajectory is None else [trajectory] if isinstance(trajectory, (str, os.PathLike)) else list(trajectory)
    for f in files:
        _require_file(f, "a trajectory or coordinate file: DCD, XTC, TRR, PDB, ...")
    label = " + ".join(os.fspath(p) for p in [topology, *files])
    with _quiet():
        try:
            universe = mda.Universe(os.fspath(topology), to_guess=())
        except Exception as exc:  # MDAnalysis raises many types for unreadable files
            raise InputError(f"cannot read {os.fspath(topology)} as a structure: {_first_line(exc)}") from None
        for f in files:
            if os.path.getsize(f) == 0:
                raise InputError(f"{os.fspath(f)}: empty trajectory (0 frames); expected at least one frame")
        if files:
            paths = [os.fspath(f) for f in files]
            try:
                universe.load_new(paths[0] if len(paths) == 1 else paths)
            except ValueError as exc:
                if "same number of atoms" in str(exc):
                    raise InputError(_atom_count_message(universe, paths, topology)) from None
                raise InputError(f"cannot read {', '.join(paths)} as a trajectory: {_first_line(exc)}") from None
            except Exception as exc:
                text = _first_line(exc)
                if "empty file" in text or "No frames" in text or "endoffile" in text:
                    raise InputError(f"{', '.join(paths)}: empty trajectory (0 frames); expected at least one frame") from None
                raise InputError(f"cannot read {', '.join(paths)} as a trajectory: {text}") from None
        elif _is_mmcif(topology):
            _load_mmcif_models(universe, topology)
    if universe._trajectory is None:
        raise InputError(f"{label} has no coordinates: give a coordinate or trajectory file with this topology")
    if len(universe.trajectory) == 0:
        raise InputError(f"{label}: empty trajectory (0 frames); expected at least one frame")
    return universe, label


def _is_mmcif(path: PathLike) -> bool:
    name = os.fspath(path).lower()
    return name.endswith((".cif", ".mmcif", ".cif.gz", ".mmcif.gz"))


def _load_mmcif_models(universe, path: PathLike) -> None:
    """Make every model of a multi-model mmCIF a frame (MDAnalysis reads only the first)."""
    import gemmi
    from MDAnalysis.coordinates.memory import MemoryReader

    structure = gemmi.read_structure(os.fspath(path))
    if len(structure) < 2:
        return
    frames = []
    for k, model in enumerate(structure):
        xyz = [(a.pos.x, a.pos.y, a.pos.z) for chain in model for residue in chain for a in residue]
        if len(xyz) != universe.atoms.n_atoms:
            raise InputError(
                f"{os.fspath(path)}: model {k + 1} has {len(xyz)} atoms but model 1 has {universe.atoms.n_atoms} "
                f"(expected every model to hold the same atoms)"
            )
        frames.append(xyz)
    universe.load_new(np.asarray(frames, dtype=np.float32), format=MemoryReader, order="fac")


def _atom_count_message(universe, paths, topology) -> str:
    import MDAnalysis as mda

    counts = []
    for p in paths:
        try:
            counts.append(f"{p} has {mda.coordinates.core.reader(p).n_atoms}")
        except Exception:  # pragma: no cover - the count is only for the message
            counts.append(f"{p} has a different number")
    return (
        f"atom count mismatch: {'; '.join(counts)} atoms per frame but topology {os.fspath(topology)} has "
        f"{universe.atoms.n_atoms} (expected the same atoms in the same order)"
    )


def _atom_attr(atoms, name: str):
    """A per-atom attribute as an array of str/float, or None if the file has none."""
    try:
        return np.asarray(getattr(atoms, name))
    except (AttributeError, ValueError):  # MDAnalysis NoDataError subclasses both
        return None


def _select(universe, label: str, select: str | None):
    """The atoms to read: all, or those of an MDAnalysis selection (InputError if bad or empty)."""
    if select is None:
        return universe.atoms
    try:
        atoms = universe.select_atoms(select)
    except Exception as exc:  # MDAnalysis raises SelectionError, ValueError, ... for bad selections
        raise InputError(f"invalid atom selection {select!r} for {label}: {_first_line(exc)}") from None
    if atoms.n_atoms == 0:
        raise InputError(f"atom selection {select!r} matches no atoms in {label}")
    return atoms


def _structure_from_universe(universe, label: str, select: str | None = None):
    """(Structure at frame 0, Cα atom indices [N], kept atom indices [A]; indices into universe.atoms)."""
    with _quiet():
        universe.trajectory[0]
        atoms = _select(universe, label, select)
        residues = atoms.residues
        names = np.char.strip(np.asarray(atoms.names, dtype=str))
        # residue of each atom, as an index into ``residues`` (sorted by MDAnalysis's resindex)
        resindex = np.searchsorted(np.asarray(residues.resindices), np.asarray(atoms.resindices))
        n_res = len(residues)
        raw_resnames = np.char.strip(np.asarray(residues.resnames, dtype=str))
        resids = np.asarray(residues.resids, dtype=np.int64)
        icodes = _atom_attr(residues, "icodes")
        icodes = np.full(n_res, "", dtype="<U1") if icodes is None else np.char.strip(icodes.astype(str))
        # chain: per residue, the chain ID of its first atom, else its segment ID
        first_atom = np.unique(resindex, return_index=True)[1]  # every residue here has atoms
        segids = np.char.strip(np.asarray(residues.segids, dtype=str))
        chain_attr = _atom_attr(atoms, "chainIDs")
        chains = segids
        if chain_attr is not None:
            res_chain = np.char.strip(chain_attr.astype(str))[first_atom]
            chains = np.where(res_chain != "", res_chain, segids)
        altlocs = _atom_attr(atoms, "altLocs")
        file_elements = _atom_attr(atoms, "elements")
        masses = _atom_attr(atoms, "masses")
        positions = np.asarray(atoms.positions, dtype=np.float64)

    # which residues are amino acids
    canonical = {r: canonical_resname(r) for r in np.unique(raw_resnames)}
    known = np.array([canonical[r] is not None for r in raw_resnames], dtype=bool)
    has = {nm: np.bincount(resindex[names == nm], minlength=n_res) > 0 for nm in ("N", "CA", "C")}
    protein = known | (has["N"] & has["CA"] & has["C"])
    for r in np.flatnonzero(protein & ~known):
        normalise_resname(raw_resnames[r], source=label, chain=chains[r], resid=f"{resids[r]}{icodes[r]}")

    keep = protein[resindex]
    if altlocs is not None:
        alt = np.char.strip(altlocs.astype(str))
        chosen = np.full(n_res, "", dtype=alt.dtype)
        with_alt = np.flatnonzero(alt != "")
        res_alt, first = np.unique(resindex[with_alt], return_index=True)
        chosen[res_alt] = alt[with_alt[first]]
        keep &= (alt == "") | (alt == chosen[resindex])

    ca_mask = keep & (names == "CA")
    ca_res, first = np.unique(resindex[ca_mask], return_index=True)
    ca_index = np.flatnonzero(ca_mask)[first]
    if len(ca_index) == 0:
        raise InputError(f"{label}: no Cα atoms (atoms named CA in amino-acid residues); expected a protein structure")
    with_ca = np.zeros(n_res, dtype=bool)
    with_ca[ca_res] = True
    keep &= with_ca[resindex]
    atom_index = np.flatnonzero(keep)

    _note_dropped(label, raw_resnames, ~protein, protein & ~with_ca)

    new_index = np.full(n_res, -1, dtype=np.int64)
    new_index[ca_res] = np.arange(len(ca_res))
    elements = derive_elements(
        names[atom_index],
        raw_resnames[resindex[atom_index]],
        None if file_elements is None else file_elements[atom_index],
        None if masses is None else masses[atom_index],
        source=label,
    )
    ca = positions[ca_index]
    chain_ids = chains[ca_res]
    pairs_by_numbering = consecutive_bonded_pairs(chain_ids, resids[ca_res], icodes[ca_res])
    bonded_pairs = consecutive_bonded_pairs(chain_ids, resids[ca_res], icodes[ca_res], ca)
    if len(bonded_pairs) < len(pairs_by_numbering):
        kept = set(map(tuple, bonded_pairs.tolist()))
        far = [p for p in map(tuple, pairs_by_numbering.tolist()) if p not in kept]
        i, j = far[0]
        warnings.warn(
            f"{label}: {len(far)} residue pairs with consecutive numbering are more than 4.3 Å apart and are "
            f"treated as chain breaks (missing residues, or a molecule split across the periodic box?); first: "
            f"{chain_ids[i]}:{resids[ca_res][i]} – {chain_ids[j]}:{resids[ca_res][j]}, {np.linalg.norm(ca[i] - ca[j]):.1f} Å",
            stacklevel=3,
        )
    structure = Structure(
        ca=ca,
        resnames=[canonical[r] for r in raw_resnames[ca_res]],
        resids=resids[ca_res],
        chain_ids=chain_ids,
        bonded_pairs=bonded_pairs,
        icodes=icodes[ca_res],
        atom_positions=positions[atom_index],
        atom_elements=elements,
        atom_residue_index=new_index[resindex[atom_index]],
        atom_names=names[atom_index],
        source=label,
    )
    return structure, atoms.indices[ca_index], atoms.indices[atom_index]


def _note_dropped(label: str, raw_resnames: np.ndarray, non_protein: np.ndarray, without_ca: np.ndarray) -> None:
    parts = []
    if non_protein.any():
        counts = Counter(raw_resnames[non_protein].tolist())
        listed = ", ".join(f"{name} ×{n}" for name, n in counts.most_common(6))
        more = ", ..." if len(counts) > 6 else ""
        parts.append(f"{int(non_protein.sum())} non-protein residues ({listed}{more})")
    if without_ca.any():
        parts.append(f"{int(without_ca.sum())} amino-acid residues without a CA atom")
    if parts:
        warnings.warn(f"{label}: dropped {' and '.join(parts)}", stacklevel=4)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_pdb(path: PathLike, structure: Structure, coords_angstrom=None) -> None:
    """Write a Cα-only PDB: one MODEL per frame of ``coords_angstrom`` [F, N, 3] (or [N, 3]; default
    the structure's Cα), with residue names, numbers, insertion codes and chains, and CONECT
    records for the bonded pairs (so viewers draw the trace). Opens in ChimeraX, PyMOL and VMD
    as a multi-frame model."""
    coords = structure.ca if coords_angstrom is None else np.asarray(coords_angstrom, dtype=np.float64)
    coords = coords[None] if coords.ndim == 2 else coords
    n = structure.n_residues
    if coords.ndim != 3 or coords.shape[1:] != (n, 3):
        raise ValueError(f"coords must be [F, {n}, 3] for this structure, got {coords.shape}")
    universe = _writable_universe(
        structure,
        atom_residue_index=np.arange(n),
        atom_names=np.full(n, "CA"),
        atom_elements=np.full(n, "C"),
        frames=coords,
    )
    universe.add_bonds([tuple(p) for p in structure.bonded_pairs.tolist()])
    _write_frames(path, universe, "PDB", multiframe=True, bonds="all")


def write_all_atom_pdb(path: PathLike, structure: Structure, atom_positions_angstrom=None) -> None:
    """Write the all-atom data of ``structure`` (positions default to its own, else [A, 3]) as PDB."""
    if not structure.has_atoms:
        raise ValueError("write_all_atom_pdb needs a structure with all-atom data")
    positions = structure.atom_positions if atom_positions_angstrom is None else np.asarray(atom_positions_angstrom, dtype=np.float64)
    if positions.shape != structure.atom_positions.shape:
        raise ValueError(f"atom positions must be {structure.atom_positions.shape}, got {positions.shape}")
    names = structure.atom_names if structure.atom_names is not None else structure.atom_elements
    universe = _writable_universe(
        structure,
        atom_residue_index=structure.atom_residue_index,
        atom_names=names,
        atom_elements=structure.atom_elements,
        frames=positions[None],
    )
    _write_frames(path, universe, "PDB", multiframe=False, bonds=None)


def write_dcd(path: PathLike, coords_angstrom) -> None:
    """Write coordinates [F, N, 3] (or [N, 3]) in Å as a CHARMM/NAMD DCD trajectory (float32)."""
    coords = np.asarray(coords_angstrom, dtype=np.float64)
    coords = coords[None] if coords.ndim == 2 else coords
    if coords.ndim != 3 or coords.shape[2] != 3 or len(coords) == 0:
        raise ValueError(f"coords must be [F >= 1, N, 3], got {coords.shape}")
    import MDAnalysis as mda
    from MDAnalysis.coordinates.memory import MemoryReader

    with _quiet():
        universe = mda.Universe.empty(coords.shape[1], trajectory=True)
        universe.load_new(coords.astype(np.float32), format=MemoryReader, order="fac")
    _write_frames(path, universe, "DCD", multiframe=True, bonds=None)


def _pdb_chain_letters(chain_ids: np.ndarray) -> np.ndarray:
    """One-character PDB chain IDs: the chain IDs if they all fit, else A, B, C ... by first appearance."""
    if all(len(c) <= 1 for c in chain_ids):
        return np.array([c if c else "A" for c in chain_ids])
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    order = {c: alphabet[i % len(alphabet)] for i, c in enumerate(dict.fromkeys(chain_ids.tolist()))}
    return np.array([order[c] for c in chain_ids])


def _writable_universe(structure: Structure, atom_residue_index, atom_names, atom_elements, frames):
    """An in-memory MDAnalysis Universe carrying the structure's residues and the given atoms/frames."""
    import MDAnalysis as mda
    from MDAnalysis.coordinates.memory import MemoryReader

    n_res = structure.n_residues
    atom_residue_index = np.asarray(atom_residue_index, dtype=np.int64)
    n_atoms = len(atom_residue_index)
    segment_names = list(dict.fromkeys(structure.chain_ids.tolist()))
    residue_segindex = np.array([segment_names.index(c) for c in structure.chain_ids])
    letters = _pdb_chain_letters(structure.chain_ids)
    with _quiet():
        universe = mda.Universe.empty(
            n_atoms,
            n_residues=n_res,
            n_segments=len(segment_names),
            atom_resindex=atom_residue_index,
            residue_segindex=residue_segindex,
            trajectory=True,
        )
        attributes = {
            "names": np.asarray(atom_names, dtype=object),
            "elements": np.asarray(atom_elements, dtype=object),
            "chainIDs": letters[atom_residue_index].astype(object),
            "altLocs": np.full(n_atoms, "", dtype=object),
            "occupancies": np.ones(n_atoms),
            "tempfactors": np.zeros(n_atoms),
            "record_types": np.full(n_atoms, "ATOM", dtype=object),
            "formalcharges": np.zeros(n_atoms, dtype=int),
            "resnames": np.asarray(structure.resnames, dtype=object),
            "resids": structure.resids,
            "icodes": structure.icodes.astype(object),
            "segids": np.array([s[:4] for s in segment_names], dtype=object),
        }
        for name, values in attributes.items():
            universe.add_TopologyAttr(name, values)
        universe.load_new(np.asarray(frames, dtype=np.float32), format=MemoryReader, order="fac")
    return universe


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: PathLike):
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, else removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_frames(path: PathLike, universe, file_format: str, *, multiframe: bool, bonds) -> None:
    """Write every frame of ``universe`` to ``path`` through a temporary file renamed into place."""
    import MDAnalysis as mda

    kwargs = {"bonds": bonds} if file_format == "PDB" else {}
    with atomic_output(path) as tmp:
        with _quiet(), mda.Writer(tmp, n_atoms=universe.atoms.n_atoms, format=file_format, multiframe=multiframe, **kwargs) as writer:
            for _ in universe.trajectory:
                writer.write(universe.atoms)

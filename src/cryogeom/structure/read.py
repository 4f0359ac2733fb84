"""Structures and trajectories: the Cα cloud, residues, chains and bonds; reading.

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

"""
from __future__ import annotations

import os
import warnings
from collections import Counter
from typing import Sequence

import numpy as np

from cryogeom.errors import InputError
from cryogeom.structure.bonds import consecutive_bonded_pairs
from cryogeom.structure.elements import derive_elements
from cryogeom.structure.residues import canonical_resname, normalise_resname
from cryogeom.structure.types import PathLike, Structure, Trajectory, _UniverseAtomFrames, quiet_mdanalysis



def read_structure(path: PathLike, topology: PathLike | None = None, *, select: str | None = None) -> Structure:
    """The first frame of ``path`` as a :class:`Structure` (with all-atom data).

    ``path`` is a file with topology and coordinates (PDB, mmCIF, GRO, ...) or, with
    ``topology`` (PSF, TPR, PRMTOP, ...), a coordinate/trajectory file for it. ``select`` is an
    MDAnalysis selection applied first, e.g. ``"chainID A"`` or ``"segid PROA PROB"``.
    """
    universe, label = _open_universe(topology if topology is not None else path, path if topology is not None else None)
    structure, _, _ = _structure_from_universe(universe, label, select)
    _check_coordinates(structure, label)
    return structure


def _check_coordinates(structure: Structure, label: str) -> None:
    """InputError for coordinates no protein has: non-finite, or every Cα at one point."""
    bad = ~np.isfinite(structure.ca).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{label}: residue {structure.residue_label(i)}: its Cα coordinates are not finite numbers")
    if structure.atom_positions is not None and not np.isfinite(structure.atom_positions).all():
        a = int(np.flatnonzero(~np.isfinite(structure.atom_positions).all(axis=1))[0])
        i = int(structure.atom_residue_index[a])
        raise InputError(f"{label}: residue {structure.residue_label(i)}: an atom's coordinates are not finite numbers")
    if len(structure.ca) > 1 and np.ptp(structure.ca, axis=0).max() < 0.5:
        raise InputError(f"{label}: every Cα lies within 0.5 Å of the others; expected the coordinates of a folded protein")


def read_trajectory(
    topology: PathLike, trajectory: PathLike | Sequence[PathLike] | None = None, *, select: str | None = None
) -> Trajectory:
    """All frames of ``trajectory`` (or of a multi-model ``topology`` file) as a :class:`Trajectory`.

    The Cα of every frame is read now; all-atom positions are read per frame on demand.
    ``select``: an MDAnalysis selection applied first (see :func:`read_structure`).
    """
    universe, label = _open_universe(topology, trajectory)
    structure, ca_index, atom_index = _structure_from_universe(universe, label, select)
    _check_coordinates(structure, label)
    ca = np.empty((len(universe.trajectory), structure.n_residues, 3))
    with quiet_mdanalysis():
        for f, ts in enumerate(universe.trajectory):
            ca[f] = ts.positions[ca_index]
        universe.trajectory[0]
    return Trajectory(structure, ca, _UniverseAtomFrames(universe, atom_index))


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
    if os.path.getsize(topology) == 0:
        raise InputError(f"{os.fspath(topology)}: empty file; expected a structure (PDB, mmCIF, GRO, ...)")
    with quiet_mdanalysis():
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
    with quiet_mdanalysis():
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

"""Writing structures and trajectories: PDB (Cα or all atoms, one or many models) and DCD.

Writing uses MDAnalysis's writers through :func:`cryogeom.files.atomic_output`, so a reader never
sees a half-written file.
"""

from __future__ import annotations

import numpy as np

from cryogeom.files import atomic_output
from cryogeom.structure.types import PathLike, Structure, quiet_mdanalysis


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

    with quiet_mdanalysis():
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
    with quiet_mdanalysis():
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


def _write_frames(path: PathLike, universe, file_format: str, *, multiframe: bool, bonds) -> None:
    """Write every frame of ``universe`` to ``path`` through a temporary file renamed into place."""
    import MDAnalysis as mda

    kwargs = {"bonds": bonds} if file_format == "PDB" else {}
    with atomic_output(path) as tmp:
        with quiet_mdanalysis(), mda.Writer(tmp, n_atoms=universe.atoms.n_atoms, format=file_format, multiframe=multiframe, **kwargs) as writer:
            for _ in universe.trajectory:
                writer.write(universe.atoms)

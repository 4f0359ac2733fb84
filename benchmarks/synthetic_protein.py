"""Synthetic proteins of any size for the scale benchmarks: a compact 3.8 Å Cα random walk.

``compact_ca_walk(n)`` grows a chain inside a sphere holding protein-like Cα density (one residue
per 135 Å³, i.e. radius (3 n · 135 / 4π)^(1/3) Å: 68 Å at n = 10,000): every step is 3.8 Å,
the Cα-Cα-Cα angle stays between 80° and 150°, and no two residues come closer than 3.8 Å
(steps that would clash or leave the sphere are redrawn). ``synthetic_structure(n)`` dresses it
as a :class:`cryogeom.structure.types.Structure` with backbone atoms (N, CA, C, O) and a Cβ placed in
each residue's local frame, so that every density model of :mod:`cryogeom.model.density` —
including the default backbone + side-chain one — builds from it through the package's own code.
"""

from __future__ import annotations

import numpy as np

BOND_ANGSTROM = 3.8
MIN_DISTANCE_ANGSTROM = 3.8
VOLUME_PER_RESIDUE_ANGSTROM3 = 135.0
STANDARD = ["ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE",
            "LEU", "LYS", "MET", "PHE", "PRO", "SER", "THR", "TRP", "TYR", "VAL"]  # fmt: skip


def compact_ca_walk(n: int, seed: int = 0) -> np.ndarray:
    """Cα positions [n, 3] (Å, centred): a self-avoiding 3.8 Å walk filling a protein-sized sphere."""
    rng = np.random.default_rng(seed)
    radius = (3 * n * VOLUME_PER_RESIDUE_ANGSTROM3 / (4 * np.pi)) ** (1 / 3)
    cell = MIN_DISTANCE_ANGSTROM
    grid: dict[tuple[int, int, int], list[int]] = {}
    ca = np.zeros((n, 3))

    def key(p):
        return tuple(np.floor(p / cell).astype(int))

    def clashes(p, upto):
        kx, ky, kz = key(p)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for dz in (-1, 0, 1):
                    for j in grid.get((kx + dx, ky + dy, kz + dz), ()):
                        if j < upto - 1 and np.sum((ca[j] - p) ** 2) < MIN_DISTANCE_ANGSTROM**2:
                            return True
        return False

    grid.setdefault(key(ca[0]), []).append(0)
    i, stuck = 1, 0
    while i < n:
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        p = ca[i - 1] + BOND_ANGSTROM * d
        ok = np.sum(p**2) < radius**2 or np.sum(p**2) < np.sum(ca[i - 1] ** 2)  # inside, or heading in
        if ok and i >= 2:
            u = ca[i - 2] - ca[i - 1]
            cos = np.dot(u, d) / BOND_ANGSTROM
            ok = np.cos(np.radians(150)) <= cos <= np.cos(np.radians(80))
        if ok:
            ok = not clashes(p, i)
        if ok:
            ca[i] = p
            grid.setdefault(key(p), []).append(i)
            i, stuck = i + 1, 0
            continue
        stuck += 1
        if stuck > 200:  # boxed in: step back a few residues and regrow
            back = min(i - 1, 5)
            for j in range(i - back, i):
                grid[key(ca[j])].remove(j)
            i -= back
            stuck = 0
    return ca - ca.mean(0)


def synthetic_structure(n: int, seed: int = 0):
    """A one-chain :class:`~cryogeom.structure.types.Structure` of ``n`` residues with N, CA, C, O, CB atoms."""
    from cryogeom.structure.types import Structure

    ca = compact_ca_walk(n, seed)
    rng = np.random.default_rng([seed, 1])
    resnames = [STANDARD[k] for k in rng.integers(0, len(STANDARD), n)]
    prev = ca[np.maximum(np.arange(n) - 1, 0)]
    nxt = ca[np.minimum(np.arange(n) + 1, n - 1)]
    e1 = nxt - prev
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    u = 2 * ca - prev - nxt
    u -= (u * e1).sum(1, keepdims=True) * e1
    fallback = np.cross(e1, [0.0, 0.0, 1.0])
    u = np.where(np.linalg.norm(u, axis=1, keepdims=True) > 1e-6, u, fallback)
    e2 = u / np.linalg.norm(u, axis=1, keepdims=True)
    e3 = np.cross(e1, e2)
    # Offsets (Å) from the Cα in the frame (e1 along the chain, e2 outwards, e3 = e1 x e2).
    offsets = {"N": (-1.2, 0.5, 0.6), "CA": (0.0, 0.0, 0.0), "C": (1.2, 0.5, -0.6), "O": (1.6, 1.2, -1.4), "CB": (0.0, 1.5, 0.4)}
    elements = {"N": "N", "CA": "C", "C": "C", "O": "O", "CB": "C"}
    names, pos, elem, res = [], [], [], []
    for name, (a, b, c) in offsets.items():
        names.append(np.full(n, name))
        pos.append(ca + a * e1 + b * e2 + c * e3)
        elem.append(np.full(n, elements[name]))
        res.append(np.arange(n))
    order = np.argsort(np.concatenate(res), kind="stable")
    return Structure(
        ca=ca,
        resnames=resnames,
        resids=np.arange(1, n + 1),
        chain_ids=np.full(n, "A"),
        atom_positions=np.concatenate(pos)[order],
        atom_elements=np.concatenate(elem)[order],
        atom_residue_index=np.concatenate(res)[order],
        atom_names=np.concatenate(names)[order],
        source=f"synthetic compact walk (n={n}, seed={seed})",
    )

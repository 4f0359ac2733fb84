"""Restrained minimisation that turns target Cα positions into a physical chain, frame by frame.

For targets y [N, 3] (e.g. domains moved rigidly, which run into each other at their interfaces
and pull their linkers apart) the Cα trace x minimises (Å², dimensionless weights)

    E(x) = λ Σ_i |x_i − y_i|²                                  pull towards the targets
         + Σ_springs k_ij (|x_i − x_j| − r⁰_ij)²               elastic network at reference lengths
         + k_bond Σ_bonded (|x_i − x_{i+1}| − r⁰)²              Cα–Cα bonds (≈ 3.8 Å)
         + k_rep Σ_{Cα pairs} relu(m_ij − |x_i − x_j|)²         non-bonded Cα, m = min(r⁰ − s, ca_min)
         + k_rep Σ_{atom pairs} relu(m_ab − |a − b|)²           heavy atoms of different residues,
                                                               m = min(r⁰ − s, atom_min)

with r⁰ the distance in the reference structure and s = ``slack``: pairs may not come closer than
``ca_min`` / ``atom_min`` unless they already were (then by at most ``slack``). Atoms a, b are
carried by their residues' local frames (:mod:`cryogeom.structure.frames`); covalently
consecutive residues are exempt from the repulsion. A path is relaxed by *tracking*: frame t
starts from frame t−1's solution moved by the change of the targets, so consecutive frames stay
close and a few L-BFGS iterations per frame suffice. Repulsive pairs come from Verlet lists
(cut-off minimum + ``skin``), rebuilt once any atom has moved by half the skin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.spatial import cKDTree

from cryogeom.structure.frames import AtomFrames


@dataclass
class RestrainedRelaxation:
    """The energy above for one reference structure (Cα [N, 3], atoms [A, 3], Å)."""

    reference_ca: np.ndarray
    reference_atoms: np.ndarray
    atom_frames: AtomFrames
    bonded_pairs: np.ndarray
    spring_pairs: np.ndarray
    spring_constants: np.ndarray
    target_weight: float = 0.05
    k_bond: float = 100.0
    k_repulsion: float = 100.0
    ca_min: float = 4.0
    atom_min: float = 3.2
    slack: float = 0.2
    skin: float = 1.0
    max_iter: int = 8
    max_rounds: int = 20
    tolerance: float = 0.15
    bond_tolerance: float = 0.3
    max_target_step: float = 1.0
    _lists: dict | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        n = len(self.reference_ca)
        self._bonded_next = np.zeros(n, bool)
        self._bonded_next[np.asarray(self.bonded_pairs).min(axis=1)] = True
        ca0 = self.reference_ca
        t = lambda a: torch.as_tensor(np.asarray(a))  # noqa: E731
        self._bonds = t(self.bonded_pairs)
        self._bond_r0 = t(np.linalg.norm(ca0[self.bonded_pairs[:, 0]] - ca0[self.bonded_pairs[:, 1]], axis=1))
        self._springs = t(self.spring_pairs)
        self._spring_k = t(np.asarray(self.spring_constants, dtype=np.float64))
        self._spring_r0 = t(np.linalg.norm(ca0[self.spring_pairs[:, 0]] - ca0[self.spring_pairs[:, 1]], axis=1))

    def _consecutive(self, residue_pairs: np.ndarray) -> np.ndarray:
        lo = residue_pairs.min(axis=1)
        return (np.abs(residue_pairs[:, 0] - residue_pairs[:, 1]) == 1) & self._bonded_next[lo]

    def atoms(self, ca: np.ndarray) -> np.ndarray:
        """All atoms [A, 3] carried by the Cα trace ``ca`` [N, 3]."""
        return self.atom_frames.place(torch.as_tensor(ca, dtype=torch.float64)).numpy()

    def build_lists(self, ca: np.ndarray) -> dict:
        """Verlet lists of the Cα pairs and atom pairs that could reach their minimum distance."""
        pairs = cKDTree(ca).query_pairs(self.ca_min + self.skin, output_type="ndarray")
        pairs = pairs[~self._consecutive(pairs)]
        ca_m = np.minimum(np.linalg.norm(self.reference_ca[pairs[:, 0]] - self.reference_ca[pairs[:, 1]], axis=1) - self.slack,
                          self.ca_min)
        atoms = self.atoms(ca)
        apairs = cKDTree(atoms).query_pairs(self.atom_min + self.skin, output_type="ndarray")
        res = self.atom_frames.atom_residue_index[apairs]
        apairs = apairs[(res[:, 0] != res[:, 1]) & ~self._consecutive(res)]
        atom_m = np.minimum(np.linalg.norm(self.reference_atoms[apairs[:, 0]] - self.reference_atoms[apairs[:, 1]], axis=1)
                            - self.slack, self.atom_min)
        near = np.linalg.norm(atoms[apairs[:, 0]] - atoms[apairs[:, 1]], axis=1) < atom_m + self.skin
        apairs, atom_m = apairs[near], atom_m[near]
        return dict(ca_pairs=torch.as_tensor(pairs), ca_min=torch.as_tensor(ca_m),
                    atom_pairs=torch.as_tensor(apairs), atom_min=torch.as_tensor(atom_m), atoms=atoms)

    def energy(self, x: torch.Tensor, target: torch.Tensor, lists: dict) -> torch.Tensor:
        """E(x) for the Cα trace ``x`` [N, 3] and targets ``target`` [N, 3] (see the module docstring)."""
        e = self.target_weight * ((x - target) ** 2).sum()
        s = self._springs
        e = e + (self._spring_k * ((x[s[:, 0]] - x[s[:, 1]]).norm(dim=-1) - self._spring_r0) ** 2).sum()
        b = self._bonds
        e = e + self.k_bond * (((x[b[:, 0]] - x[b[:, 1]]).norm(dim=-1) - self._bond_r0) ** 2).sum()
        p = lists["ca_pairs"]
        e = e + self.k_repulsion * (torch.relu(lists["ca_min"] - (x[p[:, 0]] - x[p[:, 1]]).norm(dim=-1)) ** 2).sum()
        atoms = self.atom_frames.place(x)
        p = lists["atom_pairs"]
        return e + self.k_repulsion * (torch.relu(lists["atom_min"] - (atoms[p[:, 0]] - atoms[p[:, 1]]).norm(dim=-1)) ** 2).sum()

    def worst_violation(self, x: np.ndarray, lists: dict) -> tuple[float, float]:
        """(deepest repulsive overlap, largest bond-length error), both in Å, of the Cα trace ``x``."""
        xt = torch.as_tensor(x)
        atoms = self.atom_frames.place(xt)
        p, q = lists["ca_pairs"], lists["atom_pairs"]
        overlap = max(_max_or_zero(lists["ca_min"] - (xt[p[:, 0]] - xt[p[:, 1]]).norm(dim=-1)),
                      _max_or_zero(lists["atom_min"] - (atoms[q[:, 0]] - atoms[q[:, 1]]).norm(dim=-1)))
        b = self._bonds
        bond = float(((xt[b[:, 0]] - xt[b[:, 1]]).norm(dim=-1) - self._bond_r0).abs().max())
        return overlap, bond

    def relax(self, start: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Cα [N, 3] minimising the energy from ``start`` towards ``target`` (both [N, 3], Å).

        Rounds of at most ``max_iter`` L-BFGS iterations, until no repulsive pair overlaps its
        minimum by more than ``tolerance`` and no bond is off by more than ``bond_tolerance``
        (at most ``max_rounds``); the Verlet lists are rebuilt whenever an atom has moved by half
        the skin since they were built.
        """
        x = np.array(start, dtype=np.float64)
        y = torch.as_tensor(target, dtype=torch.float64)
        for _ in range(self.max_rounds):
            if self._lists is None or self._moved(x) > self.skin / 2:
                self._lists = self.build_lists(x)
            lists = self._lists
            xt = torch.tensor(x, requires_grad=True)
            opt = torch.optim.LBFGS([xt], lr=1.0, max_iter=self.max_iter, history_size=10,
                                    tolerance_grad=1e-3, tolerance_change=1e-9, line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad()
                e = self.energy(xt, y, lists)
                e.backward()
                return e

            opt.step(closure)
            x = xt.detach().numpy().copy()
            if self._moved(x) > self.skin / 2:
                continue  # pairs outside the lists may now be close: rebuild and go on
            overlap, bond = self.worst_violation(x, lists)
            if overlap <= self.tolerance and bond <= self.bond_tolerance:
                break
        return x

    def _moved(self, ca: np.ndarray) -> float:
        return float(np.linalg.norm(self.atoms(ca) - self._lists["atoms"], axis=1).max())

    def track(self, targets: np.ndarray) -> np.ndarray:
        """Relax a path of targets [F, N, 3] (frame 0 = the reference) frame by frame; Cα [F, N, 3].

        Continuation: each frame starts from the previous result moved by the change of the
        targets; where targets jump by more than ``max_target_step`` (Å, any residue) the jump
        is walked in equal linear sub-steps, so the result does not depend on how finely the
        path is sampled. Runs single-threaded (thousands of small tensor operations, where
        threads only add overhead) and restores the thread count afterwards.
        """
        out = np.empty_like(targets)
        x, previous = self.reference_ca, targets[0]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for f, y in enumerate(targets):
                n_sub = max(1, int(np.ceil(np.linalg.norm(y - previous, axis=1).max() / self.max_target_step)))
                for k in range(1, n_sub + 1):
                    x = self.relax(x + (y - previous) / n_sub, previous + (y - previous) * (k / n_sub))
                out[f], previous = x, y
        finally:
            torch.set_num_threads(threads)
        return out


def _max_or_zero(values: torch.Tensor) -> float:
    return float(values.max().clamp_min(0.0)) if values.numel() else 0.0

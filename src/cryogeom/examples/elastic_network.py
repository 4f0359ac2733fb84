"""Elastic network of the Cα trace and its soft rigid-domain modes.

The anisotropic network model (ANM; Atilgan et al. 2001, Biophys. J. 80:505) joins every pair of
Cα closer than a cutoff by a Hookean spring at its reference length. Its Hessian [3N, 3N] is

    H_ij = −k_ij u_ij u_ijᵀ  (i ≠ j, u_ij the unit vector between them),   H_ii = −Σ_{j≠i} H_ij.

Here springs between different domains are softer (``interdomain_scale``) and springs between
residues close in sequence stiffer (``local_stiffness``). Restricting the network to rigid-body
moves of whole domains (rotation–translation blocks, RTB; Durand et al. 1994, Biopolymers 34:759;
Tama et al. 2000, Proteins 41:1) gives a small generalised eigenproblem

    (Pᵀ H P) v = λ (Pᵀ P) v,   P [3N, 6D]: δx_i = t_d + ω_d × (x_i − c_d) for residue i in domain d,

whose soft modes are the collective domain motions that least strain the contacts between domains:
domains slide, twist and open against each other instead of running into each other.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation


def network_springs(ca_angstrom: np.ndarray, cutoff_angstrom: float, domain: np.ndarray, segment: np.ndarray,
                    interdomain_scale: float = 0.3, local_stiffness: float = 10.0,
                    local_window: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Springs of the network: residue pairs [P, 2] (i < j, sorted) and spring constants [P].

    ``ca_angstrom`` [N, 3]; ``domain`` [N] and ``segment`` [N] (covalent stretch) labels. A pair
    closer than ``cutoff_angstrom`` gets k = 1, times ``interdomain_scale`` across domains, or
    ``local_stiffness`` when at most ``local_window`` apart in the same segment.
    """
    pairs = cKDTree(ca_angstrom).query_pairs(cutoff_angstrom, output_type="ndarray")
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    i, j = pairs[:, 0], pairs[:, 1]
    k = np.where(domain[i] == domain[j], 1.0, interdomain_scale)
    local = (np.abs(i - j) <= local_window) & (segment[i] == segment[j])
    return pairs, np.where(local, local_stiffness, k)


def anm_hessian(ca_angstrom: np.ndarray, pairs: np.ndarray, spring_constants: np.ndarray) -> sp.csr_matrix:
    """The ANM Hessian [3N, 3N] (sparse) of springs ``pairs`` [P, 2] with constants [P] at ``ca_angstrom`` [N, 3]."""
    n = len(ca_angstrom)
    i, j = pairs[:, 0], pairs[:, 1]
    u = ca_angstrom[i] - ca_angstrom[j]
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    block = spring_constants[:, None, None] * u[:, :, None] * u[:, None, :]  # [P, 3, 3]
    a, b = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")
    rows, cols, vals = [], [], []
    for r, c, sign in ((i, j, -1.0), (j, i, -1.0), (i, i, 1.0), (j, j, 1.0)):
        rows.append((3 * r[:, None, None] + a).ravel())
        cols.append((3 * c[:, None, None] + b).ravel())
        vals.append((sign * block).ravel())
    return sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(3 * n, 3 * n)).tocsr()


def domain_centres(ca_angstrom: np.ndarray, domain: np.ndarray) -> np.ndarray:
    """Cα centroid [D, 3] (Å) of each domain 0..D−1."""
    return np.stack([ca_angstrom[domain == d].mean(0) for d in range(int(domain.max()) + 1)])


def rigid_block_projection(ca_angstrom: np.ndarray, domain: np.ndarray) -> np.ndarray:
    """P [3N, 6D]: Cα displacements of per-domain (translation Å, rotation vector rad) moves.

    Columns 6d..6d+2 translate domain d, columns 6d+3..6d+5 rotate it about its Cα centroid
    (δx_i = ω × (x_i − c_d), linearised).
    """
    n, n_domains = len(ca_angstrom), int(domain.max()) + 1
    r = ca_angstrom - domain_centres(ca_angstrom, domain)[domain]  # [N, 3]
    skew = np.zeros((n, 3, 3))  # [r]× so that ω × r = −[r]× ω
    skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = -r[:, 2], r[:, 1], -r[:, 0]
    skew -= np.swapaxes(skew, 1, 2)
    p = np.zeros((n, 3, n_domains, 6))
    p[np.arange(n), :, domain, :3] = np.eye(3)
    p[np.arange(n), :, domain, 3:] = -skew
    return p.reshape(3 * n, 6 * n_domains)


def rigid_domain_modes(ca_angstrom: np.ndarray, domain: np.ndarray, hessian: sp.spmatrix,
                       n_modes: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_modes`` softest RTB modes: eigenvalues [K] and block vectors [K, D, 6].

    Block vector row d = (translation [3] Å, rotation vector [3] rad) of domain d per unit mode
    amplitude, normalised so that Σ_i |δx_i|² = 1 (Pᵀ P metric). The six rigid-body motions of
    the whole protein (eigenvalue 0) are skipped. Signs are fixed (largest component positive).
    """
    p = rigid_block_projection(ca_angstrom, domain)
    stiffness = p.T @ (hessian @ p)
    metric = p.T @ p
    n_blocks = metric.shape[0]
    if n_modes > n_blocks - 6:
        raise ValueError(f"{int(domain.max()) + 1} domains have only {n_blocks - 6} internal modes, asked for {n_modes}")
    values, vectors = scipy.linalg.eigh(stiffness, metric, subset_by_index=[6, 5 + n_modes])
    vectors = vectors.T
    biggest = np.abs(vectors).argmax(axis=1)
    vectors *= np.sign(vectors[np.arange(len(vectors)), biggest])[:, None]
    return values, vectors.reshape(n_modes, -1, 6)


def move_domains(ca_angstrom: np.ndarray, domain: np.ndarray, block_moves: np.ndarray) -> np.ndarray:
    """Cα [F, N, 3] after moving every domain rigidly by ``block_moves`` [F, D, 6].

    Each domain turns by the *finite* rotation exp([ω]×) about its reference Cα centroid and then
    shifts by t (Å), so domains stay exactly rigid at any amplitude.
    """
    centres = domain_centres(ca_angstrom, domain)
    moves = np.asarray(block_moves, dtype=np.float64)
    out = np.empty((len(moves),) + ca_angstrom.shape)
    for d, c in enumerate(centres):
        sel = domain == d
        rot = Rotation.from_rotvec(moves[:, d, 3:]).as_matrix()  # [F, 3, 3]
        out[:, sel] = np.einsum("fij,nj->fni", rot, ca_angstrom[sel] - c) + c + moves[:, d, None, :3]
    return out

"""All-pairs Kabsch RMSD between two sets of conformations, vectorised (paper App. G, eq. 12).

For centred clouds a, b [N, 3] with cross-covariance ``H = aᵀ b`` (3×3) and singular values
σ1 ≥ σ2 ≥ σ3, the RMSD after the best *proper* superposition is (Kabsch 1976)

    RMSD² = (‖a‖² + ‖b‖² − 2 (σ1 + σ2 + sign(det H) · σ3)) / N.

:func:`rmsd_matrix` evaluates this for all K1 × K2 pairs without a loop over pairs:

1. centre every conformation once; squared norms ‖a_i‖², ‖b_j‖²;
2. all 9·K1·K2 cross-covariance entries ``H_ij[x, y] = Σ_n a_i[n, x] b_j[n, y]`` by one matrix
   product per block of rows of A ([3·rows, N] @ [N, 3·K2]), which bounds the memory;
3. the signed singular-value sum in closed form, no SVD: σ1² is the largest eigenvalue of the
   symmetric 3×3 matrix HᵀH (trigonometric solution of its characteristic cubic, Smith 1961,
   Commun. ACM 4:168), and ``σ2 + sign(det H) σ3 = sqrt(‖H‖²_F − σ1² + 2 det H / σ1)``, which
   carries the reflection correction (see :func:`_signed_singular_value_sum`). The few pairs
   where this is ill-conditioned (degenerate, e.g. planar or linear, clouds; never seen for
   proteins) are detected and done by a batched SVD instead;
4. clamp the tiny negative RMSD² that rounding leaves for (near-)identical pairs.

Float64 throughout. Cost: 18·K1·K2·N flops in BLAS plus ~100 flops per pair elementwise; for
K = 4000, N = 214 that is a few seconds on two cores (``benchmarks/bench_emd_rmsd.py``).
"""

from __future__ import annotations

import numpy as np

from cryogeom.errors import InputError
from cryogeom.metrics.kabsch import as_coordinates

# Pairs per matrix product: the [3·rows, 3·K2] block of cross-covariances takes 72 bytes a pair
# (75 MB for 2**20 pairs), large enough for BLAS to run at full speed.
_PAIRS_PER_BLOCK = 1 << 20
# Pairs per call of the elementwise closed form: its ~40 temporaries stay in cache.
_PAIRS_PER_ELEMENTWISE_CHUNK = 1 << 13
# Where the closed form is ill-conditioned (see _signed_singular_value_sum) and an SVD takes over:
# 1 + cos 3φ below this bounds λ1's error by ~1e-13 λ1; (σ2 ± σ3)² below this times λ1 keeps
# the error of σ2 ± σ3 below ~1e-10 σ1.
_ILL_COS3PHI = 1e-6
_ILL_REST = 1e-6


def _as_set(x, name: str) -> np.ndarray:
    arr = as_coordinates(x, name)
    if arr.ndim != 3:
        raise InputError(f"{name}: expected a set of conformations of shape [K, N, 3], got {arr.shape}")
    if arr.shape[0] < 1:
        raise InputError(f"{name}: the set of conformations is empty (K = 0)")
    return arr


def _signed_singular_value_sum(h) -> np.ndarray:
    """σ1 + σ2 + sign(det H) σ3 of 3×3 matrices H given entry-wise: ``h[x][y]`` arrays of equal shape.

    σ1² = λ1 is the largest eigenvalue of C = HᵀH, and since σ2, σ3 ≥ 0 and det H = ±σ1σ2σ3,
    ``(σ2 + sign(det H) σ3)² = λ2 + λ3 ± 2σ2σ3 = tr C − λ1 + 2 det H / σ1``, so only λ1 is needed:
    the trigonometric solution of the characteristic cubic gives it (Smith 1961).

    Two situations lose digits, and there a batched SVD of H is used instead: the two smaller
    eigenvalues nearly coincide (cos 3φ ≈ −1; λ1 then has an error ~√ε·p), or the second
    bracket above is tiny next to λ1 (a nearly linear cloud, or a mirror pair with σ2 ≈ σ3),
    where the square root of a difference of large numbers would amplify rounding. Protein-like
    clouds never reach either; degenerate test clouds do.
    """
    (h00, h01, h02), (h10, h11, h12), (h20, h21, h22) = h
    c00 = h00 * h00 + h10 * h10 + h20 * h20
    c11 = h01 * h01 + h11 * h11 + h21 * h21
    c22 = h02 * h02 + h12 * h12 + h22 * h22
    c01 = h00 * h01 + h10 * h11 + h20 * h21
    c02 = h00 * h02 + h10 * h12 + h20 * h22
    c12 = h01 * h02 + h11 * h12 + h21 * h22
    det_h = h00 * (h11 * h22 - h12 * h21) - h01 * (h10 * h22 - h12 * h20) + h02 * (h10 * h21 - h11 * h20)
    trace = c00 + c11 + c22

    # λ1 = q + 2p cos φ with q = tr C / 3, p² = ‖C − qI‖²_F / 6, cos 3φ = det(C − qI) / (2p³).
    q = trace / 3.0
    d00, d11, d22 = c00 - q, c11 - q, c22 - q
    off = c01 * c01 + c02 * c02 + c12 * c12
    p2 = (d00 * d00 + d11 * d11 + d22 * d22 + 2.0 * off) / 6.0
    p = np.sqrt(p2)
    det_shifted = d00 * d11 * d22 + 2.0 * c01 * c02 * c12 - d00 * c12 * c12 - d11 * c02 * c02 - d22 * c01 * c01
    # p = 0 (C = qI, all eigenvalues q) gives det_shifted = 0 and cos 3φ = 0: λ1 = q, as it should.
    cos3phi = det_shifted / np.maximum(2.0 * p2 * p, np.finfo(np.float64).tiny)
    np.clip(cos3phi, -1.0, 1.0, out=cos3phi)
    lam1 = q + 2.0 * p * np.cos(np.arccos(cos3phi) / 3.0)

    s1 = np.sqrt(np.maximum(lam1, 0.0))
    rest = trace - lam1 + 2.0 * det_h / np.maximum(s1, np.finfo(np.float64).tiny)
    total = s1 + np.sqrt(np.maximum(rest, 0.0))

    ill = np.nonzero((cos3phi < -1.0 + _ILL_COS3PHI) | (rest < _ILL_REST * lam1))
    if ill[0].size:
        hm = np.stack([np.stack([h[x][y][ill] for y in range(3)], axis=-1) for x in range(3)], axis=-2)
        sv = np.linalg.svd(hm, compute_uv=False)
        total[ill] = sv[:, 0] + sv[:, 1] + np.where(np.linalg.det(hm) < 0, -1.0, 1.0) * sv[:, 2]
    return total


def rmsd_matrix(a, b, *, pairs_per_block: int = _PAIRS_PER_BLOCK) -> np.ndarray:
    """Kabsch RMSD (Å) of every pair: ``out[i, j] = RMSD(a[i], b[j])`` after proper superposition.

    Parameters
    ----------
    a : [K1, N, 3] Cα coordinates (Å), e.g. predicted conformations.
    b : [K2, N, 3] Cα coordinates (Å), e.g. ground-truth conformations; same residues as ``a``.
    pairs_per_block : pairs per block of the cross-covariance product (memory ≈ 72 bytes a pair).

    Returns
    -------
    [K1, K2] float64 array of RMSDs. Agrees with
    :func:`cryogeom.metrics.kabsch.rmsd_after_superposition` of each pair to ~1e-10 Å, except
    that identical pairs give ~1e-6 Å rather than 0: the formula subtracts quantities of size
    ‖a‖² ~ 1e5 Å², so float64 rounding leaves ~1e-12 Å² in RMSD².
    """
    a = _as_set(a, "a")
    b = _as_set(b, "b")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"a has {a.shape[1]} residues but b has {b.shape[1]}: both sets must hold the same residues")
    if pairs_per_block < 1:
        raise InputError(f"pairs_per_block: expected a positive integer, got {pairs_per_block}")
    k1, n, _ = a.shape
    k2 = b.shape[0]
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norm_a = np.einsum("knx,knx->k", a, a)
    norm_b = np.einsum("knx,knx->k", b, b)
    # b_t[n, y*K2 + j] = b[j, n, y]: one product gives, per row of a, all 3×K2 columns of H.
    b_t = np.ascontiguousarray(b.transpose(1, 2, 0).reshape(n, 3 * k2))

    out = np.empty((k1, k2), dtype=np.float64)
    gemm_rows = max(1, min(k1, pairs_per_block // k2))
    for start in range(0, k1, gemm_rows):
        stop = min(k1, start + gemm_rows)
        m = stop - start
        # a_t[x*m + i, n] = a[start+i, n, x]
        a_t = np.ascontiguousarray(a[start:stop].transpose(2, 0, 1).reshape(3 * m, n))
        prod = (a_t @ b_t).reshape(3, m, 3, k2)  # prod[x, i, y, j] = H_(start+i, j)[x, y]
        # The closed form runs on sub-blocks small enough for its temporaries to stay in cache.
        sub_rows = max(1, _PAIRS_PER_ELEMENTWISE_CHUNK // k2)
        for r0 in range(0, m, sub_rows):
            r1 = min(m, r0 + sub_rows)
            h = [[prod[x, r0:r1, y, :] for y in range(3)] for x in range(3)]
            s = _signed_singular_value_sum(h)
            msd = (norm_a[start + r0 : start + r1, None] + norm_b[None, :] - 2.0 * s) / n
            out[start + r0 : start + r1] = np.sqrt(np.maximum(msd, 0.0))
    return out

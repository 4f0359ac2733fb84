"""The geometry degradation loss (paper eq. 1).

For a predicted Cα cloud ``pred`` [B, N, 3] (Å) and the base structure ``base`` [N, 3] (Å)::

    L_geom = mean over b in batch, pairs a < c of ( log ‖r_ac‖² − log ‖r⁰_ac‖² )²

with ``r_ac = p_c − p_a`` in the prediction and ``r⁰_ac`` in the base. The paper's factor
N(N−1)/2 is a divisor (a mean over pairs); the norms are squared, as written in eq. 1, so a
uniform scaling of the cloud by s costs exactly (log s²)².

Guard for coincident residues
-----------------------------
The logarithm diverges as two residues meet. Every squared distance — predicted and base — is
clamped below at ``MIN_SQUARED_DISTANCE_ANGSTROM2`` = 1e-2 Å² (0.1 Å) before the logarithm:
``log max(‖r‖², ε)``. The loss therefore stays finite (a pair closer than 0.1 Å costs a constant,
≈ 53 for a 3.8 Å bonded pair) and its gradient is finite everywhere (zero inside the 0.1 Å
ball, as for ``torch.clamp``). Above 0.1 Å nothing is changed, so the loss is exactly 0 at the
base and scale behaviour is exact.

Four ways to choose the pairs
-----------------------------
* all pairs (the paper): :func:`geometry_loss`, a custom autograd function with a hand-written
  gradient, computed in blocks of rows of the upper triangle so that memory stays
  O(B · chunk · N), never O(B · N²). The gradient is formed in the same pass as the loss (the
  output is a scalar, so the backward only rescales it); cost O(B · N²).
* the k nearest neighbours of every residue in the base (paper footnote 4):
  :func:`nearest_neighbour_pairs`, cost O(B · k · N);
* all pairs closer than a cutoff in the base: :func:`pairs_within_cutoff`;
* the pairs 1…w bonds apart along each chain: :func:`chain_window_pairs` — the training's
  *chain loss* (weight δ), the Cα trace's local fold, which leaves hinges free.

The last three give a list of unordered pairs for :func:`geometry_loss_pairs` (also with a
hand-written gradient: one gather, one scatter-add); each pair counts once, so with k = N − 1
the k-NN loss equals the all-pairs loss. :class:`GeometryLoss` holds the
base structure and (optionally) the pair list, and moves with ``.to(device)``.
:func:`geometry_loss_reference` is the slow, obviously-correct float64 version the fast path is
tested against.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch.autograd.function import once_differentiable

from cryogeom.errors import InputError, require

MIN_SQUARED_DISTANCE_ANGSTROM2 = 1e-2
"""ε (Å²): squared distances are clamped below at ε before the logarithm (0.1 Å)."""

DEFAULT_CHUNK_ROWS = 16
"""Rows of the pair matrix per block of the all-pairs loss. Fewer rows make the per-block work on
the columns ([B, N, 4]) and the Python overhead count; more rows spread the block's rows in space,
which costs float32 digits in the gradient (see :func:`_all_pairs_loss_and_grad`). 16 was fastest
at N = 214…3000, B = 16…128 on 2 CPU cores, with float32 gradients within ~1e-5 of float64."""


# --------------------------------------------------------------------------------------------
# input checks


def _check_pred(pred, where: str) -> torch.Tensor:
    if not isinstance(pred, torch.Tensor):
        raise InputError(f"{where}: pred must be a torch.Tensor [B, N, 3], got {type(pred).__name__}")
    require(pred.ndim == 3 and pred.shape[-1] == 3,
            f"{where}: pred must have shape [B, N, 3] (Å), got {tuple(pred.shape)}")
    require(pred.is_floating_point(), f"{where}: pred must be floating point, got {pred.dtype}")
    return pred


def _check_base(base, n_residues: int | None, where: str) -> torch.Tensor:
    base = torch.as_tensor(base)
    require(base.ndim == 2 and base.shape[-1] == 3,
            f"{where}: base must have shape [N, 3] (Å), got {tuple(base.shape)}")
    require(base.shape[0] >= 2, f"{where}: base needs at least 2 residues, got {base.shape[0]}")
    if n_residues is not None:
        require(base.shape[0] == n_residues,
                f"{where}: pred has {n_residues} residues but base has {base.shape[0]}")
    require(bool(torch.isfinite(base).all()), f"{where}: base coordinates must be finite")
    return base


def _check_pairs(pairs, n_residues: int, where: str) -> torch.Tensor:
    pairs = torch.as_tensor(pairs)
    require(pairs.ndim == 2 and pairs.shape[-1] == 2,
            f"{where}: pairs must have shape [P, 2], got {tuple(pairs.shape)}")
    require(pairs.shape[0] > 0, f"{where}: pairs is empty (no residue pairs to compare)")
    require(not pairs.is_floating_point(), f"{where}: pairs must be integer residue indices")
    pairs = pairs.long()
    require(bool(((pairs >= 0) & (pairs < n_residues)).all()),
            f"{where}: pairs must index residues 0..{n_residues - 1}")
    require(bool((pairs[:, 0] != pairs[:, 1]).all()), f"{where}: pairs must join two different residues")
    return pairs


# --------------------------------------------------------------------------------------------
# all pairs: blocked loss and gradient


def _squared_distances(rows: torch.Tensor, cols: torch.Tensor, scratch: torch.Tensor | None = None):
    """Squared distances [..., c, M] (Å²) between ``rows`` [..., 3, c] and ``cols`` [..., 3, M].

    Computed from coordinate differences (not ‖a‖² + ‖b‖² − 2a·b, which cancels in float32).
    Returns ``(d2, scratch)``; ``scratch`` is a buffer of the same shape that may be reused.
    """
    d2 = None
    for k in range(3):
        a, b = rows[..., k, :, None], cols[..., k, None, :]
        scratch = torch.sub(a, b) if scratch is None else torch.sub(a, b, out=scratch)
        if d2 is None:
            d2 = scratch.square()
        else:
            d2.addcmul_(scratch, scratch)
    return d2, scratch


def _all_pairs_loss_and_grad(pred: torch.Tensor, base: torch.Tensor, chunk_rows: int | None, with_grad: bool):
    """Loss (0-dim, pred's dtype) and, if ``with_grad``, dL/dpred [B, N, 3]; no autograd.

    Works through the upper triangle of the pair matrix in blocks of rows [i0, i1) against
    columns [i0, N); pairs with column <= row inside the leading square are neutralised by
    setting both squared distances to 1 (residual 0, gradient 0).

    With the residual u_ac = log d²_ac − log d⁰²_ac and P = N(N−1)/2 pairs,
    dL/dd²_ac = 2 u_ac / (B P d²_ac) (0 where d²_ac < ε), and
    dL/dp_a = 2 Σ_c dL/dd²_ac (p_a − p_c). With g = u / d² this is evaluated per block as
    (Σ_c g_ac)(p_a − o) − Σ_c g_ac (p_c − o) by one matrix product, o being the centroid of the
    block's rows (so that near pairs, which carry most of the gradient, do not cancel in
    float32); the gradient is accumulated in float64.
    """
    eps = MIN_SQUARED_DISTANCE_ANGSTROM2
    n_batch, n_res, _ = pred.shape
    n_pairs = n_res * (n_res - 1) // 2
    xt = pred.transpose(1, 2).contiguous()  # [B, 3, N]
    x0t = base.T.contiguous()  # [3, N]
    chunk_rows = int(min(max(1, DEFAULT_CHUNK_ROWS if chunk_rows is None else chunk_rows), n_res))
    lower = torch.ones(chunk_rows, chunk_rows, dtype=torch.bool, device=pred.device).tril()
    if with_grad:
        ones = torch.ones(n_batch, n_res, 1, dtype=pred.dtype, device=pred.device)
        x_aug = torch.cat([pred, ones], dim=-1)  # [B, N, 4]: the 4th column gives Σ_c g_ac
        grad = torch.zeros(pred.shape, dtype=torch.float64, device=pred.device)
    total = torch.zeros((), dtype=torch.float64, device=pred.device)
    for i0 in range(0, n_res - 1, chunk_rows):
        i1 = min(i0 + chunk_rows, n_res)
        c = i1 - i0
        d2, scratch = _squared_distances(xt[:, :, i0:i1], xt[:, :, i0:])  # [B, c, M]
        d02, _ = _squared_distances(x0t[:, i0:i1], x0t[:, i0:])  # [c, M]
        tri = lower[:c, :c]
        d2[:, :, :c].masked_fill_(tri, 1.0)
        d02[:, :c].masked_fill_(tri, 1.0)
        log_d02 = d02.clamp_min_(eps).log_()
        below = None
        if with_grad and bool(d2.amin() < eps):
            below = d2 < eps
        d2.clamp_min_(eps)
        u = torch.log(d2, out=scratch).sub_(log_d02)  # residual [B, c, M]
        # Σ u² row by row in float32 (accurate for rows of N terms), then in float64.
        total += torch.linalg.vector_norm(u, dim=-1).to(torch.float64).square().sum()
        if not with_grad:
            continue
        g = u.div_(d2)  # dL/dd² up to the factor 2 / (B P)
        if below is not None:
            g.masked_fill_(below, 0.0)
        origin = x_aug[:, i0:i1].mean(dim=1, keepdim=True)
        origin[..., 3] = 0.0
        rows = x_aug[:, i0:i1] - origin  # [B, c, 4]: p_a − o | 1
        cols = x_aug[:, i0:] - origin  # [B, M, 4]: p_c − o | 1
        by_row = torch.bmm(g, cols)  # [B, c, 4]: Σ_c g (p_c − o) | Σ_c g
        by_col = torch.bmm(g.transpose(1, 2), rows)  # [B, M, 4]: Σ_a g (p_a − o) | Σ_a g
        grad[:, i0:i1] += by_row[..., 3:] * rows[..., :3] - by_row[..., :3]
        grad[:, i0:] += by_col[..., 3:] * cols[..., :3] - by_col[..., :3]
    loss = (total / (n_batch * n_pairs)).to(pred.dtype)
    if with_grad:
        return loss, (grad * (4.0 / (n_batch * n_pairs))).to(pred.dtype)
    return loss, None


class _LossWithGradient(torch.autograd.Function):
    """A scalar loss whose gradient w.r.t. ``pred`` is formed in the forward pass.

    ``loss_and_grad(pred, *args, with_grad=True) -> (loss, dloss/dpred)``; the other arguments
    get no gradient.
    """

    @staticmethod
    def forward(ctx, loss_and_grad, pred, *args):
        loss, grad = loss_and_grad(pred, *args, with_grad=True)
        ctx.save_for_backward(grad)
        ctx.n_args = len(args)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return (None, grad_output * grad) + (None,) * ctx.n_args


def geometry_loss(pred: torch.Tensor, base, *, chunk_rows: int | None = None) -> torch.Tensor:
    """All-pairs geometry degradation loss (paper eq. 1 as a mean; see the module docstring).

    ``pred`` [B, N, 3] Å, ``base`` [N, 3] Å (array or tensor; treated as a constant, no gradient).
    Returns a 0-dim tensor in pred's dtype on pred's device. Memory O(B · chunk_rows · N);
    ``chunk_rows`` (rows of the pair matrix per block, default
    :data:`DEFAULT_CHUNK_ROWS` = 16) sets the temporaries: about 9 · B · chunk_rows · N bytes in
    float32 (e.g. 28 MB at B = 128, N = 1,500). In float32 the loss agrees with the float64
    reference to ~1e-7 and the gradient to ~1e-5 (relative, Frobenius norm).
    Differentiable once (no double backward).
    """
    pred = _check_pred(pred, "geometry_loss")
    base = _check_base(base, pred.shape[1], "geometry_loss").to(dtype=pred.dtype, device=pred.device)
    if chunk_rows is not None:
        require(int(chunk_rows) >= 1, f"geometry_loss: chunk_rows must be >= 1, got {chunk_rows}")
    if pred.requires_grad and torch.is_grad_enabled():
        return _LossWithGradient.apply(_all_pairs_loss_and_grad, pred, base, chunk_rows)
    return _all_pairs_loss_and_grad(pred.detach(), base, chunk_rows, with_grad=False)[0]


# --------------------------------------------------------------------------------------------
# listed pairs (k nearest neighbours, cutoff)


def _log_squared_distances(x: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """log max(‖x_j − x_i‖², ε) for every pair (i, j): [..., P]."""
    d2 = (x[..., pairs[:, 1], :] - x[..., pairs[:, 0], :]).square().sum(dim=-1)
    return d2.clamp_min(MIN_SQUARED_DISTANCE_ANGSTROM2).log()


def _pairs_loss_and_grad(pred: torch.Tensor, pairs: torch.Tensor, base_log_d2: torch.Tensor, with_grad: bool):
    """Loss over listed pairs (0-dim) and, if ``with_grad``, dL/dpred [B, N, 3]; no autograd.

    ``pairs`` [P, 2], ``base_log_d2`` [P] = log max(d⁰², ε). Works residue-major ([N, B, 3]) so
    that gathers and scatter-adds move contiguous rows. With g = u / d² (0 where d² < ε),
    dL/dp_j = −dL/dp_i = 4 g (p_j − p_i) / (B P) for each pair (i, j).
    """
    eps = MIN_SQUARED_DISTANCE_ANGSTROM2
    n_batch = pred.shape[0]
    n_pairs = pairs.shape[0]
    x = pred.transpose(0, 1).contiguous()  # [N, B, 3]
    i, j = pairs[:, 0], pairs[:, 1]
    diff = x.index_select(0, j).sub_(x.index_select(0, i))  # [P, B, 3]
    d2 = diff.square().sum(dim=-1)  # [P, B]
    below = None
    if with_grad and bool(d2.amin() < eps):
        below = d2 < eps
    d2.clamp_min_(eps)
    u = torch.log(d2).sub_(base_log_d2[:, None])
    loss = (torch.linalg.vector_norm(u, dim=0).to(torch.float64).square().sum() / (n_batch * n_pairs)).to(pred.dtype)
    if not with_grad:
        return loss, None
    g = u.div_(d2)
    if below is not None:
        g.masked_fill_(below, 0.0)
    w = diff.mul_(g.mul_(4.0 / (n_batch * n_pairs))[..., None])  # dL/dp_j of each pair
    grad = torch.zeros_like(x).index_add_(0, j, w).index_add_(0, i, w, alpha=-1)
    return loss, grad.transpose(0, 1)


def _pairs_loss(pred: torch.Tensor, pairs: torch.Tensor, base_log_d2: torch.Tensor) -> torch.Tensor:
    if pred.requires_grad and torch.is_grad_enabled():
        return _LossWithGradient.apply(_pairs_loss_and_grad, pred, pairs, base_log_d2)
    return _pairs_loss_and_grad(pred.detach(), pairs, base_log_d2, with_grad=False)[0]


def geometry_loss_pairs(pred: torch.Tensor, base, pairs) -> torch.Tensor:
    """Geometry degradation loss over listed residue pairs: mean over batch and pairs.

    ``pred`` [B, N, 3] Å, ``base`` [N, 3] Å, ``pairs`` [P, 2] residue indices (each unordered pair
    listed once, e.g. from :func:`nearest_neighbour_pairs` or :func:`pairs_within_cutoff`).
    Cost and memory O(B · P); hand-written gradient (gather, then scatter-add).
    """
    pred = _check_pred(pred, "geometry_loss_pairs")
    base = _check_base(base, pred.shape[1], "geometry_loss_pairs").to(dtype=pred.dtype, device=pred.device)
    pairs = _check_pairs(pairs, pred.shape[1], "geometry_loss_pairs").to(pred.device)
    return _pairs_loss(pred, pairs, _log_squared_distances(base, pairs))


def _base_array(base, where: str) -> np.ndarray:
    base = base.detach().cpu().numpy() if isinstance(base, torch.Tensor) else np.asarray(base)
    require(base.ndim == 2 and base.shape[-1] == 3, f"{where}: base must have shape [N, 3] (Å), got {base.shape}")
    require(base.shape[0] >= 2, f"{where}: base needs at least 2 residues, got {base.shape[0]}")
    require(bool(np.isfinite(base).all()), f"{where}: base coordinates must be finite")
    return base.astype(np.float64)


def _unordered_unique(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    pairs = np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1).astype(np.int64)
    return np.unique(pairs, axis=0)


def nearest_neighbour_pairs(base, k: int) -> np.ndarray:
    """Unordered pairs [P, 2] (i < j, sorted, each once) joining every residue of ``base``
    [N, 3] (Å) to its ``k`` nearest residues in the base (paper footnote 4).

    k = N − 1 gives all N(N−1)/2 pairs. Ties at equal distance are broken by the k-d tree.
    """
    base = _base_array(base, "nearest_neighbour_pairs")
    n_res = base.shape[0]
    require(isinstance(k, (int, np.integer)) and 1 <= k <= n_res - 1,
            f"nearest_neighbour_pairs: k must be an integer in 1..{n_res - 1} (N - 1), got {k}")
    _, idx = cKDTree(base).query(base, k=k + 1)
    idx = idx.reshape(n_res, k + 1)
    # Drop each residue itself (normally first, but a coincident residue may come first).
    not_self = idx != np.arange(n_res)[:, None]
    order = np.argsort(~not_self, axis=1, kind="stable")[:, :k]
    neighbours = np.take_along_axis(idx, order, axis=1)
    rows = np.repeat(np.arange(n_res), k)
    return _unordered_unique(rows, neighbours.ravel())


def pairs_within_cutoff(base, cutoff_angstrom: float) -> np.ndarray:
    """Unordered pairs [P, 2] (i < j, sorted) of residues closer than ``cutoff_angstrom`` (Å) in
    ``base`` [N, 3] (Å) — the elastic-network neighbourhood of the paper's starting point."""
    base = _base_array(base, "pairs_within_cutoff")
    require(float(cutoff_angstrom) > 0, f"pairs_within_cutoff: cutoff_angstrom must be > 0, got {cutoff_angstrom}")
    pairs = cKDTree(base).query_pairs(r=float(cutoff_angstrom), output_type="ndarray")
    require(len(pairs) > 0, f"pairs_within_cutoff: no residue pairs closer than cutoff_angstrom={cutoff_angstrom}")
    return _unordered_unique(pairs[:, 0], pairs[:, 1])


def chain_window_pairs(bonded_pairs, n_residues: int, window: int) -> np.ndarray:
    """Unordered pairs [P, 2] (i < j, sorted) of residues 1…``window`` bonds apart along one chain.

    ``bonded_pairs`` [M, 2] are the chain's consecutive residues (``Structure.bonded_pairs``: chain
    ends and gaps left out), so no pair spans a chain break. With ``window`` = 3 the pairs (i, i+2)
    and (i, i+3) fix the Cα trace's virtual bond angles and torsions — its local fold — and leave
    the hinges between domains free to turn."""
    require(isinstance(window, (int, np.integer)) and window >= 1, f"chain_window_pairs: window must be an integer >= 1, got {window}")
    bonded = np.asarray(bonded_pairs, dtype=np.int64).reshape(-1, 2)
    nxt = np.full(int(n_residues), -1, dtype=np.int64)
    nxt[bonded[:, 0]] = bonded[:, 1]
    rows, cols = [], []
    j = np.arange(int(n_residues))
    for _ in range(int(window)):
        j = np.where(j >= 0, nxt[np.maximum(j, 0)], -1)
        ok = j >= 0
        rows.append(np.flatnonzero(ok))
        cols.append(j[ok])
    if not sum(len(r) for r in rows):
        return np.zeros((0, 2), dtype=np.int64)
    return _unordered_unique(np.concatenate(rows), np.concatenate(cols))


# --------------------------------------------------------------------------------------------
# the training-time object


class GeometryLoss(torch.nn.Module):
    """L_geom against a fixed base structure: ``GeometryLoss(base)(pred) -> scalar``.

    ``base`` [N, 3] Å. With neither ``k`` nor ``cutoff_angstrom`` all pairs are used
    (:func:`geometry_loss`); with ``k`` the k-nearest-neighbour pairs of the base, with
    ``cutoff_angstrom`` the pairs closer than the cutoff (:func:`geometry_loss_pairs`). The pair
    list and the base log-distances are computed once and held as buffers (``.to(device)``
    moves them). ``pred`` [B, N, 3] Å of any float dtype.
    """

    def __init__(self, base, k: int | None = None, cutoff_angstrom: float | None = None,
                 chunk_rows: int | None = None, pairs=None):
        super().__init__()
        require(sum(x is not None for x in (k, cutoff_angstrom, pairs)) <= 1, "GeometryLoss: give at most one of k, cutoff_angstrom, pairs")
        base_np = _base_array(base, "GeometryLoss")
        self.k = k
        self.cutoff_angstrom = cutoff_angstrom
        self.chunk_rows = chunk_rows
        self.n_residues = base_np.shape[0]
        self.register_buffer("base", torch.as_tensor(base_np))
        self.explicit_pairs = pairs is not None
        if k is None and cutoff_angstrom is None and pairs is None:
            self.register_buffer("pairs", None)
            self.register_buffer("base_log_d2", None)
        else:
            if pairs is None:
                pairs = nearest_neighbour_pairs(base_np, k) if k is not None else pairs_within_cutoff(base_np, cutoff_angstrom)
            pairs = _check_pairs(torch.as_tensor(np.asarray(pairs), dtype=torch.long), self.n_residues, "GeometryLoss")
            self.register_buffer("pairs", pairs)
            self.register_buffer("base_log_d2", _log_squared_distances(self.base, pairs))

    @property
    def n_pairs(self) -> int:
        """Number of residue pairs the loss averages over."""
        if self.pairs is None:
            return self.n_residues * (self.n_residues - 1) // 2
        return int(self.pairs.shape[0])

    def forward(self, pred: torch.Tensor) -> torch.Tensor:
        if self.pairs is None:
            return geometry_loss(pred, self.base, chunk_rows=self.chunk_rows)
        pred = _check_pred(pred, "GeometryLoss")
        require(pred.shape[1] == self.n_residues,
                f"GeometryLoss: pred has {pred.shape[1]} residues but base has {self.n_residues}")
        pairs = self.pairs.to(pred.device)
        return _pairs_loss(pred, pairs, self.base_log_d2.to(dtype=pred.dtype, device=pred.device))

    def extra_repr(self) -> str:
        mode = "all pairs" if self.pairs is None else (f"k={self.k}" if self.k is not None else "given pairs" if self.explicit_pairs else f"cutoff={self.cutoff_angstrom} Å")
        return f"n_residues={self.n_residues}, {mode}, n_pairs={self.n_pairs}"


# --------------------------------------------------------------------------------------------
# reference


def geometry_loss_reference(pred: torch.Tensor, base) -> torch.Tensor:
    """Slow, obviously-correct all-pairs L_geom in float64 with plain autograd (tests, benchmarks).

    Materialises all B · N(N−1)/2 pair distances. Returns a float64 0-dim tensor.
    """
    pred = _check_pred(pred, "geometry_loss_reference").to(torch.float64)
    base = _check_base(base, pred.shape[1], "geometry_loss_reference").to(dtype=torch.float64, device=pred.device)
    a, c = torch.triu_indices(pred.shape[1], pred.shape[1], offset=1, device=pred.device)
    d2 = ((pred[:, c] - pred[:, a]) ** 2).sum(-1)
    d02 = ((base[c] - base[a]) ** 2).sum(-1)
    eps = MIN_SQUARED_DISTANCE_ANGSTROM2
    return ((torch.clamp(d2, min=eps).log() - torch.clamp(d02, min=eps).log()) ** 2).mean()

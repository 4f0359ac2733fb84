"""The geometry degradation loss (paper eq. 1 as a mean over pairs): properties and fast path."""

import math

import numpy as np
import pytest
import torch

from conftest import tol
from cryogeom.errors import InputError
from cryogeom.imaging.rotations import random_rotations
from cryogeom.losses import (
    MIN_SQUARED_DISTANCE_ANGSTROM2,
    GeometryLoss,
    chain_window_pairs,
    geometry_loss,
    geometry_loss_pairs,
    geometry_loss_reference,
    nearest_neighbour_pairs,
    pairs_within_cutoff,
)


def random_walk(n, step=3.8, seed=0):
    """A Cα-like chain: n points joined by steps of ``step`` Å in random directions, centred."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(size=(n - 1, 3))
    steps *= step / np.linalg.norm(steps, axis=1, keepdims=True)
    x = np.concatenate([np.zeros((1, 3)), np.cumsum(steps, axis=0)])
    return x - x.mean(axis=0)


def perturbed(base, batch, sigma=0.7, seed=1, dtype=torch.float64):
    rng = np.random.default_rng(seed)
    return torch.as_tensor(base[None] + sigma * rng.normal(size=(batch,) + base.shape), dtype=dtype)


def rigidly_moved(pred, seed=2):
    """Each cloud of ``pred`` [B, N, 3] turned by its own random proper rotation and shifted."""
    rng = np.random.default_rng(seed)
    rot = torch.as_tensor(random_rotations(pred.shape[0], rng), dtype=pred.dtype)
    shift = torch.as_tensor(rng.uniform(-50, 50, size=(pred.shape[0], 1, 3)), dtype=pred.dtype)
    return pred @ rot.transpose(1, 2) + shift


def loss_variants(base):
    """Every way of computing L_geom over all pairs, as functions pred -> loss."""
    n = base.shape[0]
    return {
        "fast": lambda p: geometry_loss(p, base),
        "fast_chunk3": lambda p: geometry_loss(p, base, chunk_rows=3),
        "module_all": GeometryLoss(base),
        "knn_all": GeometryLoss(base, k=n - 1),
        "reference": lambda p: geometry_loss_reference(p, base),
    }


# ----------------------------------------------------------------------------- properties


@pytest.mark.parametrize("variant", ["fast", "fast_chunk3", "module_all", "knn_all", "reference"])
def test_zero_at_base_for_every_batch_element(variant, dtype):
    base = random_walk(40)
    f = loss_variants(base)[variant]
    pred = torch.as_tensor(np.repeat(base[None], 5, axis=0), dtype=dtype)
    assert float(f(pred)) == pytest.approx(0.0, abs=tol(dtype))
    # One element away from the base: the loss is that element's loss divided by the batch size.
    moved = pred.clone()
    moved[3] = perturbed(base, 1, dtype=dtype)[0]
    assert float(f(moved)) > 1e-3
    assert float(f(moved)) == pytest.approx(float(f(moved[3:4])) / 5, rel=tol(dtype))


@pytest.mark.parametrize("variant", ["fast", "fast_chunk3", "module_all", "knn_all", "reference"])
def test_invariant_to_rotation_and_translation_of_the_prediction(variant, dtype):
    base = random_walk(30)
    f = loss_variants(base)[variant]
    pred = perturbed(base, 4, dtype=dtype)
    assert float(f(pred)) > 1e-3
    assert float(f(rigidly_moved(pred))) == pytest.approx(float(f(pred)), rel=10 * tol(dtype))


def test_knn_and_cutoff_losses_are_invariant_to_rigid_motion():
    base = random_walk(60)
    pred = perturbed(base, 3)
    for f in (GeometryLoss(base, k=5), GeometryLoss(base, cutoff_angstrom=9.0)):
        assert float(f(pred)) > 1e-3
        assert float(f(rigidly_moved(pred))) == pytest.approx(float(f(pred)), rel=1e-12)


@pytest.mark.parametrize("scale", [0.5, 1.3, 2.0])
@pytest.mark.parametrize("variant", ["fast", "fast_chunk3", "module_all", "knn_all", "reference"])
def test_uniform_scaling_costs_log_of_scale_squared_squared(variant, scale, dtype):
    base = random_walk(25)
    f = loss_variants(base)[variant]
    pred = scale * torch.as_tensor(np.stack([base, base @ random_rotations(1, 3)[0].T]), dtype=dtype)
    assert float(f(pred)) == pytest.approx(math.log(scale**2) ** 2, rel=10 * tol(dtype))


def test_knn_and_cutoff_scaling_is_exact_too():
    base = random_walk(50)
    for f in (GeometryLoss(base, k=4), GeometryLoss(base, cutoff_angstrom=8.0)):
        assert float(f(torch.as_tensor(1.7 * base[None]))) == pytest.approx(math.log(1.7**2) ** 2, rel=1e-12)


@pytest.mark.parametrize("distance", [1.0, 0.3, 1e-1, 1e-3, 1e-6, 0.0])
@pytest.mark.parametrize("variant", ["fast", "knn", "reference"])
def test_finite_loss_and_gradient_as_two_residues_meet(variant, distance, dtype):
    base = random_walk(12)
    f = {
        "fast": lambda p: geometry_loss(p, base, chunk_rows=5),
        "knn": GeometryLoss(base, k=3),
        "reference": lambda p: geometry_loss_reference(p, base),
    }[variant]
    pred = torch.as_tensor(base, dtype=dtype).clone()[None]
    pred[0, 5] = pred[0, 4] + distance * torch.tensor([0.6, 0.0, 0.8], dtype=dtype)
    pred.requires_grad_(True)
    loss = f(pred)
    (grad,) = torch.autograd.grad(loss, pred)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert loss.item() > 0


def test_loss_grows_as_two_residues_approach_until_the_guard():
    base = random_walk(12)
    losses, pair_terms = [], []
    for distance in [3.0, 1.0, 0.3, 0.11, 0.05, 0.0]:
        pred = torch.as_tensor(base).clone()[None]
        pred[0, 5] = pred[0, 4] + distance * torch.tensor([0.6, 0.0, 0.8], dtype=pred.dtype)
        losses.append(float(geometry_loss(pred, base)))
        pair_terms.append(float(geometry_loss_pairs(pred, base, [[4, 5]])))
    assert losses[:5] == sorted(losses[:5])
    # The pair (4, 5) itself: both 0.05 Å and 0 Å are inside the 0.1 Å guard, clamped at ε.
    expected = (math.log(MIN_SQUARED_DISTANCE_ANGSTROM2) - math.log(np.sum((base[5] - base[4]) ** 2))) ** 2
    assert pair_terms[4] == pytest.approx(expected, rel=1e-12)
    assert pair_terms[5] == pytest.approx(expected, rel=1e-12)
    assert pair_terms[3] < expected


def test_guard_clamps_coincident_residues_at_epsilon():
    # Two residues only: the loss is (log ε − log d0²)² once they coincide, and grad is 0.
    base = np.array([[0.0, 0.0, 0.0], [3.8, 0.0, 0.0]])
    pred = torch.zeros(1, 2, 3, dtype=torch.float64, requires_grad=True)
    loss = geometry_loss(pred, base)
    expected = (math.log(MIN_SQUARED_DISTANCE_ANGSTROM2) - math.log(3.8**2)) ** 2
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    (grad,) = torch.autograd.grad(loss, pred)
    assert torch.equal(grad, torch.zeros_like(grad))


# ----------------------------------------------------------------------------- fast path vs reference


def test_custom_backward_passes_gradcheck():
    base = random_walk(7)
    pred = perturbed(base, 2, sigma=1.0).requires_grad_(True)
    for chunk_rows in (1, 3):
        assert torch.autograd.gradcheck(lambda p: geometry_loss(p, base, chunk_rows=chunk_rows), (pred,))


@pytest.mark.parametrize("chunk_rows", [None, 1, 7, 64])
def test_fast_path_equals_float64_reference_values_and_gradients(chunk_rows, dtype):
    base = random_walk(64, seed=4)
    pred64 = perturbed(base, 6, sigma=1.0, seed=5)
    ref_pred = pred64.clone().requires_grad_(True)
    ref = geometry_loss_reference(ref_pred, base)
    upstream = 0.37  # a random upstream gradient (the output is a scalar)
    (ref_grad,) = torch.autograd.grad(upstream * ref, ref_pred)

    pred = pred64.to(dtype).requires_grad_(True)
    loss = geometry_loss(pred, base, chunk_rows=chunk_rows)
    assert loss.dtype == dtype
    (grad,) = torch.autograd.grad(upstream * loss, pred)
    assert loss.item() == pytest.approx(ref.item(), rel=tol(dtype))
    assert float((grad.double() - ref_grad).norm() / ref_grad.norm()) < tol(dtype)


def test_fast_path_gradient_is_accurate_in_float32_for_a_large_protein():
    # The gradient is a difference of sums over ~N terms per residue; in float32 that loses
    # digits unless each block works about a nearby origin. Check against float64 at N = 1500.
    base = random_walk(1500, seed=6) + 200.0  # off-centre on purpose
    pred32 = perturbed(base, 2, sigma=1.0, seed=7).float()
    loss64, grad64 = _loss_and_grad(pred32.double(), base, geometry_loss)  # same rounded input
    loss32, grad32 = _loss_and_grad(pred32, base, geometry_loss)
    assert loss32.item() == pytest.approx(loss64.item(), rel=1e-6)
    # ~6e-6 with the default 16-row blocks; one block of all 1500 rows gives ~4e-5.
    assert float((grad32.double() - grad64).norm() / grad64.norm()) < 2e-5


def _loss_and_grad(pred, base, f):
    pred = pred.clone().requires_grad_(True)
    loss = f(pred, base)
    (grad,) = torch.autograd.grad(loss, pred)
    return loss.detach(), grad


def test_no_grad_value_equals_grad_value():
    base = random_walk(50)
    pred = perturbed(base, 3)
    with torch.no_grad():
        plain = geometry_loss(pred, base, chunk_rows=8)
    assert float(plain) == pytest.approx(geometry_loss(pred.requires_grad_(True), base, chunk_rows=8).item(), rel=1e-14)


# ----------------------------------------------------------------------------- neighbour pairs


def test_knn_with_all_neighbours_equals_all_pairs(dtype):
    base = random_walk(35)
    pairs = nearest_neighbour_pairs(base, 34)
    assert pairs.shape == (35 * 34 // 2, 2)
    pred = perturbed(base, 4, dtype=dtype).requires_grad_(True)
    knn = GeometryLoss(base, k=34)(pred)
    (g_knn,) = torch.autograd.grad(knn, pred)
    full = geometry_loss(pred, base)
    (g_full,) = torch.autograd.grad(full, pred)
    assert knn.item() == pytest.approx(full.item(), rel=tol(dtype))
    assert float((g_knn - g_full).norm() / g_full.norm()) < tol(dtype)


@pytest.mark.parametrize("k", [1, 4, 16])
def test_knn_pairs_are_the_true_k_nearest(k):
    rng = np.random.default_rng(8)
    base = rng.uniform(-20, 20, size=(120, 3))
    dist = np.linalg.norm(base[:, None] - base[None], axis=-1)  # brute force, no k-d tree
    np.fill_diagonal(dist, np.inf)
    nearest = np.argsort(dist, axis=1)[:, :k]
    expected = {(min(i, j), max(i, j)) for i in range(len(base)) for j in nearest[i]}
    pairs = nearest_neighbour_pairs(base, k)
    assert {tuple(p) for p in pairs.tolist()} == expected
    assert len(pairs) == len(expected)  # each unordered pair once
    assert (pairs[:, 0] < pairs[:, 1]).all()


def test_knn_keeps_k_neighbours_when_base_residues_coincide():
    base = random_walk(20)
    base[7] = base[3]
    pairs = nearest_neighbour_pairs(base, 3)
    assert (pairs[:, 0] != pairs[:, 1]).all()
    assert (3, 7) in {tuple(p) for p in pairs.tolist()}
    loss = GeometryLoss(base, k=3)(torch.as_tensor(base[None]))
    assert loss.item() == 0.0


def test_cutoff_pairs_are_all_pairs_within_the_cutoff():
    base = random_walk(80, seed=9)
    dist = np.linalg.norm(base[:, None] - base[None], axis=-1)
    i, j = np.nonzero(np.triu(dist < 10.0, k=1))
    assert {tuple(p) for p in pairs_within_cutoff(base, 10.0).tolist()} == set(zip(i.tolist(), j.tolist()))


def test_knn_loss_is_the_mean_over_its_pairs():
    base = random_walk(40)
    pred = perturbed(base, 3)
    pairs = nearest_neighbour_pairs(base, 5)
    x, x0 = pred.numpy(), base
    d2 = ((x[:, pairs[:, 0]] - x[:, pairs[:, 1]]) ** 2).sum(-1)
    d02 = ((x0[pairs[:, 0]] - x0[pairs[:, 1]]) ** 2).sum(-1)
    expected = np.mean((np.log(d2) - np.log(d02)) ** 2)
    assert float(GeometryLoss(base, k=5)(pred)) == pytest.approx(expected, rel=1e-12)
    assert float(geometry_loss_pairs(pred, base, pairs)) == pytest.approx(expected, rel=1e-12)


def test_module_moves_buffers_and_accepts_float32():
    base = random_walk(30)
    module = GeometryLoss(base, k=6)
    assert module.n_pairs == len(module.pairs)
    assert GeometryLoss(base).n_pairs == 30 * 29 // 2
    pred = perturbed(base, 2, dtype=torch.float32)
    assert module(pred).dtype == torch.float32
    assert float(module.to(torch.float32)(pred)) == pytest.approx(float(module(pred.double())), rel=1e-5)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, needle",
    [
        (lambda b: geometry_loss(torch.zeros(2, 10, 2), b), "pred must have shape"),
        (lambda b: geometry_loss(torch.zeros(2, 9, 3), b), "pred has 9 residues but base has 10"),
        (lambda b: geometry_loss(torch.zeros(2, 10, 3), b, chunk_rows=0), "chunk_rows"),
        (lambda b: nearest_neighbour_pairs(b, 10), "k must be an integer in 1..9"),
        (lambda b: nearest_neighbour_pairs(b, 0), "k must be"),
        (lambda b: pairs_within_cutoff(b, 0.5), "no residue pairs"),
        (lambda b: GeometryLoss(b, k=3, cutoff_angstrom=8.0), "at most one of"),
        (lambda b: GeometryLoss(b[:1]), "at least 2 residues"),
        (lambda b: GeometryLoss(b, k=3)(torch.zeros(1, 8, 3)), "pred has 8 residues"),
        (lambda b: geometry_loss_pairs(torch.zeros(1, 10, 3), b, [[0, 10]]), "pairs must index residues"),
    ],
)
def test_bad_input_raises_one_line_input_error(call, needle):
    with pytest.raises(InputError, match=needle) as info:
        call(random_walk(10))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("distance", [0.3, 0.05, 1e-3, 0.0])
def test_fast_gradient_equals_reference_inside_and_outside_the_guard(distance):
    base = random_walk(12)
    pred = perturbed(base, 2, sigma=0.3)
    pred[1, 5] = pred[1, 4] + distance * torch.tensor([0.6, 0.0, 0.8], dtype=pred.dtype)
    loss, grad = _loss_and_grad(pred, base, lambda p, b: geometry_loss(p, b, chunk_rows=5))
    ref, ref_grad = _loss_and_grad(pred, base, geometry_loss_reference)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-10, atol=1e-12)


def plain_pairs_loss(pred, base, pairs):
    """The pair loss written out in float64 with plain autograd (a reference for the fast path)."""
    pred, base = pred.double(), torch.as_tensor(base, dtype=torch.float64)
    i, j = torch.as_tensor(pairs)[:, 0], torch.as_tensor(pairs)[:, 1]
    d2 = ((pred[:, j] - pred[:, i]) ** 2).sum(-1)
    d02 = ((base[j] - base[i]) ** 2).sum(-1)
    eps = MIN_SQUARED_DISTANCE_ANGSTROM2
    return ((torch.clamp(d2, min=eps).log() - torch.clamp(d02, min=eps).log()) ** 2).mean()


def test_pairs_custom_backward_passes_gradcheck():
    base = random_walk(8)
    pairs = nearest_neighbour_pairs(base, 3)
    pred = perturbed(base, 2, sigma=1.0).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: geometry_loss_pairs(p, base, pairs), (pred,))


@pytest.mark.parametrize("distance", [None, 0.05, 0.0])
def test_pairs_fast_path_equals_float64_autograd(distance, dtype):
    base = random_walk(40, seed=11)
    module = GeometryLoss(base, k=6)
    pred64 = perturbed(base, 3, sigma=0.8, seed=12)
    if distance is not None:  # residues 9 and 10 are bonded, so a listed pair
        pred64[2, 10] = pred64[2, 9] + distance * torch.tensor([0.0, 0.6, 0.8], dtype=torch.float64)
    ref, ref_grad = _loss_and_grad(pred64, base, lambda p, b: plain_pairs_loss(p, b, module.pairs))
    loss, grad = _loss_and_grad(pred64.to(dtype), base, lambda p, b: module(p))
    assert loss.dtype == dtype
    assert loss.item() == pytest.approx(ref.item(), rel=tol(dtype))
    assert float((grad.double() - ref_grad).norm() / ref_grad.norm()) < tol(dtype)
    with torch.no_grad():
        assert module(pred64.to(dtype)).item() == pytest.approx(loss.item(), rel=tol(dtype))


# ----------------------------------------------------------------------------- the chain's local fold


def test_chain_window_pairs_follow_the_chain_and_never_cross_a_break():
    bonded = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [5, 6], [6, 7]])  # chains 0-4 and 5-7
    assert chain_window_pairs(bonded, 8, 1).tolist() == bonded.tolist()
    pairs = chain_window_pairs(bonded, 8, 3)
    expected = {(i, j) for lo, hi in ((0, 4), (5, 7)) for i in range(lo, hi + 1) for j in range(i + 1, min(i + 3, hi) + 1)}
    assert {tuple(p) for p in pairs.tolist()} == expected
    assert chain_window_pairs(np.zeros((0, 2)), 3, 3).shape == (0, 2)


def hinged(base, hinge, angle_deg):
    """``base`` with the residues after ``hinge`` turned by ``angle_deg`` about an axis through residue ``hinge``."""
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    out = base.copy()
    out[hinge + 1:] = (base[hinge + 1:] - base[hinge]) @ rot.T + base[hinge]
    return out


def test_chain_loss_lets_a_domain_turn_at_a_hinge_that_all_pairs_resist():
    n, hinge, window = 60, 30, 3
    base = random_walk(n, seed=4)
    moved = torch.as_tensor(hinged(base, hinge, 60.0)[None])
    bonded = np.stack([np.arange(n - 1), np.arange(1, n)], 1)
    pairs = chain_window_pairs(bonded, n, window)
    chain = GeometryLoss(base, pairs=pairs)
    assert float(chain(torch.as_tensor(base[None]))) == 0.0
    # Only the pairs that span the hinge change: without them the loss is exactly zero.
    spanning = (pairs[:, 0] <= hinge) & (pairs[:, 1] > hinge) & ~((pairs[:, 0] == hinge) & (pairs[:, 1] == hinge + 1))
    assert 0 < spanning.sum() <= window * (window + 1) // 2
    assert float(GeometryLoss(base, pairs=pairs[~spanning])(moved)) == pytest.approx(0.0, abs=1e-12)
    # In total (mean × number of pairs), the hinge costs the chain loss far less than it costs all pairs.
    all_pairs = float(geometry_loss(moved, base))
    assert float(chain(moved)) * chain.n_pairs < 0.1 * all_pairs * GeometryLoss(base).n_pairs
    # …and the chain loss still sees what all pairs see: rigid motions are free, local distortion is not.
    assert float(chain(rigidly_moved(moved))) == pytest.approx(float(chain(moved)), rel=1e-9)
    assert float(chain(perturbed(base, 2))) > 0.01

"""Bond, centring and image losses (paper section 2)."""

import numpy as np
import pytest
import torch

from conftest import tol
from cryogeom.errors import InputError
from cryogeom.losses import bond_loss, centering_loss, circular_mask, image_loss


def chain_of_steps(n, step, seed=0, start=(0.0, 0.0, 0.0)):
    """n points joined by steps of exactly ``step`` Å in random directions (a Cα random walk)."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(n - 1, 3))
    d *= step / np.linalg.norm(d, axis=1, keepdims=True)
    return np.concatenate([np.zeros((1, 3)), np.cumsum(d, axis=0)]) + np.asarray(start)


def consecutive_pairs(n, offset=0):
    return np.stack([np.arange(offset, offset + n - 1), np.arange(offset + 1, offset + n)], axis=1)


# ----------------------------------------------------------------------------- bond


def test_bond_loss_is_zero_for_a_random_walk_of_3_8_angstrom_steps(dtype):
    pred = torch.as_tensor(np.stack([chain_of_steps(50, 3.8, seed=s) for s in range(3)]), dtype=dtype)
    pred.requires_grad_(True)
    loss = bond_loss(pred, consecutive_pairs(50))
    (grad,) = torch.autograd.grad(loss, pred)
    assert loss.item() == pytest.approx(0.0, abs=tol(dtype))
    assert grad.abs().max().item() < tol(dtype)


def test_bond_loss_ignores_a_chain_break_that_is_not_listed():
    # Two chains of 20 residues; the second starts 20 Å from the end of the first.
    a = chain_of_steps(20, 3.8, seed=1)
    b = chain_of_steps(20, 3.8, seed=2, start=a[-1] + [20.0, 0.0, 0.0])
    pred = torch.as_tensor(np.concatenate([a, b])[None])
    pairs = np.concatenate([consecutive_pairs(20), consecutive_pairs(20, offset=20)])
    assert bond_loss(pred, pairs).item() == pytest.approx(0.0, abs=1e-20)
    # Listing the jump makes it count: (20 − 3.8)² over 39 pairs.
    with_jump = np.concatenate([pairs, [[19, 20]]])
    assert bond_loss(pred, with_jump).item() == pytest.approx((20 - 3.8) ** 2 / 39, rel=1e-12)


def test_bond_loss_is_the_mean_squared_length_error_over_batch_and_pairs():
    steps = [4.8, 3.3]  # errors +1.0 and −0.5 Å
    pred = torch.as_tensor(np.stack([chain_of_steps(10, s, seed=3) for s in steps]))
    assert bond_loss(pred, consecutive_pairs(10)).item() == pytest.approx((1.0 + 0.25) / 2, rel=1e-12)
    assert bond_loss(pred, consecutive_pairs(10), target_angstrom=4.8).item() == pytest.approx(1.5**2 / 2, rel=1e-12)


@pytest.mark.parametrize("distance", [1e-3, 1e-7, 0.0])
def test_bond_loss_stays_finite_when_bonded_residues_coincide(distance, dtype):
    pred = torch.as_tensor(chain_of_steps(5, 3.8)[None], dtype=dtype).clone()
    pred[0, 3] = pred[0, 2] + distance
    pred.requires_grad_(True)
    loss = bond_loss(pred, consecutive_pairs(5))
    (grad,) = torch.autograd.grad(loss, pred)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert loss.item() > 3.0**2 / 4  # the collapsed bond alone costs about 3.8² / 4


def test_bond_loss_without_pairs_is_zero_and_bad_pairs_are_input_errors():
    pred = torch.zeros(2, 4, 3)
    assert bond_loss(pred, np.zeros((0, 2), dtype=int)).item() == 0.0
    with pytest.raises(InputError, match="bonded_pairs must index residues 0..3"):
        bond_loss(pred, [[2, 4]])
    with pytest.raises(InputError, match=r"bonded_pairs must have shape \[M, 2\]"):
        bond_loss(pred, [0, 1])
    with pytest.raises(InputError, match="pred must have shape"):
        bond_loss(torch.zeros(4, 3), [[0, 1]])


# ----------------------------------------------------------------------------- centring


def test_centering_loss_is_zero_for_a_centred_cloud_and_shift_squared_when_shifted(dtype):
    cloud = chain_of_steps(30, 3.8)
    cloud -= cloud.mean(axis=0)
    shifts = np.array([[0.0, 0.0, 0.0], [3.0, -4.0, 12.0], [1.0, 2.0, 2.0]])
    pred = torch.as_tensor(cloud[None] + shifts[:, None], dtype=dtype)
    assert centering_loss(pred[:1]).item() == pytest.approx(0.0, abs=tol(dtype))
    assert centering_loss(pred[1:2]).item() == pytest.approx(169.0, rel=tol(dtype))
    assert centering_loss(pred).item() == pytest.approx((0 + 169 + 9) / 3, rel=tol(dtype))


def test_centering_loss_gradient_moves_every_residue_towards_the_origin_equally():
    pred = torch.as_tensor(chain_of_steps(10, 3.8)[None] + np.array([5.0, 0.0, 0.0])).requires_grad_(True)
    centroid = pred.detach().mean(dim=1)
    (grad,) = torch.autograd.grad(centering_loss(pred), pred)
    torch.testing.assert_close(grad[0], (2 * centroid / 10).expand(10, 3))


# ----------------------------------------------------------------------------- image


def test_image_loss_without_mask_is_the_pixelwise_mean_squared_error():
    pred, target = torch.randn(4, 16, 16), torch.randn(4, 16, 16)
    expected = ((pred.double() - target.double()) ** 2).mean().item()
    assert image_loss(pred, target).item() == pytest.approx(expected, rel=1e-5)
    assert image_loss(pred, pred).item() == 0.0
    assert image_loss(pred, target, torch.ones(16, 16)).item() == pytest.approx(expected, rel=1e-5)


def test_image_loss_with_a_circular_mask_averages_the_pixels_inside():
    pred, target = torch.randn(3, 20, 20), torch.randn(3, 20, 20)
    mask = circular_mask(20, 7.0)
    inside = mask.bool()
    expected = ((pred - target)[:, inside] ** 2).mean().item()
    assert image_loss(pred, target, mask).item() == pytest.approx(expected, rel=1e-5)
    # Changing a corner pixel (outside the circle) leaves the loss unchanged.
    changed = pred.clone()
    changed[:, 0, 0] += 100.0
    assert image_loss(changed, target, mask).item() == pytest.approx(expected, rel=1e-5)


def test_image_loss_with_per_image_weights_is_a_weighted_mean():
    pred, target = torch.zeros(2, 4, 4), torch.zeros(2, 4, 4)
    target[0] = 1.0  # error 1 everywhere in image 0, 0 in image 1
    weights = torch.stack([torch.full((4, 4), 3.0), torch.full((4, 4), 1.0)])
    assert image_loss(pred, target, weights).item() == pytest.approx(3 / 4)


@pytest.mark.parametrize("box", [8, 9, 64, 65])
def test_circular_mask_is_centred_on_the_grid_centre(box):
    mask = circular_mask(box).numpy()
    c = box // 2
    assert mask[c, c] == 1 and mask[0, 0] == 0
    # Symmetric about pixel box // 2 along both axes (on the pixels that have a mirror image).
    lo, hi = c - min(c, box - 1 - c), c + min(c, box - 1 - c)
    sub = mask[lo : hi + 1, lo : hi + 1]
    np.testing.assert_array_equal(sub, sub[::-1])
    np.testing.assert_array_equal(sub, sub.T)
    assert mask.sum() == pytest.approx(np.pi * c**2, rel=0.15)


def test_image_loss_bad_input():
    x = torch.zeros(2, 8, 8)
    with pytest.raises(InputError, match="differ in shape"):
        image_loss(x, torch.zeros(2, 8, 9))
    with pytest.raises(InputError, match="does not broadcast"):
        image_loss(x, x, torch.ones(7, 7))
    with pytest.raises(InputError, match="no positive weight"):
        image_loss(x, x, torch.zeros(8, 8))

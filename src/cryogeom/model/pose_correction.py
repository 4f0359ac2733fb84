"""Per-particle pose refinement: a small correction of each particle's rotation and shift, learned
with the network and held near the input pose.

The pose a particle is rendered at is ``R' = exp([ω]×) R`` and ``s' = s + δ`` (R moves the atoms,
:mod:`cryogeom.imaging.rotations`; ω [3] rad, δ [2] Å). The correction is the maximum a posteriori
estimate under the image likelihood and a Gaussian prior about the input pose (standard deviation
``prior_rotation_deg`` per axis of ω, ``prior_shift_angstrom`` per axis of δ): for particle i the
objective is ``P · mse_i / (2 σ²) + |ω|² / (2 σ_ω²) + |δ|² / (2 σ_δ²)`` with P pixels and σ² the
noise variance per pixel (the batch's image loss).

Each correction is updated once per visit of its particle, from the gradient the batch's backward
pass already computes, by a Gauss-Newton step: ``c ← c − f (g + Λ c) / (H + Λ)`` per component,
with g the likelihood gradient, Λ the prior precision and H the Gauss-Newton curvature of one
particle's likelihood, ``Σ_pixels (∂r/∂c)² / σ²`` (:func:`gauss_newton_diagonal`, central finite
differences of the render), measured on a few particles now and then and kept as a running mean
over particles (it varies little between them). Where the images carry little information about
the pose, H ≪ Λ and the correction stays near the input pose; where they carry much, one step
lands near the optimum. ``f`` is ``step_fraction``. The encoder still sees the input pose; only
the render moves.
"""

from __future__ import annotations

import math

import torch

#: decay of the running mean of the curvature (per measurement)
CURVATURE_DECAY = 0.9
#: finite-difference steps of the curvature: rad for ω, Å for δ
DIFFERENCE_STEP = (1e-2, 1e-2, 1e-2, 0.1, 0.1)


def rotation_from_vector(omega: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [..., 3, 3] ``exp([ω]×)`` of axis-angle vectors ``omega`` [..., 3] (rad),
    Rodrigues' formula, with Taylor series near 0 so that values and gradients are exact there."""
    theta2 = (omega * omega).sum(-1, keepdim=True)[..., None]  # [..., 1, 1]
    small = theta2 < 1e-8
    safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = safe.sqrt()
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / safe)
    x, y, z = omega.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*omega.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=omega.dtype, device=omega.device).expand_as(k)
    return eye + a * k + b * (k @ k)


class PoseCorrections:
    """The corrections [n, 5] (ω rad, δ Å) of ``n`` particles and their optimiser state."""

    def __init__(self, n: int, *, prior_rotation_deg: float, prior_shift_angstrom: float, step_fraction: float = 1.0):
        self.values = torch.zeros(n, 5)
        self.steps = torch.zeros(n, dtype=torch.long)
        rot, shift = math.radians(prior_rotation_deg), prior_shift_angstrom
        self.prior_precision = torch.tensor([1 / rot**2] * 3 + [1 / shift**2] * 2)
        self.curvature = torch.zeros(5)  # running mean of H (bias-corrected by curvature_weight)
        self.curvature_weight = torch.zeros(())
        self.step_fraction = step_fraction

    def __len__(self) -> int:
        return len(self.values)

    def take(self, indices, device=None) -> torch.Tensor:
        """The corrections [B, 5] of particles ``indices``, a leaf that records its gradient."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.values[idx].to(device).requires_grad_(True)

    @staticmethod
    def apply(correction: torch.Tensor, rotations: torch.Tensor, shifts_angstrom: torch.Tensor):
        """(rotations [B, 3, 3], shifts [B, 2]) moved by ``correction`` [B, 5]."""
        c = correction.to(rotations.dtype)
        return rotation_from_vector(c[:, :3]) @ rotations, shifts_angstrom + c[:, 3:].to(shifts_angstrom.dtype)

    @torch.no_grad()
    def update(self, indices, correction: torch.Tensor, likelihood_scale: float) -> None:
        """One step for particles ``indices`` from ``correction.grad`` (the gradient of the batch's
        image loss), where ``likelihood_scale`` turns that gradient into each particle's negative
        log-likelihood gradient (``B · P / (2 σ²)``)."""
        if correction.grad is None:
            return
        idx = torch.as_tensor(indices, dtype=torch.long)
        value = correction.detach().cpu()
        if float(self.curvature_weight) == 0:
            return  # no curvature measured yet
        g = correction.grad.detach().cpu() * likelihood_scale
        h = self.curvature / self.curvature_weight
        step = (g + self.prior_precision * value) / (h + self.prior_precision)
        self.values[idx] = value - self.step_fraction * step
        self.steps[idx] += 1

    def observe_curvature(self, h: torch.Tensor) -> None:
        """Add a measurement [5] of the per-particle Gauss-Newton curvature to the running mean."""
        self.curvature = CURVATURE_DECAY * self.curvature + (1 - CURVATURE_DECAY) * h.detach().cpu().float()
        self.curvature_weight = CURVATURE_DECAY * self.curvature_weight + (1 - CURVATURE_DECAY)

    def angles_deg(self) -> torch.Tensor:
        """[n] the rotation angle of each correction, degrees."""
        return torch.rad2deg(self.values[:, :3].norm(dim=1))

    def state_dict(self) -> dict:
        return {"values": self.values, "steps": self.steps, "curvature": self.curvature, "curvature_weight": self.curvature_weight}

    def load_state_dict(self, state: dict) -> None:
        for name in ("values", "steps", "curvature", "curvature_weight"):
            tensor = torch.as_tensor(state[name])
            if tensor.shape != getattr(self, name).shape:
                raise ValueError(f"pose corrections: {name} has shape {tuple(tensor.shape)}, expected {tuple(getattr(self, name).shape)}")
            setattr(self, name, tensor.clone())


@torch.no_grad()
def gauss_newton_diagonal(render, correction: torch.Tensor, rotations: torch.Tensor, shifts_angstrom: torch.Tensor,
                          noise_variance: float) -> torch.Tensor:
    """[5] the mean over particles of ``Σ_pixels (∂r/∂c_k)² / σ²`` for each component k of the
    corrections ``correction`` [B, 5], where ``render(rotations, shifts)`` -> [B, D, D] draws the
    particles at a pose (central differences of :data:`DIFFERENCE_STEP`)."""
    c = correction.detach()
    out = torch.zeros(5)
    for k, h in enumerate(DIFFERENCE_STEP):
        e = torch.zeros_like(c)
        e[:, k] = h
        plus = render(*PoseCorrections.apply(c + e, rotations, shifts_angstrom))
        minus = render(*PoseCorrections.apply(c - e, rotations, shifts_angstrom))
        out[k] = float(((plus - minus) / (2 * h)).square().sum(dim=(-2, -1)).mean()) / noise_variance
    return out

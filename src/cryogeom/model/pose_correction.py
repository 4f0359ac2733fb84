"""Per-particle pose refinement: a small correction of each particle's rotation and shift, learned
with the network and held near the input pose.

The pose a particle is rendered at is ``R' = exp([ω]×) R`` and ``s' = s + δ`` (R moves the atoms,
:mod:`cryogeom.imaging.rotations`; ω [3] rad, δ [2] Å). The correction is the maximum a posteriori
estimate under the image likelihood and a Gaussian prior about the input pose (standard deviation
``prior_rotation_deg`` per axis of ω, ``prior_shift_angstrom`` per axis of δ): for particle i the
objective is ``P · mse_i / (2 σ²) + |ω|² / (2 σ_ω²) + |δ|² / (2 σ_δ²)`` with P pixels and σ² the
noise variance per pixel (the batch's image loss). Each correction is updated once per visit of its
particle, from the gradient the batch's backward pass already computes, by a per-particle Adam
step (its own moments and step count) of ``lr_rotation_deg`` / ``lr_shift_angstrom`` times the
schedule's learning-rate factor. The encoder still sees the input pose; only the render moves.
"""

from __future__ import annotations

import math

import torch

#: Adam's moment decay for a parameter updated once per epoch (few steps: short memories)
BETAS = (0.5, 0.8)
EPS = 1e-12


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

    def __init__(self, n: int, *, prior_rotation_deg: float, prior_shift_angstrom: float,
                 lr_rotation_deg: float, lr_shift_angstrom: float):
        self.values = torch.zeros(n, 5)
        self.m = torch.zeros(n, 5)
        self.v = torch.zeros(n, 5)
        self.steps = torch.zeros(n, dtype=torch.long)
        rot, shift = math.radians(prior_rotation_deg), prior_shift_angstrom
        self.prior_precision = torch.tensor([1 / rot**2] * 3 + [1 / shift**2] * 2)
        self.lr = torch.tensor([math.radians(lr_rotation_deg)] * 3 + [lr_shift_angstrom] * 2)

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
    def update(self, indices, correction: torch.Tensor, likelihood_scale: float, lr_factor: float) -> None:
        """One step for particles ``indices`` from ``correction.grad`` (the gradient of the batch's
        image loss), where ``likelihood_scale`` turns that gradient into each particle's negative
        log-likelihood gradient (``B · P / (2 σ²)``)."""
        if correction.grad is None:
            return
        idx = torch.as_tensor(indices, dtype=torch.long)
        value = correction.detach().cpu()
        grad = correction.grad.detach().cpu() * likelihood_scale + value * self.prior_precision
        b1, b2 = BETAS
        m = self.m[idx] * b1 + (1 - b1) * grad
        v = self.v[idx] * b2 + (1 - b2) * grad * grad
        t = (self.steps[idx] + 1).to(torch.float32)[:, None]
        step = (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + EPS)
        self.values[idx] = value - lr_factor * self.lr * step
        self.m[idx], self.v[idx], self.steps[idx] = m, v, self.steps[idx] + 1

    def angles_deg(self) -> torch.Tensor:
        """[n] the rotation angle of each correction, degrees."""
        return torch.rad2deg(self.values[:, :3].norm(dim=1))

    def state_dict(self) -> dict:
        return {"values": self.values, "m": self.m, "v": self.v, "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        for name in ("values", "m", "v", "steps"):
            tensor = torch.as_tensor(state[name])
            if tensor.shape != getattr(self, name).shape:
                raise ValueError(f"pose corrections: {name} has shape {tuple(tensor.shape)}, expected {tuple(getattr(self, name).shape)}")
            setattr(self, name, tensor.clone())

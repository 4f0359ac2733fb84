"""How well the model explains each particle, and which particles are junk.

**Score.** For a particle image x and the render r of its predicted conformation at its pose, both
with their mean removed, the whitened matched-filter statistic ``s = <x, r>_N / |r|_N`` with
``<a, b>_N = Σ_k Re(â_k conj(b̂_k)) / N(|k|)`` over the Fourier coefficients and N the noise power
per spatial frequency shell, estimated as the mean power of the batch's images (at the doses of
cryo-EM, nearly all noise): the amplitude of the predicted particle in the image, in units of the
noise. On an image holding only noise s is about N(0, 1); on a particle the model explains, s
grows with the particle's signal; on another protein or the right protein at a wrong pose the
render matches little of the image and s is small. Whitening weighs each frequency by how much it
can tell: without it the low frequencies, where globular proteins of one size look alike, drown
the rest.

**Junk probability.** A two-component Gaussian mixture is fitted to the scores (EM); the component
with the lower mean is junk, and a particle's junk probability is its posterior under that
component. A clean set's scores spread with the view and the defocus, and a mixture fitted to them
splits them somewhere; so the set is taken to hold no junk (every probability 0) unless the two
components are well apart — Ashman's D ≥ :data:`MIN_SEPARATION` and the junk mean at least
:data:`MIN_GAP_SD` standard deviations of the good component below the good mean — the junk
component holds at least :data:`MIN_JUNK_SHARE` of the particles and at least :data:`MIN_PARTICLES`
particles were scored.

During training the image loss of each particle is weighted by ``1 - p_junk`` (refitted after
every epoch from the scores of that epoch), so junk stops pulling on the network.
"""

from __future__ import annotations

import math

import numpy as np
import torch

MIN_SEPARATION = 2.0
MIN_GAP_SD = 3.0
MIN_JUNK_SHARE = 0.005
MIN_PARTICLES = 200


def noise_power_per_shell(images: torch.Tensor) -> torch.Tensor:
    """[D, D // 2 + 1] the mean power of ``images`` [B, D, D] (means removed) in each ring of the
    rfft2 grid (rounded radius in pixels), spread back over the grid."""
    d = images.shape[-1]
    ky = torch.fft.fftfreq(d, device=images.device)[:, None] * d
    kx = torch.fft.rfftfreq(d, device=images.device)[None, :] * d
    shell = (ky.square() + kx.square()).sqrt().round().long()
    power = torch.fft.rfft2(images - images.mean(dim=(-2, -1), keepdim=True)).abs().square().mean(0)
    total = torch.zeros(int(shell.max()) + 1, dtype=power.dtype, device=power.device).index_add_(0, shell.flatten(), power.flatten())
    count = torch.bincount(shell.flatten()).to(power.dtype)
    return (total / count.clamp_min(1))[shell].clamp_min(1e-12)


def matched_filter_scores(render: torch.Tensor, data: torch.Tensor, noise_power: torch.Tensor | None = None) -> torch.Tensor:
    """[B] the whitened ``<x, r>_N / |r|_N`` of images ``data`` and renders ``render`` [B, D, D]
    (module docstring); ``noise_power`` [D, D // 2 + 1] defaults to :func:`noise_power_per_shell`
    of ``data``."""
    noise = noise_power_per_shell(data) if noise_power is None else noise_power
    fr = torch.fft.rfft2(render - render.mean(dim=(-2, -1), keepdim=True))
    fx = torch.fft.rfft2(data - data.mean(dim=(-2, -1), keepdim=True))
    cross = (fx * fr.conj()).real / noise
    # the rfft2 half-plane counts the self-conjugate columns once and the others for two: weigh them so
    weight = torch.full((fr.shape[-1],), 2.0, dtype=cross.dtype, device=cross.device)
    weight[0] = 1.0
    if data.shape[-1] % 2 == 0:
        weight[-1] = 1.0
    norm = ((fr.abs().square() / noise) * weight).sum(dim=(-2, -1)).sqrt().clamp_min(1e-12)
    return (cross * weight).sum(dim=(-2, -1)) / norm


def _normal_pdf(x, mean, sd):
    return np.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))


def junk_probability(scores: np.ndarray, iterations: int = 200) -> np.ndarray:
    """[n] posterior probability of the low-score component of a two-Gaussian mixture (module
    docstring); NaN scores (particles not scored) get 0."""
    s = np.asarray(scores, dtype=np.float64)
    out = np.zeros(len(s))
    ok = np.isfinite(s)
    x = s[ok]
    if len(x) < MIN_PARTICLES or np.ptp(x) == 0:
        return out
    mean = np.quantile(x, [0.05, 0.75])
    sd = np.full(2, x.std() / 2 + 1e-9)
    weight = np.array([0.2, 0.8])
    for _ in range(iterations):
        like = weight * np.stack([_normal_pdf(x, mean[k], sd[k]) for k in range(2)], axis=1) + 1e-300
        resp = like / like.sum(axis=1, keepdims=True)
        n_k = resp.sum(axis=0) + 1e-12
        new_mean = (resp * x[:, None]).sum(axis=0) / n_k
        sd = np.sqrt((resp * (x[:, None] - new_mean) ** 2).sum(axis=0) / n_k) + 1e-6 * x.std()
        weight = n_k / len(x)
        converged = np.allclose(new_mean, mean, rtol=0, atol=1e-6 * x.std())
        mean = new_mean
        if converged:
            break
    low = int(np.argmin(mean))
    high = 1 - low
    separation = math.sqrt(2) * abs(mean[1] - mean[0]) / math.sqrt(sd[0] ** 2 + sd[1] ** 2)
    gap = (mean[high] - mean[low]) / sd[high]
    if separation < MIN_SEPARATION or gap < MIN_GAP_SD or weight[low] < MIN_JUNK_SHARE:
        return out
    out[ok] = resp[:, low]
    return out


class ParticleScores:
    """The latest score of every particle, and the training weights ``1 - p_junk`` fitted from them."""

    def __init__(self, n: int):
        self.scores = np.full(n, np.nan)
        self.weights = np.ones(n, dtype=np.float32)

    def record(self, indices, scores: torch.Tensor) -> None:
        self.scores[np.asarray(indices)] = scores.detach().cpu().double().numpy()

    def refit(self) -> float:
        """Weights from the scores so far; returns the fraction of scored particles taken as junk."""
        p = junk_probability(self.scores)
        self.weights = (1.0 - p).astype(np.float32)
        scored = np.isfinite(self.scores)
        return float(p[scored].mean()) if scored.any() else 0.0

    def batch_weights(self, indices, device=None) -> torch.Tensor:
        return torch.as_tensor(self.weights[np.asarray(indices)], device=device)

    def state_dict(self) -> dict:
        return {"scores": torch.as_tensor(self.scores), "weights": torch.as_tensor(self.weights)}

    def load_state_dict(self, state: dict) -> None:
        scores, weights = np.asarray(state["scores"], dtype=np.float64), np.asarray(state["weights"], dtype=np.float32)
        if scores.shape != self.scores.shape or weights.shape != self.weights.shape:
            raise ValueError(f"particle scores: {scores.shape[0]} particles, expected {len(self.scores)}")
        self.scores, self.weights = scores, weights

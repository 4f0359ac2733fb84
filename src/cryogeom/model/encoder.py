"""Image encoders: a particle image -> the conformation latent z (paper appendix A).

Two encoders share one interface, ``encoder(images [B, D, D], rotations [B, 3, 3]) -> z [B, d]``:

* :class:`PaperEncoder` — the paper's CNN (appendix A figure; layer details as in the authors' published
  code): conv5×5 1→64, BN, pool; conv5×5 64→64, BN, pool; conv3×3 64→256, conv3×3 256→256,
  BN, pool; conv3×3 ×2 256→256, BN, pool; conv3×3 256→256, BN, pool; flatten; Linear→256; ReLU;
  Linear→d; ReLU after each conv. About 2.9 M parameters at D = 80.
* :class:`FastEncoder` — a small stride-2 CNN for Fourier-downsampled images (the CPU default).

Poses are known inputs of the problem, so the encoder may also see the particle's rotation: with
``pose_conditioning`` the flattened rotation matrix is appended to the image features before the
head, which lets the network separate what the pose does to the image from what the conformation
does. With a *reference channel* the encoder sees, beside the image, the render of the base
structure at the particle's own pose, shift and CTF (normalised like the data): the network then
compares like with like instead of learning what every pose does to the image. The paper's
encoder sees the image only (``pose_conditioning=False``, no reference channel).

The head's output becomes z through a :class:`~cryogeom.model.latent.Latent` (standardised, with
noise while training) unless the latent is ``"free"`` (the paper's: the head's output itself).
"""

from __future__ import annotations

import torch
from torch import nn

from cryogeom.model.latent import Latent


def _head(n_features: int, latent_dim: int, pose_conditioning: bool, hidden: int = 256) -> nn.Sequential:
    extra = 9 if pose_conditioning else 0
    return nn.Sequential(nn.Linear(n_features + extra, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, latent_dim))


class _Encoder(nn.Module):
    features: nn.Module
    head: nn.Module
    pose_conditioning: bool

    def forward(self, images: torch.Tensor, rotations: torch.Tensor | None = None) -> torch.Tensor:
        """images [B, D, D] or [B, C, D, D] -> z [B, latent_dim]; rotations [B, 3, 3] used with pose conditioning."""
        h = self.features(images.unsqueeze(1) if images.ndim == 3 else images).flatten(1)
        if self.pose_conditioning:
            if rotations is None:
                raise ValueError("this encoder is pose-conditioned: pass the rotations")
            h = torch.cat([h, rotations.reshape(len(h), 9).to(h.dtype)], dim=1)
        return self.latent(self.head(h))


class PaperEncoder(_Encoder):
    """The paper's image encoder (appendix A)."""

    def __init__(self, box: int, latent_dim: int = 8, pose_conditioning: bool = False):
        super().__init__()

        def conv(cin, cout, k):
            return [nn.Conv2d(cin, cout, k, padding=k // 2), nn.ReLU(inplace=True)]

        layers = [
            *conv(1, 64, 5), nn.BatchNorm2d(64), nn.MaxPool2d(2),
            *conv(64, 64, 5), nn.BatchNorm2d(64), nn.MaxPool2d(2),
            *conv(64, 256, 3), *conv(256, 256, 3), nn.BatchNorm2d(256), nn.MaxPool2d(2),
            *conv(256, 256, 3), *conv(256, 256, 3), nn.BatchNorm2d(256), nn.MaxPool2d(2),
            *conv(256, 256, 3), nn.BatchNorm2d(256), nn.MaxPool2d(2),
        ]  # fmt: skip
        self.features = nn.Sequential(*layers)
        side = box
        for _ in range(5):
            side //= 2
        if side < 1:
            raise ValueError(f"the paper's encoder needs a box of at least 32 pixels, got {box}")
        self.pose_conditioning = pose_conditioning
        self.head = _head(256 * side * side, latent_dim, pose_conditioning)
        self.latent = Latent(latent_dim, "free")


class FastEncoder(_Encoder):
    """A small stride-2 CNN for downsampled images (the default on CPUs).

    ``channels`` sets the width of each stride-2 stage (the first with a 5×5 kernel, the others
    3×3); the spatial size halves per stage, then the feature map is flattened.
    """

    def __init__(self, box: int, latent_dim: int = 8, pose_conditioning: bool = True, channels: tuple[int, ...] = (32, 64, 128, 256), in_channels: int = 1):
        super().__init__()
        layers: list[nn.Module] = []
        side, cin = box, in_channels
        for i, cout in enumerate(channels):
            k = 5 if i == 0 else 3  # a wider first kernel: the first layer already halves the image
            layers += [nn.Conv2d(cin, cout, k, stride=2, padding=k // 2), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            side = (side + 1) // 2
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pose_conditioning = pose_conditioning
        self.head = _head(cin * side * side, latent_dim, pose_conditioning)
        self.latent = Latent(latent_dim, "free")


def build_encoder(kind: str, box: int, latent_dim: int, pose_conditioning: bool, in_channels: int = 1,
                  latent: str = "free", latent_noise_sd: float = 0.0) -> _Encoder:
    """An encoder of ``kind`` ("paper" or "fast") ending in a ``latent`` (:mod:`cryogeom.model.latent`)."""
    if kind == "paper":
        if in_channels != 1:
            raise ValueError("the paper's encoder takes the image only")
        encoder = PaperEncoder(box, latent_dim, pose_conditioning)
    elif kind == "fast":
        encoder = FastEncoder(box, latent_dim, pose_conditioning, in_channels=in_channels)
    else:
        raise ValueError(f"unknown encoder {kind!r} (expected 'paper' or 'fast')")
    if latent != "free":
        encoder.latent = Latent(latent_dim, latent, latent_noise_sd)
    return encoder

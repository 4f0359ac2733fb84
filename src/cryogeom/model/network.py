"""The reconstruction network: encoder → z → decoder → X(z) = X0 + T(z) → density → render.

One particle, start to end (paper Figure 1)::

    image [D', D'] ──encoder──► z [d] ──decoder──► T(z) [N, 3]
    X(z) = X0 + T(z)                         (protein deformer; X0 = base Cα, centred)
    pseudo-atoms = density(X(z))             (model/density.py: "ca" is the paper's model)
    render = ForwardModel(pseudo-atoms, R, shift, CTF)     (imaging/forward.py, eqs. 2-5)
    output = OutputNorm(render)              (appendix F)

The network renders at the training resolution (``ForwardSettings.box`` pixels of
``pixel_size_angstrom``), the same grid the Fourier-downsampled data are on.
"""

from __future__ import annotations

import torch
from torch import nn

from cryogeom.imaging.ctf import CTFParams
from cryogeom.imaging.forward import ForwardModel, ForwardSettings
from cryogeom.model.decoder import Decoder
from cryogeom.model.density import ResidueDensity
from cryogeom.model.output_norm import OutputNorm


class Reconstructor(nn.Module):
    def __init__(
        self,
        base_ca_angstrom: torch.Tensor,
        density: ResidueDensity,
        encoder: nn.Module,
        decoder: Decoder,
        forward_settings: ForwardSettings,
        output_norm: OutputNorm | None = None,
        reference_channel: bool = False,
    ):
        super().__init__()
        self.reference_channel = reference_channel
        base = torch.as_tensor(base_ca_angstrom, dtype=torch.float32)
        self.register_buffer("base_ca", base - base.mean(0))
        self.density = density
        self.encoder = encoder
        self.decoder = decoder
        self.renderer = ForwardModel(forward_settings)
        self.output_norm = output_norm if output_norm is not None else OutputNorm()

    @property
    def n_residues(self) -> int:
        return int(self.base_ca.shape[0])

    def encode(self, images: torch.Tensor, rotations: torch.Tensor, shifts_angstrom=None, ctf: CTFParams | None = None) -> torch.Tensor:
        """images [B, D', D'] (normalised data) -> z [B, d].

        With a reference channel (``reference_channel``), the render of the base structure at the
        same pose, shift and CTF goes in beside the image (no gradient flows through it).
        """
        if self.reference_channel:
            with torch.no_grad():
                base = self.base_ca.to(images.dtype).expand(len(images), -1, -1)
                reference = self.render(base, rotations, shifts_angstrom, ctf)
            images = torch.stack([images, reference], dim=1)
        return self.encoder(images, rotations)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, d] -> Cα clouds X(z) [B, N, 3] (Å, about the base structure's Cα centroid; add ``Run.base_centroid`` for the base structure's own frame)."""
        return self.base_ca + self.decoder(z)

    def render_raw(self, ca: torch.Tensor, rotations: torch.Tensor, shifts_angstrom: torch.Tensor, ctf: CTFParams | None) -> torch.Tensor:
        """Cα clouds [B, N, 3] -> un-normalised renders [B, D', D'] (electrons per pixel ⊛ CTF)."""
        points = self.density(ca)
        return self.renderer(points, rotations, shifts_angstrom, ctf, self.density.sigma.to(ca.dtype), self.density.mass.to(ca.dtype))

    def render(self, ca, rotations, shifts_angstrom, ctf) -> torch.Tensor:
        """Cα clouds -> renders normalised like the data (appendix F)."""
        return self.output_norm(self.render_raw(ca, rotations, shifts_angstrom, ctf))

    def forward(self, images, rotations, shifts_angstrom, ctf):
        """-> (z [B, d], X(z) [B, N, 3], normalised render [B, D', D'])."""
        z = self.encode(images, rotations, shifts_angstrom, ctf)
        ca = self.decode(z)
        return z, ca, self.render(ca, rotations, shifts_angstrom, ctf)

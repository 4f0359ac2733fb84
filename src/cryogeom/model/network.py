"""The reconstruction network: encoder → z → decoder → X(z) = X0 + T(z) → density → render.

One particle, start to end (paper Figure 1)::

    image [D', D'] ──encoder──► z [d] ──decoder──► T(z) [N, 3]
    X(z) = X0 + T(z)                         (protein deformer; X0 = base Cα about the rotation centre)
    pseudo-atoms = density(X(z))             (model/density.py: "ca" is the paper's model)
    render = ForwardModel(pseudo-atoms, R, shift, CTF)     (imaging/forward.py, eqs. 2-5)
    output = OutputNorm(render)              (appendix F)

Coordinates inside the network are about the particles' rotation centre (the consensus map's box
centre, :mod:`cryogeom.structure.map_frame`), which poses rotate about; ``rotation_centre_angstrom``
(a buffer, saved with the weights) added to them gives the base structure's own frame.

The network renders at the training resolution (``ForwardSettings.box`` pixels of
``pixel_size_angstrom``), the same grid the Fourier-downsampled data are on.
"""

from __future__ import annotations

import torch
from torch import nn

from cryogeom.imaging.ctf import CTFParams, ctf_rfft2
from cryogeom.imaging.fourier import centre_pad, filter_and_crop
from cryogeom.imaging.inplane import canonical_view
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
        encoder_matched_filter: bool = False,
        encoder_canonical_inplane: bool = False,
        encoder_filter_b_factor_angstrom2: float | None = None,
        rotation_centre_angstrom=None,
    ):
        super().__init__()
        self.reference_channel = reference_channel
        self.encoder_matched_filter = encoder_matched_filter
        self.encoder_canonical_inplane = encoder_canonical_inplane
        self.encoder_filter_b_factor_angstrom2 = encoder_filter_b_factor_angstrom2
        # base_ca_angstrom: the base Cα about the rotation centre, which lies at
        # rotation_centre_angstrom in the base structure's own coordinates
        centre = torch.zeros(3) if rotation_centre_angstrom is None else torch.as_tensor(rotation_centre_angstrom, dtype=torch.float64)
        self.register_buffer("rotation_centre_angstrom", centre.reshape(3).float())
        self.register_buffer("base_ca", torch.as_tensor(base_ca_angstrom, dtype=torch.float32))
        self.density = density
        self.encoder = encoder
        self.decoder = decoder
        self.renderer = ForwardModel(forward_settings)
        self.output_norm = output_norm if output_norm is not None else OutputNorm()

    @property
    def n_residues(self) -> int:
        return int(self.base_ca.shape[0])

    def seed_latent_noise(self, seed: int, first_row: int = 0, total_rows: int | None = None) -> None:
        """The latent's training noise (:mod:`cryogeom.model.latent`) drawn from ``seed`` from now on,
        rows ``first_row …`` of a draw for the global batch of ``total_rows``."""
        self.encoder.latent.seed_noise(seed, first_row, total_rows)

    def encode(self, images: torch.Tensor, rotations: torch.Tensor, shifts_angstrom=None, ctf: CTFParams | None = None) -> torch.Tensor:
        """images [B, D', D'] (normalised data) -> z [B, d]; the encoder sees :meth:`encoder_input`."""
        return self.encoder(*self.encoder_input(images, rotations, shifts_angstrom, ctf))

    def encoder_input(self, images, rotations, shifts_angstrom=None, ctf: CTFParams | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """What the encoder sees: (channels [B, C, D', D'], poses [B, 3, 3]).

        * Reference channel (``reference_channel``): beside the image, the render of the base
          structure at the same pose, shift and CTF (no gradient flows through it).
        * Matched filter (``encoder_matched_filter``): every channel convolved with the particle's
          own CTF (times ``exp(-B k² / 4)`` with ``encoder_filter_b_factor_angstrom2``). The image
          term of the likelihood, ``-2 <x, c ⊛ r>``, is ``-2 <c ⊛ x, r>``: the CTF-filtered image is
          what carries the evidence about a structure r, with its phase flips undone and the
          frequencies the CTF erased left out.
        * Canonical in-plane orientation (``encoder_canonical_inplane``): channels and pose turned
          by the pose's in-plane angle (:mod:`cryogeom.imaging.inplane`), so a particle looks the
          same at every in-plane angle.
        """
        channels = images.unsqueeze(1)
        if self.reference_channel:
            with torch.no_grad():
                base = self.base_ca.to(images.dtype).expand(len(images), -1, -1)
                reference = self.render(base, rotations, shifts_angstrom, ctf)
            channels = torch.stack([images, reference], dim=1)
        if self.encoder_matched_filter and ctf is not None:
            channels = self.ctf_filter(channels, ctf)
        if self.encoder_canonical_inplane:
            channels, rotations = canonical_view(channels, rotations.to(images.dtype))
        return channels, rotations

    def ctf_filter(self, images: torch.Tensor, ctf: CTFParams) -> torch.Tensor:
        """images [B, C, D', D'] -> each convolved with its particle's CTF (on the padded render box)."""
        s = self.renderer.settings
        padded = s.render_box
        like = dict(dtype=images.dtype, device=images.device)
        transfer = ctf_rfft2(ctf.to(**like), padded, s.pixel_size_angstrom, b_factor_angstrom2=self.encoder_filter_b_factor_angstrom2)
        return filter_and_crop(centre_pad(images, padded), transfer.unsqueeze(1), s.box)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, d] -> Cα clouds X(z) [B, N, 3] (Å, about the rotation centre; add ``rotation_centre_angstrom`` for the base structure's own frame)."""
        return self.base_ca + self.decoder(z)

    def render_raw(self, ca: torch.Tensor, rotations: torch.Tensor, shifts_angstrom: torch.Tensor, ctf: CTFParams | None) -> torch.Tensor:
        """Cα clouds [B, N, 3] -> un-normalised renders [B, D', D'] (electrons per pixel ⊛ CTF)."""
        points = self.density(ca)
        return self.renderer(points, rotations, shifts_angstrom, ctf, self.density.sigma.to(ca.dtype), self.density.mass.to(ca.dtype))

    def render(self, ca, rotations, shifts_angstrom, ctf) -> torch.Tensor:
        """Cα clouds -> renders normalised like the data (appendix F)."""
        return self.output_norm(self.render_raw(ca, rotations, shifts_angstrom, ctf))

    def forward(self, images, rotations, shifts_angstrom, ctf, render_pose=None):
        """-> (z [B, d], X(z) [B, N, 3], normalised render [B, D', D']). ``render_pose``
        (rotations, shifts): where the conformations are rendered, if not at the input pose the
        encoder sees (pose refinement, :mod:`cryogeom.model.pose_correction`)."""
        z = self.encode(images, rotations, shifts_angstrom, ctf)
        ca = self.decode(z)
        if render_pose is not None:
            rotations, shifts_angstrom = render_pose
        return z, ca, self.render(ca, rotations, shifts_angstrom, ctf)

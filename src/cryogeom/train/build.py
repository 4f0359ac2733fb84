"""Building the network of a run from its configuration and base structure (train and predict)."""

from __future__ import annotations

import numpy as np

from cryogeom.imaging.forward import ForwardSettings
from cryogeom.model.decoder import Decoder
from cryogeom.model.density import build_density
from cryogeom.model.encoder import build_encoder
from cryogeom.model.network import Reconstructor
from cryogeom.structure.types import Structure
from cryogeom.train.config import Network, decoder_initialisation


def build_model(config: Network, base: Structure, box: int, pixel_size_angstrom: float, rotation_centre_angstrom) -> Reconstructor:
    """The network of settings ``config`` for particles of ``box`` pixels of ``pixel_size_angstrom`` Å
    that rotate about ``rotation_centre_angstrom`` [3] (the base structure's coordinates,
    :mod:`cryogeom.structure.map_frame`); the network works about that point."""
    centre = np.asarray(rotation_centre_angstrom, dtype=np.float64).reshape(3)
    base = base.translated(-centre)
    train_box = config.train_box(box, pixel_size_angstrom)
    train_pixel = pixel_size_angstrom * box / train_box
    density = build_density(base, config.density, weights=config.density_weights)
    encoder = build_encoder(config.encoder, train_box, config.latent_dim, config.pose_conditioning, 2 if config.reference_channel else 1,
                            latent=config.latent, latent_noise_sd=config.latent_noise_sd)
    decoder = Decoder(config.latent_dim, base.n_residues, config.decoder_width, config.decoder_depth, init=decoder_initialisation(config.decoder_init, base.n_residues))
    settings = ForwardSettings(box=train_box, pixel_size_angstrom=train_pixel, pad_factor=config.pad_factor)
    return Reconstructor(
        base.ca, density, encoder, decoder, settings, reference_channel=config.reference_channel,
        encoder_matched_filter=config.encoder_matched_filter,
        encoder_canonical_inplane=config.encoder_canonical_inplane,
        encoder_filter_b_factor_angstrom2=config.encoder_filter_b_factor_angstrom2,
        rotation_centre_angstrom=centre,
    )

"""The latent (model/latent.py), the size-chosen training settings, and the latent's read-out of
known coordinates (evaluate/latent.py)."""

import numpy as np
import pytest
import torch

from cryogeom.evaluate.latent import latent_coordinates
from cryogeom.model.encoder import build_encoder
from cryogeom.model.latent import Latent
from cryogeom.train.config import (LARGE_PROTEIN_GEOMETRY_K, LARGE_PROTEIN_RESIDUES, Network, TrainConfig,
                                   geometry_neighbours, preset)


def test_normalised_latent_is_standardised_and_noisy_only_while_training():
    torch.manual_seed(0)
    latent = Latent(4, "normalised", noise_sd=0.5)
    h = torch.randn(4096, 4) * torch.tensor([300.0, 1.0, 0.1, 5.0]) + 40.0  # wildly different scales
    latent.train()
    z = latent(h)
    assert torch.allclose(z.mean(0), torch.zeros(4), atol=0.05)
    # unit variance plus the noise's 0.25
    assert torch.allclose(z.var(0), torch.full((4,), 1.25), atol=0.15)
    assert not torch.equal(latent(h), latent(h))  # noise drawn anew
    for _ in range(2000):  # running statistics settle on the population's
        latent(h)
    latent.eval()
    first, second = latent(h), latent(h)
    assert torch.equal(first, second)  # no noise at inference
    assert torch.allclose(first.var(0), torch.ones(4), atol=0.05)


def test_free_latent_is_the_heads_output():
    h = torch.randn(8, 3) * 100
    assert torch.equal(Latent(3, "free")(h), h)
    with pytest.raises(ValueError, match="unknown latent"):
        Latent(3, "spherical")


def test_normalised_latent_refuses_a_training_batch_of_one():
    latent = Latent(2, "normalised", 0.1).train()
    with pytest.raises(ValueError, match="at least 2 particles"):
        latent(torch.zeros(1, 2))


def test_encoder_ends_in_the_configured_latent():
    torch.manual_seed(0)
    enc = build_encoder("fast", 32, 8, True, latent="normalised", latent_noise_sd=0.1).eval()
    free = build_encoder("fast", 32, 8, True, latent="free")
    assert enc.latent.norm is not None and free.latent.norm is None
    z = enc(torch.randn(5, 32, 32), torch.eye(3).expand(5, 3, 3))
    assert z.shape == (5, 8) and torch.isfinite(z).all()


def test_default_latent_is_normalised_and_old_runs_keep_a_free_one():
    assert TrainConfig().network.latent == "normalised" and TrainConfig().network.latent_noise_sd > 0
    assert preset("paper").network.latent == "free"
    old = TrainConfig.from_dict({"latent_dim": 8})  # a config.json written before the setting existed
    assert old.network.latent == "free" and old.network.latent_noise_sd == 0.0
    assert old.network.max_train_box is None


@pytest.mark.parametrize("box, pixel, expected", [(80, 1.0, 40), (160, 1.0, 56), (128, 1.0, 56), (64, 2.0, 56), (48, 2.0, 48), (400, 1.06, 56)])
def test_large_boxes_train_at_a_coarser_pixel(box, pixel, expected):
    """The training box: about 2 Å per pixel, capped at 56 pixels (even), never larger than the data's."""
    assert Network().train_box(box, pixel) == expected
    assert Network(max_train_box=None).train_box(160, 1.0) == 80


def test_geometry_neighbours_chosen_from_the_proteins_size():
    assert geometry_neighbours("auto", 214) is None  # ADK: all pairs
    assert geometry_neighbours("auto", LARGE_PROTEIN_RESIDUES) is None
    assert geometry_neighbours("auto", LARGE_PROTEIN_RESIDUES + 1) == LARGE_PROTEIN_GEOMETRY_K
    assert geometry_neighbours("auto", 1181) == LARGE_PROTEIN_GEOMETRY_K  # the CFTR example
    assert geometry_neighbours(None, 5000) is None and geometry_neighbours(12, 100) == 12
    TrainConfig().replace(geometry_k="auto").check()
    with pytest.raises(Exception, match="geometry_k"):
        TrainConfig().replace(geometry_k="some").check()


def test_latent_coordinates_finds_each_coordinate_on_its_own_pc():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 1, 2000), rng.uniform(0, 1, 2000)
    mix = rng.normal(size=(2, 8))
    z = np.outer(3 * (a - 0.5), mix[0]) + np.outer(1 * (b - 0.5), mix[1] - mix[1] @ mix[0] / (mix[0] @ mix[0]) * mix[0])
    z += 0.01 * rng.normal(size=z.shape)
    out = latent_coordinates(z, np.column_stack([a, b]), ("a", "b"))
    assert out.best_pc.tolist() == [0, 1]
    assert np.all(out.best_abs_r > 0.99) and np.all(out.linear_r2 > 0.99)
    assert out.variance_fraction[0] > out.variance_fraction[1] > 0.05
    # a latent that carries only a: b is not readable from it
    only_a = latent_coordinates(np.outer(a, mix[0]) + 0.01 * rng.normal(size=(2000, 8)), np.column_stack([a, b]), ("a", "b"))
    assert only_a.linear_r2[1] < 0.05 and only_a.best_abs_r[1] < 0.1
    assert only_a.to_dict()["coordinates"][0]["best_pc"] == 1


@torch.no_grad()
def _last_hidden_spread(decoder, z):
    h = z
    for layer in decoder.mlp[:-1]:
        h = layer(h)
    return float(h.std(0).mean())


def test_decoder_output_depends_on_z_from_the_start():
    """Variance-preserving initialisation: a unit spread of z still spreads the last hidden layer by
    order one after six SiLU layers (PyTorch's default shrinks it ~1,000-fold), and the output
    still starts at the base structure (T = 0)."""
    from cryogeom.model.decoder import Decoder

    torch.manual_seed(0)
    z = torch.randn(2000, 8)
    preserving, default = Decoder(8, 50), Decoder(8, 50, init="default")
    assert 0.3 < _last_hidden_spread(preserving, z) < 3.0
    assert _last_hidden_spread(default, z) < 0.01
    assert torch.equal(preserving(z), torch.zeros(2000, 50, 3))
    with pytest.raises(ValueError, match="initialisation"):
        Decoder(8, 50, init="xavier")
    assert preset("paper").network.decoder_init == "default"
    from cryogeom.train.config import decoder_initialisation

    assert decoder_initialisation("auto", 214) == "default"  # ADK
    assert decoder_initialisation("auto", 1181) == "variance-preserving"  # the CFTR example
    assert decoder_initialisation("default", 5000) == "default"
    assert TrainConfig.from_dict({}).network.decoder_init == "default"  # runs saved before the setting

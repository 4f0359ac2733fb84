"""The encoder's view of a particle: canonical in-plane orientation and the CTF matched filter."""

import json
import math

import numpy as np
import torch

from cryogeom.imaging.ctf import CTFParams
from cryogeom.imaging.forward import ForwardModel, ForwardSettings
from cryogeom.imaging.inplane import canonical_rotations, canonical_view, inplane_angle, turn_images
from cryogeom.imaging.rotations import random_rotations
from cryogeom.model.decoder import Decoder
from cryogeom.model.encoder import FastEncoder
from cryogeom.model.network import Reconstructor
from cryogeom.train.config import TrainConfig, preset
from cryogeom.imaging.grid import background_mask


def _z_turn(theta: torch.Tensor) -> torch.Tensor:
    """Rz(θ) [B, 3, 3]: turns the microscope frame about the beam."""
    c, s = torch.cos(theta), torch.sin(theta)
    out = torch.zeros(len(theta), 3, 3, dtype=theta.dtype)
    out[:, 0, 0], out[:, 0, 1], out[:, 1, 0], out[:, 1, 1], out[:, 2, 2] = c, -s, s, c, 1
    return out


def _cloud(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g) * torch.tensor([9.0, 6.0, 4.0])  # anisotropic: turns show


def test_canonical_pose_has_no_inplane_turn_left():
    rot = torch.as_tensor(random_rotations(200, 3))
    canon = canonical_rotations(rot)
    assert torch.allclose(canon[:, 1, 2], torch.zeros(200, dtype=rot.dtype), atol=1e-12)
    assert (canon[:, 0, 2] >= 0).all()
    assert torch.allclose(canon @ canon.transpose(1, 2), torch.eye(3, dtype=rot.dtype).expand(200, 3, 3), atol=1e-12)
    assert torch.allclose(_z_turn(inplane_angle(rot)) @ canon, rot, atol=1e-12)  # R = Rz(ψ) R_c
    # every in-plane turn of a pose has the same canonical pose
    turned = _z_turn(torch.rand(200, dtype=rot.dtype) * 2 * math.pi) @ rot
    assert torch.allclose(canonical_rotations(turned), canon, atol=1e-10)


def test_turned_projection_is_the_projection_at_the_canonical_pose():
    batch, box, pixel = 6, 48, 2.0
    cloud = _cloud().expand(batch, -1, -1)
    rot = torch.as_tensor(random_rotations(batch, 1), dtype=torch.float32)
    shift = torch.randn(batch, 2) * 3
    render = ForwardModel(ForwardSettings(box=box, pixel_size_angstrom=pixel))
    sigma, mass = torch.full((60,), 3.0), torch.ones(60)
    image = render(cloud, rot, shift, None, sigma, mass)
    psi = inplane_angle(rot)
    canon = canonical_rotations(rot)
    shift_canon = (_z_turn(-psi)[:, :2, :2] @ shift[..., None])[..., 0]
    expected = render(cloud, canon, shift_canon, None, sigma, mass)
    turned = turn_images(image[:, None], psi)[:, 0]
    err = ((turned - expected).norm() / expected.norm()).item()
    wrong_way = ((turn_images(image[:, None], -psi)[:, 0] - expected).norm() / expected.norm()).item()
    assert err < 0.05, err  # bilinear resampling of σ = 1.5 px Gaussians
    assert wrong_way > 0.3


def _model(**options) -> Reconstructor:
    box, pixel = 40, 2.0
    base = _cloud(30)

    class Points(torch.nn.Module):  # one Gaussian per residue, 3 Å wide
        sigma = torch.full((30,), 3.0)
        mass = torch.full((30,), 7.0)

        def forward(self, ca):
            return ca

    settings = ForwardSettings(box=box, pixel_size_angstrom=pixel)
    encoder = FastEncoder(box, 4, pose_conditioning=True, in_channels=2)
    return Reconstructor(base, Points(), encoder, Decoder(4, 30), settings, reference_channel=True, **options).eval()


def test_matched_filter_is_the_adjoint_of_the_ctf():
    """<c ⊛ x, r> = <x, c ⊛ r>: the filtered image carries the likelihood's cross term."""
    model = _model(encoder_matched_filter=True)
    g = torch.Generator().manual_seed(4)
    x, r = torch.randn(3, 1, 40, 40, generator=g), torch.randn(3, 1, 40, 40, generator=g)
    ctf = CTFParams.from_values(defocus_u_angstrom=[9000.0, 15000.0, 21000.0], defocus_v_angstrom=[8000.0, 15000.0, 20000.0], astigmatism_angle_deg=30.0)
    left = (model.ctf_filter(x, ctf) * r).sum((1, 2, 3))
    right = (x * model.ctf_filter(r, ctf)).sum((1, 2, 3))
    assert torch.allclose(left, right, rtol=1e-4, atol=1e-3)
    # and it is each particle's own CTF: swapping the particles changes the result
    assert not torch.allclose(model.ctf_filter(x, ctf[[2, 1, 0]]), model.ctf_filter(x, ctf), atol=1e-3)


def test_encoder_sees_the_same_particle_at_every_inplane_angle():
    model = _model(encoder_matched_filter=True, encoder_canonical_inplane=True)
    batch = 5
    rot = torch.as_tensor(random_rotations(batch, 2), dtype=torch.float32)
    theta = torch.rand(batch) * 2 * math.pi
    turned = _z_turn(theta) @ rot
    ctf = CTFParams.from_values(defocus_u_angstrom=12000.0, batch_size=batch)  # round CTF: it turns with the image
    zero = torch.zeros(batch, 2)
    cloud = model.base_ca.expand(batch, -1, -1)
    image, image_turned = model.render(cloud, rot, zero, ctf), model.render(cloud, turned, zero, ctf)
    (a, pose_a), (b, pose_b) = model.encoder_input(image, rot, zero, ctf), model.encoder_input(image_turned, turned, zero, ctf)
    assert a.shape == (batch, 2, 40, 40)
    assert torch.allclose(pose_a, pose_b, atol=1e-5)
    inside = ~background_mask(40)  # the corners of a turned box come from outside it
    assert (((a - b) * inside).norm() / (a * inside).norm()).item() < 0.05  # bilinear resampling
    plain = _model()
    c, d = plain.encoder_input(image, rot, zero, ctf)[0], plain.encoder_input(image_turned, turned, zero, ctf)[0]
    assert (((c - d) * inside).norm() / (c * inside).norm()).item() > 0.3  # without it the two views differ


def test_runs_saved_before_the_encoder_options_load_without_them():
    saved = json_of(preset("default"))
    for name in ("encoder_matched_filter", "encoder_canonical_inplane", "chain_weight"):
        del saved[name]
    old = TrainConfig.from_dict(saved)
    assert not old.network.encoder_matched_filter and not old.network.encoder_canonical_inplane
    assert old.losses.chain_weight == 0.0 and preset("default").losses.chain_weight > 0 and preset("paper").losses.chain_weight == 0.0
    assert TrainConfig.from_dict(json_of(preset("default"))).network.encoder_canonical_inplane
    assert not preset("paper").network.encoder_matched_filter and not preset("paper").network.encoder_canonical_inplane


def json_of(config: TrainConfig) -> dict:
    return json.loads(config.to_json())


def test_canonical_view_keeps_batch_and_channels_and_leaves_canonical_poses_alone():
    images = torch.from_numpy(np.random.default_rng(0).normal(size=(3, 2, 32, 32))).float()
    rot = torch.as_tensor(random_rotations(3, 5), dtype=torch.float32)
    out, pose = canonical_view(images, rot)
    assert out.shape == images.shape and pose.shape == rot.shape
    same, _ = canonical_view(images, canonical_rotations(rot))  # in-plane angle 0: nothing to turn
    assert torch.allclose(same, images, atol=1e-5)

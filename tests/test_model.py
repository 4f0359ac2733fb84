from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cryogeom.imaging.rotations import random_rotations
from cryogeom.model.decoder import Decoder
from cryogeom.model.density import build_density
from cryogeom.structure.frames import local_frames
from cryogeom.model.encoder import FastEncoder, PaperEncoder
from cryogeom.model.output_norm import OutputNorm


def _toy_structure(n=12, seed=0):
    """An α-helix-like Cα trace with N, CA, C, O, CB atoms per residue (ALA), one chain."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) * np.deg2rad(100)
    ca = np.stack([2.3 * np.cos(t), 2.3 * np.sin(t), 1.5 * np.arange(n)], 1)
    names, elements, pos, res = [], [], [], []
    for i in range(n):
        for name, el in [("N", "N"), ("CA", "C"), ("C", "C"), ("O", "O"), ("CB", "C")]:
            names.append(name)
            elements.append(el)
            pos.append(ca[i] if name == "CA" else ca[i] + rng.normal(scale=1.2, size=3))
            res.append(i)
    return SimpleNamespace(
        ca=ca,
        resnames=["ALA"] * n,
        bonded_pairs=np.stack([np.arange(n - 1), np.arange(1, n)], 1),
        atom_positions=np.array(pos),
        atom_elements=np.array(elements),
        atom_names=np.array(names),
        atom_residue_index=np.array(res),
    )


def test_paper_encoder_has_the_papers_size():
    n = sum(p.numel() for p in PaperEncoder(80).parameters())
    assert 2.7e6 < n < 3.1e6  # "~2.9 M parameters at D = 80"
    assert PaperEncoder(80)(torch.randn(3, 80, 80)).shape == (3, 8)


@pytest.mark.parametrize("box", [32, 40, 41])
def test_fast_encoder_shapes_and_pose_input(box):
    enc = FastEncoder(box, latent_dim=8, pose_conditioning=True).eval()
    img = torch.randn(4, box, box)
    rot = torch.as_tensor(random_rotations(4, 0), dtype=torch.float32)
    z1 = enc(img, rot)
    z2 = enc(img, rot.flip(0))
    assert z1.shape == (4, 8)
    assert not torch.allclose(z1, z2)  # the pose reaches the latent


def test_decoder_starts_at_the_base_structure():
    dec = Decoder(8, 50)
    t = dec(torch.randn(5, 8))
    assert t.shape == (5, 50, 3) and torch.count_nonzero(t) == 0


def test_output_norm_starts_as_fixed_normalisation():
    norm = OutputNorm(mu0=2.0, s0=-4.0)
    x = torch.randn(3, 8, 8)
    torch.testing.assert_close(norm(x), (x - 2.0) / -4.0)


def test_local_frames_are_orthonormal_and_rotate_with_the_trace():
    ca = torch.as_tensor(_toy_structure().ca)
    idx = torch.arange(1, 11)
    f = local_frames(ca, idx, idx - 1, idx + 1)
    torch.testing.assert_close(f.transpose(-1, -2) @ f, torch.eye(3, dtype=f.dtype).expand_as(f))
    torch.testing.assert_close(torch.linalg.det(f), torch.ones(10, dtype=f.dtype))
    r = torch.as_tensor(random_rotations(1, 1)[0])
    f_rot = local_frames(ca @ r.T + 5.0, idx, idx - 1, idx + 1)
    torch.testing.assert_close(f_rot, r @ f)


@pytest.mark.parametrize("model", ["backbone-sidechain", "atoms"])
def test_rigid_density_reproduces_the_base_and_moves_rigidly(model):
    s = _toy_structure()
    dens = build_density(s, model).double()
    ca = torch.as_tensor(s.ca)[None]
    points = dens(ca)[0].numpy()
    # at the base structure the pseudo-atoms sit at their groups' centroids
    if model == "atoms":
        heavy = s.atom_positions
        np.testing.assert_allclose(points, heavy, atol=1e-5)  # offsets are stored in float32
    # a rigid motion of the Cα cloud moves every pseudo-atom by the same motion
    r = torch.as_tensor(random_rotations(1, 2)[0])
    moved = dens(ca @ r.T + torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))[0]
    torch.testing.assert_close(moved, torch.as_tensor(points) @ r.T + torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))


@pytest.mark.parametrize("model", ["ca", "backbone-sidechain", "atoms"])
def test_density_conserves_the_electron_count(model):
    from cryogeom.structure.residues import residue_sigma_and_electrons

    s = _toy_structure()
    dens = build_density(s, model)
    total = residue_sigma_and_electrons(s.resnames)[1].sum()
    assert dens.mass.sum().item() == pytest.approx(total, rel=1e-6)
    assert (dens.sigma >= 1.0).all() if model != "ca" else (dens.sigma > 0).all()


@pytest.mark.parametrize("weights", ["ice", "electrons"])
def test_density_conserves_the_electron_count_with_either_weights(weights):
    from cryogeom.structure.residues import residue_sigma_and_electrons

    s = _toy_structure()
    dens = build_density(s, "backbone-sidechain", weights=weights)
    assert dens.mass.sum().item() == pytest.approx(residue_sigma_and_electrons(s.resnames)[1].sum(), rel=1e-6)


def test_ice_weights_follow_each_atoms_contrast_in_ice():
    """Backbone (N, CA, C, O) against side chain (CB) of alanine: in ice nitrogen keeps most of its
    contrast and carbon little of it, so the backbone outweighs the side chain more than in vacuum."""
    from cryogeom.model.density import contrast_in_ice
    from cryogeom.physics.ice import IceModel
    from cryogeom.physics.scattering import projected_potential_gaussians
    from cryogeom.physics.solvent import EXCLUDED_VOLUME_ANGSTROM3

    c, n, o = contrast_in_ice(["C", "N", "O"])
    a_carbon = projected_potential_gaussians(["C"])[0].sum()
    assert c == pytest.approx(a_carbon - IceModel().mean_potential_volt() * EXCLUDED_VOLUME_ANGSTROM3["C"], rel=1e-9)
    assert 0 < c < o < n  # vacuum order by atomic number would be C < N < O
    s = _toy_structure()
    ice, electrons = build_density(s, "backbone-sidechain", weights="ice"), build_density(s, "backbone-sidechain", weights="electrons")
    ratio = lambda d: float(d.mass[0] / d.mass[1])  # noqa: E731 — residue 0: backbone, then side chain
    assert ratio(ice) == pytest.approx((n + 2 * c + o) / c, rel=1e-6)
    assert ratio(electrons) == pytest.approx((7 + 6 + 6 + 8) / 6, rel=1e-6)

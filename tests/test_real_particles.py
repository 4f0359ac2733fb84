"""Particles as a consensus refinement gives them: the map's frame, pose refinement, junk."""

from __future__ import annotations

import math

import mrcfile
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from cryogeom.cli import main as cryogeom
from cryogeom.errors import InputError
from cryogeom.model.pose_correction import PoseCorrections, gauss_newton_diagonal, rotation_from_vector
from cryogeom.particles.dataset import ParticleDataset
from cryogeom.particles.read import read_particles
from cryogeom.structure import map_frame
from cryogeom.structure.read import read_structure
from cryogeom.train.build import build_model
from cryogeom.train.config import TrainConfig
from cryogeom.train.junk import junk_probability, matched_filter_scores

SIM = ["--frames", "0:1", "--box", "48", "--pixel", "2.0", "--seed", "5", "--workers", "1", "--quiet"]
OFFSET = [0.0, 6.0, -3.0]


def _correlation(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    a = a - a.mean(dim=(-2, -1), keepdim=True)
    b = b - b.mean(dim=(-2, -1), keepdim=True)
    return ((a * b).sum(dim=(-2, -1)) / (a.norm(dim=(-2, -1)) * b.norm(dim=(-2, -1)))).numpy()


@pytest.fixture(scope="module")
def offset_sim(tmp_path_factory):
    """Noiseless ADK frame 0, 8 images rotating about a point OFFSET from its Cα centroid."""
    out = tmp_path_factory.mktemp("offset") / "sim"
    assert cryogeom(["simulate", *SIM, "--per-conf", "8", "--noiseless", "--no-ice", "--rotation-centre-offset", *map(str, OFFSET), "-o", str(out)]) == 0
    return out


def _base_renders(sim, base, centre):
    particles = read_particles(sim / "particles.star")
    network = TrainConfig().network
    model = build_model(network, base, particles.box, float(particles.pixel_size_angstrom[0]), centre)
    batch = ParticleDataset(particles, downsample_box=model.renderer.settings.box).get_batch(np.arange(particles.n))
    with torch.no_grad():
        render = model.render_raw(model.base_ca.expand(particles.n, -1, -1), batch.rotations, batch.shifts_angstrom, batch.ctf)
    return render, -batch.images  # RELION-normalised images have the protein bright; renders dark


def test_the_simulated_base_structure_lies_in_the_map_frame(offset_sim):
    base = read_structure(offset_sim / "base.pdb")
    truth = np.load(offset_sim / "ground_truth.npz")
    np.testing.assert_allclose(truth["rotation_centre_offset_angstrom"], OFFSET)
    # the rotation centre (Cα centroid + offset) at the box centre of a map with zero origin
    np.testing.assert_allclose(base.ca_centroid() + OFFSET, [24 * 2.0] * 3, atol=1e-3)


def test_renders_about_the_box_centre_match_images_that_rotate_about_it(offset_sim):
    base = read_structure(offset_sim / "base.pdb")
    box_centre = map_frame.rotation_centre("box", base.ca, 48, 2.0)
    good = _correlation(*_base_renders(offset_sim, base, box_centre))
    wrong = _correlation(*_base_renders(offset_sim, base, map_frame.rotation_centre("centroid", base.ca, 48, 2.0)))
    assert good.min() > 0.9, good
    assert wrong.mean() < good.mean() - 0.2, (good, wrong)


def test_a_translated_base_told_its_map_centre_renders_identically(offset_sim):
    base = read_structure(offset_sim / "base.pdb")
    centre = map_frame.rotation_centre("box", base.ca, 48, 2.0)
    shift = np.array([13.0, -7.5, 22.0])
    render, _ = _base_renders(offset_sim, base, centre)
    moved, _ = _base_renders(offset_sim, base.translated(shift), centre + shift)
    torch.testing.assert_close(moved, render, atol=1e-4 * float(render.abs().max()), rtol=0)


def test_a_structure_outside_the_box_is_a_one_line_error_naming_the_options(offset_sim, capsys):
    base = read_structure(offset_sim / "base.pdb")
    with pytest.raises(InputError, match="--map.*--rotation-centre"):
        map_frame.check_inside_box(base.ca - 48.0, np.full(3, 48.0), 48, 2.0, "base.pdb", "box")
    status = cryogeom(["train", str(offset_sim / "particles.star"), "--structure", str(offset_sim / "base.pdb"), "-o", "/nonexistent/never",
                       "--rotation-centre", "0", "0", "0", "--epochs", "1", "--batch-size", "4", "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "outside the particles' box" in err, err


def _map(path, box, voxel, origin=(0.0, 0.0, 0.0)):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.zeros((box, box, box), dtype=np.float32))
        mrc.voxel_size = voxel
        mrc.header.origin = origin
    return path


def test_the_map_header_gives_the_rotation_centre(tmp_path):
    path = _map(tmp_path / "consensus.mrc", 24, 4.0, origin=(10.0, -2.0, 3.0))
    np.testing.assert_allclose(map_frame.map_rotation_centre(path, 48, 2.0), [10 + 48, -2 + 48, 3 + 48])
    with pytest.raises(InputError, match="expected the consensus map of these particles"):
        map_frame.map_rotation_centre(_map(tmp_path / "small.mrc", 40, 2.0), 48, 2.0)


@pytest.mark.parametrize("box, voxel", [(40, 2.0), (48, 1.5)])
def test_a_map_that_disagrees_with_the_particles_is_exit_2(offset_sim, tmp_path, capsys, box, voxel):
    path = _map(tmp_path / "consensus.mrc", box, voxel)
    status = cryogeom(["train", str(offset_sim / "particles.star"), "--structure", str(offset_sim / "base.pdb"), "-o", str(tmp_path / "run"),
                       "--map", str(path), "--epochs", "1", "--batch-size", "4", "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and str(path) in err and "consensus map" in err, err
    assert not (tmp_path / "run").exists()


# -- pose refinement ------------------------------------------------------------------------------
def test_rotation_from_vector_is_rodrigues_with_exact_gradients():
    omega = torch.tensor([[0.3, -0.2, 0.5], [1e-6, 2e-6, -1e-6], [0.0, 0.0, 0.0], [2.5, 0.1, -1.0]], dtype=torch.float64)
    np.testing.assert_allclose(rotation_from_vector(omega).numpy(), Rotation.from_rotvec(omega.numpy()).as_matrix(), atol=1e-12)
    assert torch.autograd.gradcheck(rotation_from_vector, (omega[[0, 1, 3]].clone().requires_grad_(),))
    # at 0 the derivative is the generator: d/dω_x of R = [e_x]×
    zero = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(rotation_from_vector, zero)
    np.testing.assert_allclose(jac[..., 0].numpy(), [[0, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)


def test_pose_refinement_recovers_a_known_small_rotation(offset_sim):
    """Noisy renders at the true poses as data; the input poses off by 4°; one Fisher-scoring step
    per particle and 'epoch', as in training, brings them back; on exact poses it stays put."""
    base = read_structure(offset_sim / "base.pdb")
    particles = read_particles(offset_sim / "particles.star")
    model = build_model(TrainConfig().network, base, 48, 2.0, map_frame.rotation_centre("box", base.ca, 48, 2.0))
    batch = ParticleDataset(particles, downsample_box=model.renderer.settings.box).get_batch(np.arange(particles.n))
    copies = 6  # each particle with independent noise
    rotations, shifts = batch.rotations.repeat(copies, 1, 1), batch.shifts_angstrom.repeat(copies, 1)
    ctf = batch.ctf[np.tile(np.arange(particles.n), copies)]
    n = len(rotations)
    ca = model.base_ca.expand(n, -1, -1)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        raw = model.render_raw(ca, rotations, shifts, ctf)
        scale = raw.std()
        data = raw / scale + 0.5 * torch.randn(raw.shape, generator=generator)
    rng = np.random.default_rng(1)
    axes = rng.normal(size=(n, 3))
    error = torch.as_tensor(Rotation.from_rotvec(np.radians(4.0) * axes / np.linalg.norm(axes, axis=1, keepdims=True)).as_matrix(), dtype=torch.float32)

    def refine(given, epochs=8):
        poses = PoseCorrections(n, prior_rotation_deg=5.0, prior_shift_angstrom=2.0)
        for _ in range(epochs):
            correction = poses.take(np.arange(n))
            r, s = PoseCorrections.apply(correction, given, shifts)
            loss = (model.render_raw(ca, r, s, ctf) / scale - data).square().mean()
            loss.backward()
            noise = float(loss.detach())
            poses.observe_curvature(gauss_newton_diagonal(lambda r, s: model.render_raw(ca, r, s, ctf) / scale, correction, given, shifts, noise))
            poses.update(np.arange(n), correction, n * data.shape[-1] ** 2 / (2 * noise))
        refined, _ = PoseCorrections.apply(poses.values, given, shifts)
        return np.degrees(Rotation.from_matrix((refined @ rotations.transpose(1, 2)).double().numpy()).magnitude())

    given = error @ rotations
    before = np.degrees(Rotation.from_matrix((given @ rotations.transpose(1, 2)).double().numpy()).magnitude())
    assert np.median(before) == pytest.approx(4.0, abs=1e-3)
    after = refine(given)
    assert np.median(after) < 1.0, after
    assert np.median(refine(rotations)) < 0.5  # exact poses stay about exact


# -- junk -----------------------------------------------------------------------------------------
def test_junk_scores_rank_empty_ice_below_real_particles(tmp_path):
    sim = tmp_path / "sim"
    assert cryogeom(["simulate", *SIM, "--per-conf", "60", "--junk", "0.5", "--junk-kinds", "ice", "-o", str(sim)]) == 0
    truth = np.load(sim / "ground_truth.npz")
    assert truth["junk"].sum() == 30 and set(np.unique(truth["junk_kind"])) == {0, 1}
    base = read_structure(sim / "base.pdb")  # frame 0: the true conformation of every real particle
    render, images = _base_renders(sim, base, map_frame.rotation_centre("box", base.ca, 48, 2.0))
    scores = matched_filter_scores(render, images).numpy()
    good, ice = scores[~truth["junk"]], scores[truth["junk"]]
    auc = (good[:, None] > ice[None, :]).mean()
    assert auc > 0.95, (good, ice)
    assert abs(np.median(ice)) < 3  # noise alone: about N(0, 1)


def test_junk_probability_flags_a_separate_low_component_and_never_splits_a_clean_set():
    rng = np.random.default_rng(0)
    clean = rng.normal(20, 3, size=2000)
    assert junk_probability(clean).max() < 1e-9
    mixed = np.concatenate([clean, rng.normal(0, 1, size=300)])
    p = junk_probability(mixed)
    assert (p[2000:] > 0.5).mean() > 0.99 and (p[:2000] > 0.5).mean() < 0.01


def test_simulated_pose_errors_have_the_requested_size(tmp_path):
    sim = tmp_path / "sim"
    assert cryogeom(["simulate", *SIM, "--per-conf", "200", "--pose-error", "3", "--shift-error", "0.7", "--junk", "0.1",
                     "--junk-kinds", "pose", "--noiseless", "--no-ice", "-o", str(sim)]) == 0
    truth = np.load(sim / "ground_truth.npz")
    written = read_particles(sim / "particles.star")
    good = ~truth["junk"]
    angle = Rotation.from_matrix(np.einsum("nij,nkj->nik", written.rotations, truth["rotations"])).magnitude()
    assert np.degrees(np.sqrt(np.mean(angle[good] ** 2))) == pytest.approx(3.0, rel=0.15)
    assert np.degrees(np.median(angle[~good])) > 30  # a random pose
    shift = np.linalg.norm(written.shifts_angstrom - truth["shifts_angstrom"], axis=1)
    assert np.sqrt(np.mean(shift**2)) == pytest.approx(0.7, rel=0.15)
    np.testing.assert_allclose(written.rotations, truth["written_rotations"], atol=1e-5)


def test_two_state_populations_are_uneven():
    from cryogeom.simulate.imperfect import frame_weights

    w = frame_weights(102, "two-state")
    assert w.sum() == pytest.approx(1) and w.max() > 5 * w.min() and frame_weights(102, "uniform") is None


# -- what training writes per particle ------------------------------------------------------------
def test_training_writes_scores_junk_probabilities_and_refined_poses(tiny_run, tiny_dataset):
    from cryogeom import run_dir as rd

    quality = rd.read_particle_quality(tiny_run)
    given = read_particles(tiny_dataset / "particles.star")
    n = given.n
    assert quality["score"].shape == (n,) and np.isfinite(quality["score"]).all()
    assert quality["junk_probability"].shape == (n,) and quality["pose_correction_rotvec_rad"].shape == (n, 3)
    refined = read_particles(tiny_run / "refined_particles.star")
    correction = torch.as_tensor(np.concatenate([quality["pose_correction_rotvec_rad"], quality["pose_correction_shift_angstrom"]], axis=1))
    expected_r, expected_s = PoseCorrections.apply(correction.double(), torch.as_tensor(given.rotations), torch.as_tensor(given.shifts_angstrom))
    np.testing.assert_allclose(refined.rotations, expected_r.numpy(), atol=1e-5)
    np.testing.assert_allclose(refined.shifts_angstrom, expected_s.numpy(), atol=1e-5)
    assert np.abs(quality["pose_correction_rotvec_rad"]).max() > 0  # the second epoch refined them
    assert rd.REFINED_STAR in rd.manifest(tiny_run) and rd.PARTICLE_QUALITY in rd.manifest(tiny_run)


def test_analyze_selects_the_clean_particles_by_junk_probability(tiny_run, tmp_path, capsys):
    import shutil

    from cryogeom import run_dir as rd

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    quality = dict(np.load(run / rd.PARTICLE_QUALITY))
    quality["junk_probability"][:5] = 0.9  # as if five were junk
    np.savez(run / rd.PARTICLE_QUALITY, **quality)
    out = tmp_path / "clean.star"
    assert cryogeom(["analyze", str(run), "--select", "junk<0.5", "-o-star", str(out), "--no-progress"]) == 0
    kept = read_particles(out)
    assert kept.n == len(quality["score"]) - 5
    assert cryogeom(["analyze", str(run), "--select", "junk>=0.5", "-o-star", str(tmp_path / "junk.star"), "--no-progress", "--force"]) == 0
    assert read_particles(tmp_path / "junk.star").n == 5
    capsys.readouterr()
    (run / rd.PARTICLE_QUALITY).unlink()
    status = cryogeom(["analyze", str(run), "--select", "junk<0.5", "-o-star", str(tmp_path / "x.star"), "--no-progress", "--force"])
    err = capsys.readouterr().err
    assert status == 2 and "particles.npz" in err and err.count("\n") == 1


def test_other_protein_junk_holds_a_particle_that_is_not_the_base(tmp_path):
    sim = tmp_path / "sim"
    assert cryogeom(["simulate", *SIM, "--per-conf", "12", "--junk", "0.5", "--junk-kinds", "other", "--noiseless", "--no-ice", "-o", str(sim)]) == 0
    truth = np.load(sim / "ground_truth.npz")
    assert set(np.unique(truth["junk_kind"])) == {0, 2}
    base = read_structure(sim / "base.pdb")
    render, images = _base_renders(sim, base, map_frame.rotation_centre("box", base.ca, 48, 2.0))
    corr = _correlation(render, images)
    junk = truth["junk"]
    assert corr[~junk].min() > 0.9  # the true particles are the base structure at their poses
    # another protein: a globule of about the same size, but not the base's projection
    assert corr[junk].max() < 0.8 and corr[junk].mean() < corr[~junk].min() - 0.3, corr[junk]
    assert images[junk].std(dim=(-2, -1)).min() > 0.5 * images[~junk].std(dim=(-2, -1)).mean()


def test_a_rotation_centre_that_is_not_three_numbers_is_exit_2(offset_sim, tmp_path, capsys):
    status = cryogeom(["train", str(offset_sim / "particles.star"), "--structure", str(offset_sim / "base.pdb"), "-o", str(tmp_path / "run"),
                       "--rotation-centre", "1", "2", "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "--rotation-centre 1 2" in err


def test_rows_merged_across_processes_come_from_the_process_that_changed_them():
    from cryogeom.train.per_particle import merge_rows

    before = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [float("nan"), 0.0]])
    a, b = before.clone(), before.clone()
    changed_a, changed_b = torch.tensor([True, False, False, True]), torch.tensor([False, True, False, False])
    a[0], a[3], b[1] = torch.tensor([10.0, 11.0]), torch.tensor([7.0, 8.0]), torch.tensor([20.0, 21.0])
    # process b's contributions, in the order merge_rows reduces: the rows, then the counts
    shape = (-1, 1)
    from_b = iter([torch.where(changed_b.reshape(shape), b, torch.zeros_like(b)), changed_b.long()])
    merged = merge_rows(a, changed_a, lambda t: t + next(from_b))
    expected = torch.tensor([[10.0, 11.0], [20.0, 21.0], [3.0, 3.0], [7.0, 8.0]])
    torch.testing.assert_close(merged, expected)

"""The large built-in example (CFTR in a generated multi-domain motion) and the parts that make it.

The full 200-frame CFTR path is generated once per checkout into pytest's cache directory
(~25 s of CPU) and read from there afterwards; the generator itself is also exercised on ADK
(214 residues), which is fast.
"""

import warnings

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from cryogeom.errors import InputError
from cryogeom.examples import large
from cryogeom.examples.domain_motion import MotionSettings, multi_domain_path, segments_from_bonds, superpose_on_first
from cryogeom.examples.elastic_network import (
    anm_hessian,
    move_domains,
    network_springs,
    rigid_block_projection,
    rigid_domain_modes,
)
from path_statistics import describe_path  # benchmarks/, on sys.path via tests/conftest.py
from cryogeom.structure.frames import AtomFrames, frame_triads
from cryogeom.examples.restrained_relaxation import RestrainedRelaxation
from cryogeom.examples.time_profiles import uncorrelated_profiles
from cryogeom.structure.types import Structure, Trajectory

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cftr_structure():
    return large.cftr_structure()


@pytest.fixture(scope="module")
def cftr_path(request, tmp_path_factory):
    """The shipped example: 200 frames, cached in pytest's cache (or a temporary directory)."""
    cache = getattr(request.config, "cache", None)
    cache_dir = cache.mkdir("cryogeom-large-example") if cache is not None else tmp_path_factory.mktemp("cftr")
    return large.cftr(cache_dir=cache_dir), cache_dir


@pytest.fixture(scope="module")
def cftr_stats(cftr_path):
    return describe_path(cftr_path[0], large.CFTR_DOMAINS, atom_frame_stride=10)


ADK_DOMAINS = {"CORE": [(1, 29), (60, 121), (160, 214)], "NMP": [(30, 59)], "LID": [(122, 159)]}


@pytest.fixture(scope="module")
def adk_heavy():
    """ADK frame 0 with heavy atoms only, and its domain labels (CORE, NMP, LID)."""
    from cryogeom.examples.adk import adk

    s = adk().structure
    heavy = s.atom_elements != "H"
    label = np.full(s.n_residues, -1)
    for d, ranges in enumerate(ADK_DOMAINS.values()):
        for first, last in ranges:
            label[(s.resids >= first) & (s.resids <= last)] = d
    return s, s.atom_positions[heavy], s.atom_residue_index[heavy], label


@pytest.fixture(scope="module")
def adk_path(adk_heavy):
    s, atoms, atom_res, label = adk_heavy
    settings = MotionSettings(n_modes=4, target_rms_angstrom=3.0)
    return multi_domain_path(s.ca, atoms, atom_res, s.bonded_pairs, label, 40, seed=3, settings=settings)


def _random_rotation(seed):
    return Rotation.random(random_state=seed).as_matrix()


# --------------------------------------------------------------------------- the shipped example


def test_cftr_is_a_large_single_chain_with_all_atoms(cftr_path, cftr_structure):
    trajectory, _ = cftr_path
    s = trajectory.structure
    assert isinstance(trajectory, Trajectory) and isinstance(s, Structure)
    assert trajectory.n_frames == large.N_FRAMES == 200
    assert s.n_residues == 1181 >= 590
    assert s.n_atoms == 9466 and set(np.unique(s.atom_elements)) <= {"C", "N", "O", "S"}
    assert len(set(s.chain_ids.tolist())) == 1
    # four gaps in numbering: no bond across them
    assert len(s.bonded_pairs) == s.n_residues - 5
    # frame 0 is the deposited structure, Cα and atoms
    np.testing.assert_allclose(trajectory.ca[0], cftr_structure.ca, atol=1e-9)
    np.testing.assert_allclose(trajectory.atom_positions(0), cftr_structure.atom_positions, atol=1e-9)
    for f in (1, 117, 199):
        atoms = trajectory.atom_positions(f)
        assert atoms.shape == (9466, 3) and atoms.dtype == np.float64
        ca_atoms = atoms[s.atom_names == "CA"]
        np.testing.assert_allclose(ca_atoms, trajectory.ca[f], atol=1e-9)  # atoms ride on the Cα trace


def test_cftr_bonds_stay_near_3_8_angstrom(cftr_stats):
    assert abs(cftr_stats.bond_mean - 3.857) < 0.02  # the deposited mean
    assert cftr_stats.bond_sd < 0.05
    assert 3.5 < cftr_stats.bond_min and cftr_stats.bond_max < 4.2
    assert cftr_stats.bond_max_change < 0.3


def test_cftr_has_no_new_clashes(cftr_stats):
    assert cftr_stats.new_ca_clashes == 0
    assert cftr_stats.new_atom_clashes == 0
    assert cftr_stats.frames_checked_for_atoms >= 20
    assert cftr_stats.min_heavy_atom_new_pairs >= 2.5


def test_cftr_motion_is_large_multi_domain_and_not_one_mode(cftr_stats):
    rmsd = cftr_stats.rmsd_to_first
    assert rmsd[0] < 1e-6 and 3.0 < rmsd.mean() < 6.0 and rmsd.max() < 8.0
    assert cftr_stats.pc_variance_fractions[0] < 0.7
    assert cftr_stats.pc_variance_fractions[:3].sum() < 0.95
    for d in cftr_stats.domains:  # every domain moves by several Å, but stays nearly rigid
        assert 5.0 < d.max_displacement < 25.0, d
        assert d.max_rotation_deg > 5.0, d
        assert d.max_internal_rmsd < 2.5, d
    off = ~np.eye(len(cftr_stats.domains), dtype=bool)
    assert (cftr_stats.direction_cosines[off] < 0.5).sum() >= 4  # several pairs move in different directions
    assert (cftr_stats.synchrony[off] < 0.5).sum() >= 2  # and out of step


def test_cftr_path_is_smooth(cftr_stats):
    assert cftr_stats.max_step_rmsd < 1.0
    assert cftr_stats.max_step_residue < 3.0


def test_cftr_cache_is_reused_and_keyed_by_version(cftr_path):
    trajectory, cache_dir = cftr_path
    files = list(cache_dir.glob(f"{large.VERSION}-frames200-seed0.npz"))
    assert len(files) == 1
    again = large.cftr(cache_dir=cache_dir)
    np.testing.assert_array_equal(again.ca, trajectory.ca)


def test_cftr_cache_with_another_version_is_ignored(tmp_path, cftr_structure):
    cache_file = tmp_path / "x.npz"
    with open(cache_file, "wb") as fh:
        np.savez(fh, ca=np.zeros((200, 1181, 3)), version=np.str_("something-else"))
    assert large.read_cache(cache_file, (200, 1181, 3), large.VERSION) is None
    with open(cache_file, "wb") as fh:
        np.savez(fh, ca=np.zeros((200, 1181, 3)), version=np.str_(large.VERSION))
    assert large.read_cache(cache_file, (200, 1181, 3), large.VERSION).shape == (200, 1181, 3)
    assert large.read_cache(cache_file, (100, 1181, 3), large.VERSION) is None
    assert large.read_cache(tmp_path / "missing.npz", (200, 1181, 3), large.VERSION) is None


def test_cftr_cache_write_failure_only_warns(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.warns(UserWarning, match="could not cache"):
        large.write_cache(blocker / "sub" / "file.npz", np.zeros((2, 3, 3)), large.VERSION)


@pytest.mark.parametrize("kwargs, field", [({"n_frames": 3}, "n_frames"), ({"n_frames": 20.5}, "n_frames"),
                                           ({"seed": -1}, "seed")])
def test_cftr_rejects_bad_arguments(kwargs, field):
    with pytest.raises(InputError, match=f"^{field}: expected"):
        large.cftr(**kwargs)


def test_domain_labels_cover_every_cftr_residue(cftr_structure):
    label = large.domain_labels(cftr_structure.resids)
    assert np.bincount(label).tolist() == [63, 325, 224, 319, 250]
    with pytest.raises(ValueError, match="in no domain"):
        large.domain_labels(np.array([1, 700]), {"a": (1, 10)})


# --------------------------------------------------------------------------- the generator on ADK


def test_generator_on_adk_is_physical_multi_domain_and_deterministic(adk_heavy, adk_path):
    s, atoms, atom_res, label = adk_heavy
    heavy_structure = Structure(ca=s.ca, resnames=s.resnames, resids=s.resids, chain_ids=s.chain_ids,
                                bonded_pairs=s.bonded_pairs, atom_positions=atoms,
                                atom_elements=s.atom_elements[s.atom_elements != "H"], atom_residue_index=atom_res)
    frames = AtomFrames.from_reference(s.ca, atoms, atom_res, s.bonded_pairs)
    trajectory = Trajectory(heavy_structure, adk_path, lambda f: frames.place(torch.as_tensor(adk_path[f])).numpy())
    domains = {"CORE-a": (1, 29), "NMP": (30, 59), "CORE-b": (60, 121), "LID": (122, 159), "CORE-c": (160, 214)}
    stats = describe_path(trajectory, domains, atom_frame_stride=3)
    assert stats.new_atom_clashes == 0 and stats.new_ca_clashes == 0
    assert stats.bond_max_change < 0.3  # ADK has a cis-proline (Cα–Cα 3.09 Å): compare with frame 0
    assert 1.0 < stats.rmsd_to_first.mean() and stats.pc_variance_fractions[0] < 0.8
    nmp, lid = stats.domains[1], stats.domains[3]
    assert nmp.max_displacement > 3.0 and lid.max_displacement > 3.0
    again = multi_domain_path(s.ca, atoms, atom_res, s.bonded_pairs, label, 40, seed=3,
                              settings=MotionSettings(n_modes=4, target_rms_angstrom=3.0))
    np.testing.assert_allclose(again, adk_path, atol=1e-8)
    other = multi_domain_path(s.ca, atoms, atom_res, s.bonded_pairs, label, 40, seed=4,
                              settings=MotionSettings(n_modes=4, target_rms_angstrom=3.0))
    assert np.abs(other - adk_path).max() > 1.0


# --------------------------------------------------------------------------- parts


def test_rigid_block_projection_is_the_linearised_domain_move():
    rng = np.random.default_rng(0)
    ca = rng.normal(scale=15.0, size=(60, 3))
    label = np.repeat([0, 1, 2], 20)
    moves = rng.normal(size=(1, 3, 6))
    for eps in (1e-3, 1e-4):
        finite = move_domains(ca, label, eps * moves)[0] - ca
        linear = (rigid_block_projection(ca, label) @ (eps * moves).reshape(-1)).reshape(-1, 3)
        assert np.abs(finite - linear).max() < 50 * eps ** 2 * 15 ** 2  # error is second order


def test_move_domains_keeps_every_domain_rigid():
    rng = np.random.default_rng(1)
    ca = rng.normal(scale=15.0, size=(60, 3))
    label = np.repeat([0, 1, 2], 20)
    moved = move_domains(ca, label, rng.normal(size=(4, 3, 6)))
    for d in range(3):
        sel = label == d
        before = np.linalg.norm(ca[sel][:, None] - ca[sel][None], axis=-1)
        after = np.linalg.norm(moved[:, sel][:, :, None] - moved[:, sel][:, None], axis=-1)
        np.testing.assert_allclose(after, np.broadcast_to(before, after.shape), atol=1e-9)


def test_rigid_domain_modes_are_internal_orthonormal_and_soft(adk_heavy):
    s, _, _, label = adk_heavy
    segment = segments_from_bonds(s.n_residues, s.bonded_pairs)
    pairs, k = network_springs(s.ca, 10.0, label, segment)
    hessian = anm_hessian(s.ca, pairs, k)
    values, modes = rigid_domain_modes(s.ca, label, hessian, 6)
    assert np.all(np.diff(values) >= 0) and values[0] > 1e-6
    p = rigid_block_projection(s.ca, label)
    disp = modes.reshape(6, -1) @ p.T  # [K, 3N]
    np.testing.assert_allclose(disp @ disp.T, np.eye(6), atol=1e-9)
    # no net translation or rotation of the whole protein
    np.testing.assert_allclose(disp.reshape(6, -1, 3).sum(1), 0.0, atol=1e-8)
    r = s.ca - s.ca.mean(0)
    np.testing.assert_allclose(np.cross(r, disp.reshape(6, -1, 3)).sum(1), 0.0, atol=1e-7)
    # the energy of each mode is its eigenvalue (Rayleigh quotient of the full Hessian)
    np.testing.assert_allclose(np.einsum("ki,ki->k", disp, (hessian @ disp.T).T), values, rtol=1e-8)
    # a rigid move of the whole protein costs nothing
    rot = _random_rotation(2)[:, 0]
    whole = np.cross(rot, r).reshape(-1)
    assert abs(whole @ (hessian @ whole)) < 1e-9 * (whole @ whole)
    with pytest.raises(ValueError, match="internal modes"):
        rigid_domain_modes(s.ca, label, hessian, 13)


def test_anm_hessian_matches_finite_differences_of_the_spring_energy():
    rng = np.random.default_rng(3)
    ca = rng.normal(scale=4.0, size=(12, 3))
    pairs = np.array([(i, j) for i in range(12) for j in range(i + 1, 12)])
    k = rng.uniform(0.5, 2.0, len(pairs))
    r0 = np.linalg.norm(ca[pairs[:, 0]] - ca[pairs[:, 1]], axis=1)

    def energy(x):
        d = np.linalg.norm(x.reshape(-1, 3)[pairs[:, 0]] - x.reshape(-1, 3)[pairs[:, 1]], axis=1)
        return 0.5 * (k * (d - r0) ** 2).sum()

    h = anm_hessian(ca, pairs, k).toarray()
    eps, x0 = 1e-4, ca.reshape(-1)
    numeric = np.empty_like(h)
    for a in range(len(x0)):
        for b in range(len(x0)):
            e = np.zeros_like(x0)
            e[a] += eps
            f = np.zeros_like(x0)
            f[b] += eps
            numeric[a, b] = (energy(x0 + e + f) - energy(x0 + e - f) - energy(x0 - e + f) + energy(x0 - e - f)) / (4 * eps**2)
    np.testing.assert_allclose(h, numeric, atol=1e-5)


def test_uncorrelated_profiles_have_the_requested_variances():
    variances = np.array([1.0, 0.5, 1 / 3, 0.25])
    a = uncorrelated_profiles(200, variances, np.random.default_rng(0))
    assert a.shape == (200, 4)
    np.testing.assert_allclose(a[0], 0.0, atol=1e-12)
    np.testing.assert_allclose(np.cov(a.T, bias=True), np.diag(variances), atol=1e-12)
    assert np.abs(np.diff(a, axis=0)).max() < 0.3 * np.sqrt(variances.max())  # smooth
    b = uncorrelated_profiles(200, variances, np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="more frames"):
        uncorrelated_profiles(4, variances, np.random.default_rng(0))


def test_frame_triads_never_cross_a_gap():
    bonded = np.array([(0, 1), (1, 2), (2, 3), (4, 5), (5, 6)])  # stretches 0-3 and 4-6
    triads = frame_triads(7, bonded)
    np.testing.assert_array_equal(triads, [[0, 1, 2], [0, 1, 2], [1, 2, 3], [1, 2, 3], [4, 5, 6], [4, 5, 6], [4, 5, 6]])
    with pytest.raises(ValueError, match="fewer than 3"):
        frame_triads(5, np.array([(0, 1), (1, 2), (3, 4)]))


def test_atom_frames_reproduce_the_reference_and_follow_rigid_motion(cftr_structure):
    s = cftr_structure
    frames = AtomFrames.from_reference(s.ca, s.atom_positions, s.atom_residue_index, s.bonded_pairs)
    ca = torch.as_tensor(s.ca)
    np.testing.assert_allclose(frames.place(ca).numpy(), s.atom_positions, atol=1e-10)
    rot, shift = torch.as_tensor(_random_rotation(5)), torch.tensor([3.0, -7.0, 11.0], dtype=torch.float64)
    moved = frames.place(ca @ rot.T + shift).numpy()
    np.testing.assert_allclose(moved, s.atom_positions @ rot.numpy().T + shift.numpy(), atol=1e-9)


def test_superpose_on_first_removes_rigid_motions():
    rng = np.random.default_rng(4)
    x = rng.normal(scale=10.0, size=(30, 3))
    path = np.stack([x, x @ _random_rotation(6).T + [1.0, 2.0, 3.0], x @ _random_rotation(7).T - 5.0])
    np.testing.assert_allclose(superpose_on_first(path), np.broadcast_to(x, path.shape), atol=1e-9)


def _adk_relaxation(adk_heavy, **kwargs):
    s, atoms, atom_res, label = adk_heavy
    segment = segments_from_bonds(s.n_residues, s.bonded_pairs)
    pairs, k = network_springs(s.ca, 10.0, label, segment)
    frames = AtomFrames.from_reference(s.ca, atoms, atom_res, s.bonded_pairs)
    return RestrainedRelaxation(s.ca, atoms, frames, s.bonded_pairs, pairs, k, **kwargs)


def test_relaxation_leaves_the_reference_alone(adk_heavy):
    relax = _adk_relaxation(adk_heavy)
    ca = adk_heavy[0].ca
    np.testing.assert_array_equal(relax.relax(ca, ca), ca)


def test_relaxation_pushes_a_domain_out_of_another(adk_heavy):
    """Targets that drive the LID 4 Å into the CORE: the result keeps bonds and has no clashes."""
    s, atoms, atom_res, label = adk_heavy
    relax = _adk_relaxation(adk_heavy)
    lid, core = label == 2, label == 0
    towards = s.ca[core].mean(0) - s.ca[lid].mean(0)
    target = s.ca.copy()
    target[lid] += 4.0 * towards / np.linalg.norm(towards)
    naive = relax.atoms(target)
    x = relax.track(np.stack([s.ca, target]))[-1]
    placed = relax.atoms(x)

    def new_clashes(a):
        from scipy.spatial import cKDTree

        p = cKDTree(a).query_pairs(3.0, output_type="ndarray")
        ri, rj = atom_res[p[:, 0]], atom_res[p[:, 1]]
        p = p[np.abs(ri - rj) > 1]
        d = np.linalg.norm(a[p[:, 0]] - a[p[:, 1]], axis=1)
        d0 = np.linalg.norm(atoms[p[:, 0]] - atoms[p[:, 1]], axis=1)
        return int((d < np.minimum(3.0, d0 - 0.5)).sum())

    assert new_clashes(naive) > 10  # the targets themselves clash
    assert new_clashes(placed) == 0
    b = s.bonded_pairs
    bonds, bonds0 = (np.linalg.norm(c[b[:, 0]] - c[b[:, 1]], axis=1) for c in (x, s.ca))
    assert np.abs(bonds - bonds0).max() < 0.3
    assert np.linalg.norm(x[lid].mean(0) - s.ca[lid].mean(0)) > 1.0  # it did move towards the targets


def test_path_statistics_reproduce_the_adk_baselines_and_see_its_hinge():
    """On ADK's DIMS path the statistics give DESIGN.md's baselines and a one-mode (hinge) motion."""
    from cryogeom.examples.adk import adk

    domains = {"CORE-a": (1, 29), "NMP": (30, 59), "CORE-b": (60, 121), "LID": (122, 159), "CORE-c": (160, 214)}
    stats = describe_path(adk(), domains, atom_frame_stride=50)
    assert stats.rmsd_to_first.mean() == pytest.approx(4.47, abs=0.01)  # always predicting frame 0
    assert stats.rmsd_to_mean.mean() == pytest.approx(2.19, abs=0.01)  # always predicting the mean
    assert stats.pc_variance_fractions[0] > 0.85  # a hinge: one collective mode
    assert stats.domains[3].max_displacement > 17.0  # the LID moves by up to ~18 Å
    # real dynamics forms new hydrogen bonds (N–O, O–O at 2.5–3 Å): the strict criterion sees them
    assert stats.new_atom_clashes > 0 and stats.min_heavy_atom_new_pairs > 2.3

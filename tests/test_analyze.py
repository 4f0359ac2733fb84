"""cryogeom analyze: latent PCA, PC traversals, k-means, the selection grammar and .star subsets."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import starfile

from cryogeom.analysis import (
    AnalysisSettings,
    analyze_latents,
    decode_latents,
    fit_pca,
    kmeans_latents,
    parse_selection,
    pc_traversal,
)
from cryogeom.analysis.selection import ClusterCondition, PCCondition
from cryogeom.cli import main
from cryogeom.errors import InputError

# ---------------------------------------------------------------------------------------------
# PCA


def test_pca_recovers_planted_direction_and_matches_covariance_eigendecomposition():
    rng = np.random.default_rng(1)
    d = 8
    direction = rng.normal(size=d)
    direction /= np.linalg.norm(direction)
    second = rng.normal(size=d)
    second -= (second @ direction) * direction
    second /= np.linalg.norm(second)
    n = 4000
    z = 3.0 + 2.0 * rng.normal(size=(n, 1)) * direction + 0.7 * rng.normal(size=(n, 1)) * second + 0.05 * rng.normal(size=(n, d))

    pca = fit_pca(z)

    assert abs(pca.components[0] @ direction) > 0.999
    assert abs(pca.components[1] @ second) > 0.99
    assert pca.explained_variance_ratio[0] > 0.85
    # Reference: eigen-decomposition of the float64 covariance matrix.
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(z, rowvar=False))
    np.testing.assert_allclose(pca.explained_variance, eigenvalues[::-1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.abs(pca.components @ eigenvectors[:, ::-1]), np.eye(d), atol=1e-6)
    np.testing.assert_allclose(pca.explained_variance_ratio.sum(), 1.0, rtol=1e-12)
    # Scores are centred, uncorrelated, with the explained variances; the transform inverts.
    scores = pca.transform(z)
    np.testing.assert_allclose(scores.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(np.cov(scores, rowvar=False), np.diag(pca.explained_variance), atol=1e-9)
    np.testing.assert_allclose(pca.inverse_transform(scores), z, atol=1e-9)
    # Deterministic signs: the largest loading of each direction is positive.
    assert np.all(pca.components[np.arange(d), np.argmax(np.abs(pca.components), axis=1)] > 0)


def test_pca_signs_do_not_depend_on_particle_order():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(300, 4)) * np.array([3.0, 2.0, 1.0, 0.5])
    a, b = fit_pca(z), fit_pca(z[rng.permutation(len(z))])
    np.testing.assert_allclose(a.components, b.components, atol=1e-9)


@pytest.mark.parametrize("bad", [np.zeros((1, 3)), np.zeros(5), np.array([[0.0, np.nan], [1.0, 2.0]])])
def test_pca_rejects_bad_latents(bad):
    with pytest.raises(InputError):
        fit_pca(bad)


# ---------------------------------------------------------------------------------------------
# Traversals


def test_traversal_spans_percentiles_along_one_pc_with_the_others_at_the_mean():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(1000, 5)) * np.array([4.0, 2.0, 1.0, 0.5, 0.25]) + 1.5
    pca = fit_pca(z)
    scores = pca.transform(z)
    for component in range(3):
        traversal = pc_traversal(pca, scores, component, 7)
        assert traversal.z.shape == (7, 5)
        assert traversal.name == f"pc{component + 1}"
        low, high = np.percentile(scores[:, component], [5, 95])
        np.testing.assert_allclose(traversal.scores[[0, -1]], [low, high])
        np.testing.assert_allclose(np.diff(traversal.scores), (high - low) / 6)
        expected = np.zeros((7, 5))
        expected[:, component] = traversal.scores
        np.testing.assert_allclose(pca.transform(traversal.z), expected, atol=1e-9)


def test_traversal_rejects_missing_pc_and_too_few_points():
    z = np.random.default_rng(0).normal(size=(50, 3))
    pca = fit_pca(z)
    with pytest.raises(InputError, match="PC4"):
        pc_traversal(pca, pca.transform(z), 3, 5)
    with pytest.raises(InputError, match="at least 2"):
        pc_traversal(pca, pca.transform(z), 0, 1)


# ---------------------------------------------------------------------------------------------
# k-means


def _planted_clusters(rng, sizes=(60, 45, 30, 15), d=6, spread=0.3):
    centres = rng.normal(size=(len(sizes), d)) * 5.0
    truth = np.repeat(np.arange(len(sizes)), sizes)
    rng.shuffle(truth)
    z = centres[truth] + spread * rng.normal(size=(len(truth), d))
    return z, truth, centres


def test_kmeans_recovers_planted_clusters_numbered_by_size():
    rng = np.random.default_rng(4)
    z, truth, centres = _planted_clusters(rng)

    result = kmeans_latents(z, 4, seed=0)

    # Planted sizes are distinct and decreasing with the planted index, so the numbering is the same.
    np.testing.assert_array_equal(result.labels, truth)
    np.testing.assert_array_equal(result.sizes, [60, 45, 30, 15])
    for c in range(4):
        np.testing.assert_allclose(result.centres[c], z[truth == c].mean(axis=0), atol=1e-12)
        members = np.flatnonzero(truth == c)
        assert result.nearest[c] == members[np.argmin(np.linalg.norm(z[members] - result.centres[c], axis=1))]
    np.testing.assert_allclose(result.inertia, sum(((z[truth == c] - z[truth == c].mean(0)) ** 2).sum() for c in range(4)))
    again = kmeans_latents(z, 4, seed=0)
    np.testing.assert_array_equal(again.labels, result.labels)


def test_kmeans_restarts_escape_a_bad_seed_and_reject_impossible_k():
    rng = np.random.default_rng(5)
    z, truth, _ = _planted_clusters(rng, sizes=(40, 40, 40, 40, 40, 40), spread=0.2)
    result = kmeans_latents(z, 6, seed=1, n_init=6)
    # Every planted cluster maps to exactly one found cluster (a permutation).
    table = np.zeros((6, 6), dtype=int)
    np.add.at(table, (truth, result.labels), 1)
    assert sorted((table > 0).sum(axis=1)) == [1] * 6 and sorted((table > 0).sum(axis=0)) == [1] * 6
    with pytest.raises(InputError, match="clusters"):
        kmeans_latents(z[:3], 4)
    with pytest.raises(InputError, match="distinct"):
        kmeans_latents(np.zeros((10, 2)), 3)


# ---------------------------------------------------------------------------------------------
# Selection grammar


@pytest.mark.parametrize(
    "text, conditions",
    [
        ("cluster=3", (ClusterCondition((3,)),)),
        ("cluster==3,5", (ClusterCondition((3, 5)),)),
        ("pc1<-0.5", (PCCondition(1, "<", -0.5),)),
        ("pc1>0.2,pc2<0", (PCCondition(1, ">", 0.2), PCCondition(2, "<", 0.0))),
        (" PC3 >= 1e-1 , cluster = 0 , 2 ", (PCCondition(3, ">=", 0.1), ClusterCondition((0, 2)))),
        ("cluster=1,4,pc2<=.5", (ClusterCondition((1, 4)), PCCondition(2, "<=", 0.5))),
    ],
)
def test_selection_grammar_parses(text, conditions):
    assert parse_selection(text).conditions == conditions


@pytest.mark.parametrize(
    "text",
    ["", "cluster", "cluster=", "cluster=a", "cluster=-1", "3", "pc1>0,5", "pc0>1", "pc1>>0", "pc1=0", "pc>1",
     "pc1>0,", "pc1>0,,pc2<0", "z1>0", "pc1<__import__('os')", "pc1>1 or pc2<0", "cluster=1;rm"],
)
def test_selection_grammar_rejects_with_one_line_naming_the_argument(text):
    with pytest.raises(InputError) as info:
        parse_selection(text)
    message = str(info.value)
    assert message.startswith("--select") and "\n" not in message


def test_selection_mask_is_the_conjunction_of_its_conditions():
    rng = np.random.default_rng(6)
    scores = rng.normal(size=(500, 4))
    labels = rng.integers(0, 6, size=500)
    cases = {
        "cluster=3": labels == 3,
        "cluster=3,5": (labels == 3) | (labels == 5),
        "pc1<-0.5": scores[:, 0] < -0.5,
        "pc1>0.2,pc2<0": (scores[:, 0] > 0.2) & (scores[:, 1] < 0),
        "cluster=0,1,pc4>=0.1,pc3<=0": np.isin(labels, [0, 1]) & (scores[:, 3] >= 0.1) & (scores[:, 2] <= 0),
    }
    for text, expected in cases.items():
        mask = parse_selection(text).mask(scores, labels, 6)
        np.testing.assert_array_equal(mask, expected, err_msg=text)
        assert 0 < mask.sum() < 500
    with pytest.raises(InputError, match="pc5"):
        parse_selection("pc5>0").mask(scores, labels, 6)
    with pytest.raises(InputError, match="cluster 6"):
        parse_selection("cluster=2,6").mask(scores, labels, 6)


def test_analyze_latents_validates_settings():
    z = np.random.default_rng(7).normal(size=(20, 4))
    with pytest.raises(InputError, match="--pcs"):
        analyze_latents(z, AnalysisSettings(n_pcs=5))
    with pytest.raises(InputError, match="--clusters"):
        analyze_latents(z, AnalysisSettings(n_clusters=21))
    with pytest.raises(InputError, match="--traversal-points"):
        analyze_latents(z, AnalysisSettings(n_points=1))


# ---------------------------------------------------------------------------------------------
# Decoding and the written conformations, with a run whose decoder visibly deforms the base

SHIFT = np.array([12.0, -7.0, 3.5])


@pytest.fixture(scope="module")
def deforming_run(tiny_run):
    """The tiny run with a random last decoder layer (Å-scale deformations) and its base moved by SHIFT.

    After two epochs the tiny run's decoder barely moves the base; this one does, and its base
    centroid is not at the origin, so frames and model order are testable.
    """
    import dataclasses

    import torch

    from cryogeom.train.run import load_run

    run = load_run(tiny_run)
    # the simulated base structure is in the map's frame: the particles rotate about the box centre
    np.testing.assert_allclose(run.rotation_centre, (run.box // 2) * run.pixel_size_angstrom, atol=1e-4)
    generator = torch.Generator().manual_seed(0)
    last = run.model.decoder.mlp[-1]
    with torch.no_grad():
        last.weight.copy_(torch.randn(last.weight.shape, generator=generator))
        run.model.rotation_centre_angstrom += torch.as_tensor(SHIFT, dtype=torch.float32)
    return dataclasses.replace(run, base=run.base.translated(SHIFT))


def test_decoded_latents_are_predicts_conformations_in_the_base_frame(deforming_run, tiny_dataset):
    from cryogeom.particles.read import read_particles
    from cryogeom.train.inference import predict

    particles = read_particles(tiny_dataset / "particles.star")
    z, ca = predict(deforming_run, particles, np.arange(10), progress=False)
    decoded = decode_latents(deforming_run, z)
    assert decoded.shape == ca.shape == (10, deforming_run.base.n_residues, 3)
    np.testing.assert_allclose(decoded, ca, atol=1e-4)
    # The base frame: the decoder's output (about the rotation centre) plus the rotation centre.
    np.testing.assert_allclose(decoded.mean(axis=(0, 1)), deforming_run.base.ca.mean(axis=0), atol=1.5)
    with pytest.raises(InputError, match=r"\[n, 8\]"):
        decode_latents(deforming_run, z[:, :5])


def test_written_traversals_and_representatives_are_the_decoded_latents(deforming_run, tmp_path):
    import MDAnalysis as mda

    from cryogeom.analysis import write_analysis

    rng = np.random.default_rng(8)
    z, truth, _ = _planted_clusters(rng, sizes=(30, 20, 10), d=8, spread=0.3)
    analysis = analyze_latents(z, AnalysisSettings(n_pcs=2, n_points=5, n_clusters=3))
    write_analysis(analysis, deforming_run, tmp_path)

    base = deforming_run.base
    for traversal in analysis.traversals:
        universe = mda.Universe(str(tmp_path / f"{traversal.name}_traversal.pdb"))
        assert len(universe.trajectory) == 5 and universe.atoms.n_atoms == base.n_residues
        np.testing.assert_array_equal(universe.residues.resids, base.resids)
        frames = np.array([ts.positions.copy() for ts in universe.trajectory])
        np.testing.assert_allclose(frames, decode_latents(deforming_run, traversal.z), atol=2e-3)
        assert np.abs(frames[0] - frames[-1]).max() > 0.1  # the traversal moves
    np.testing.assert_array_equal(np.load(tmp_path / "labels.npy"), truth)
    for name, latents in [("cluster_centres.pdb", analysis.clusters.centres), ("cluster_nearest.pdb", z[analysis.clusters.nearest])]:
        universe = mda.Universe(str(tmp_path / name))
        frames = np.array([ts.positions.copy() for ts in universe.trajectory])
        assert frames.shape == (3, base.n_residues, 3)
        np.testing.assert_allclose(frames, decode_latents(deforming_run, latents), atol=2e-3)
        assert np.abs(frames[0] - frames[1]).max() > 0.1


# ---------------------------------------------------------------------------------------------
# The command on the tiny trained run


def _run_cli(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def analysed(tiny_run, tmp_path_factory):
    """``cryogeom analyze`` run once on the tiny run (latents computed with the encoder)."""
    out = tmp_path_factory.mktemp("analysis") / "analysis"
    assert main(["analyze", str(tiny_run), "-o", str(out), "--clusters", "4", "--traversal-points", "6", "--no-progress"]) == 0
    return out


def test_analyze_writes_the_pca_and_clusters(analysed, tiny_run, tiny_dataset):
    from cryogeom.particles.read import read_particles
    from cryogeom.train.inference import predict
    from cryogeom.train.run import load_run

    run = load_run(tiny_run)
    particles = read_particles(tiny_dataset / "particles.star")
    z_predicted, ca_predicted = predict(run, particles, progress=False)
    z = np.load(analysed / "z.npy")
    np.testing.assert_allclose(z, z_predicted, rtol=1e-5, atol=1e-6)

    info = json.loads((analysed / "pca.json").read_text())
    pca = fit_pca(z)
    np.testing.assert_allclose(info["explained_variance"], pca.explained_variance, rtol=1e-6)
    np.testing.assert_allclose(info["cumulative_explained_variance_ratio"][-1], 1.0, rtol=1e-9)
    np.testing.assert_allclose(np.load(analysed / "pcs.npy"), pca.transform(z), rtol=1e-4, atol=1e-6)
    assert set(info["traversals"]) == {"pc1", "pc2", "pc3"}
    assert (analysed / "pca.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    labels = np.load(analysed / "labels.npy")
    clusters = json.loads((analysed / "clusters.json").read_text())
    assert labels.shape == (len(z),) and set(labels.tolist()) == set(range(4))
    assert clusters["sizes"] == np.bincount(labels, minlength=4).tolist()
    assert clusters["sizes"] == sorted(clusters["sizes"], reverse=True)

    # cluster_nearest.pdb: MODEL i+1 is the predicted conformation of the particle nearest centre i,
    # in the base structure's frame (the frame of predict's Cα), to PDB precision.
    import MDAnalysis as mda

    nearest = mda.Universe(str(analysed / "cluster_nearest.pdb"))
    assert len(nearest.trajectory) == 4
    for i, ts in enumerate(nearest.trajectory):
        assert labels[clusters["nearest_particle"][i]] == i
        np.testing.assert_allclose(ts.positions, ca_predicted[clusters["nearest_particle"][i]], atol=2e-3)


def test_traversal_pdbs_open_in_mdanalysis_with_one_model_per_point(analysed, tiny_run):
    import MDAnalysis as mda

    from cryogeom.structure.read import read_structure
    from cryogeom.train.run import load_run

    run = load_run(tiny_run)
    base = read_structure(tiny_run / "base.pdb")
    info = json.loads((analysed / "pca.json").read_text())
    z = np.load(analysed / "z.npy")
    pca = fit_pca(z)
    for i in range(3):
        universe = mda.Universe(str(analysed / f"pc{i + 1}_traversal.pdb"))
        assert len(universe.trajectory) == 6
        assert universe.atoms.n_atoms == base.n_residues == len(universe.residues)
        np.testing.assert_array_equal(universe.residues.resids, base.resids)
        assert set(universe.atoms.names) == {"CA"}
        scores = np.asarray(info["traversals"][f"pc{i + 1}"]["scores"])
        expected = decode_latents(run, pca.mean + scores[:, None] * pca.components[i])
        for ts, ca in zip(universe.trajectory, expected):
            np.testing.assert_allclose(ts.positions, ca, atol=2e-3)


def test_select_writes_a_star_subset_with_every_column_and_the_right_rows(analysed, tiny_run, tiny_dataset, tmp_path, capsys):
    src = tiny_dataset / "particles.star"
    labels = np.load(analysed / "labels.npy")
    scores = np.load(analysed / "pcs.npy")
    original = starfile.read(src, always_dict=True)
    for text, expected in {
        "cluster=1,3": np.isin(labels, [1, 3]),
        "pc1>0,pc2<0.001": (scores[:, 0] > 0) & (scores[:, 1] < 0.001),
    }.items():
        dst = tmp_path / "subset.star"
        status, out, _ = _run_cli(
            ["analyze", str(tiny_run), "-o", str(analysed), "--z", str(analysed / "z.npy"), "--clusters", "4",
             "--traversal-points", "6", "--select", text, "-o-star", str(dst), "--force"],
            capsys,
        )
        assert status == 0
        assert f"selected {expected.sum()} of {len(labels)}" in out
        subset = starfile.read(dst, always_dict=True)
        assert list(subset) == list(original)
        assert list(subset["particles"].columns) == list(original["particles"].columns)
        assert subset["optics"].equals(original["optics"])
        rows = original["particles"].iloc[np.flatnonzero(expected)].reset_index(drop=True)
        names = subset["particles"].pop("rlnImageName")  # rewritten to resolve from the subset's own folder
        assert subset["particles"].equals(rows.drop(columns=["rlnImageName"]))
        assert [n.split("@")[0] for n in names] == [n.split("@")[0] for n in rows["rlnImageName"]]
        assert all((dst.parent / n.split("@")[1]).resolve() == (src.parent / "particles.mrcs").resolve() for n in names)


def test_rerun_with_same_settings_needs_no_force_but_other_settings_do(analysed, tiny_run, tmp_path, capsys):
    out = tmp_path / "again"
    shutil.copytree(analysed, out)
    z = str(out / "z.npy")
    base = ["analyze", str(tiny_run), "-o", str(out), "--z", z, "--traversal-points", "6"]
    assert _run_cli([*base, "--clusters", "4"], capsys)[0] == 0
    status, _, err = _run_cli([*base, "--clusters", "5"], capsys)
    assert status == 2 and "clusters=4" in err and "--force" in err
    assert _run_cli([*base, "--clusters", "5", "--force"], capsys)[0] == 0
    assert len(set(np.load(out / "labels.npy").tolist())) == 5


def test_default_output_is_the_run_analysis_directory(tiny_run, analysed, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    status, out, _ = _run_cli(["analyze", str(run), "--z", str(analysed / "z.npy"), "--clusters", "2"], capsys)
    assert status == 0
    assert (run / "analysis" / "pc1_traversal.pdb").is_file() and not (run / "analysis" / "z.npy").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--select", "pc1>>0", "-o-star", "{tmp}/a.star"], "--select 'pc1>>0'"),
        (["--select", "pc1>1e9", "-o-star", "{tmp}/a.star"], "matches none"),
        (["--select", "cluster=7", "-o-star", "{tmp}/a.star"], "cluster 7 does not exist"),
        (["--select", "cluster=0"], "needs -o-star"),
        (["-o-star", "{tmp}/a.star"], "without --select"),
        (["--select", "cluster=0", "-o-star", "{tmp}/exists.star"], "file exists"),
        (["--z", "{tmp}/wide.npy"], "expected [n, 8]"),
        (["--z", "{tmp}/short.npy"], "latents for"),
        (["--pcs", "9"], "--pcs"),
        (["--traversal-points", "1"], "--traversal-points"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(extra, message, analysed, tiny_run, tmp_path, capsys):
    np.save(tmp_path / "wide.npy", np.zeros((72, 5), dtype=np.float32))
    np.save(tmp_path / "short.npy", np.zeros((70, 8), dtype=np.float32))
    (tmp_path / "exists.star").write_text("keep me\n")
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    if "--z" not in extra:
        extra += ["--z", str(analysed / "z.npy")]
    status, _, err = _run_cli(["analyze", str(tiny_run), "-o", str(tmp_path / "out"), "--clusters", "4", *extra], capsys)
    assert status == 2
    assert message in err and err.count("\n") == 1 and err.startswith("cryogeom analyze: error:")
    assert (tmp_path / "exists.star").read_text() == "keep me\n"
    assert not (tmp_path / "a.star").exists()


def test_missing_run_and_non_star_selection_are_refused(tmp_path, tiny_run, analysed, capsys):
    status, _, err = _run_cli(["analyze", str(tmp_path / "nope")], capsys)
    assert status == 2 and "no such run directory" in err
    cs = tmp_path / "particles.cs"
    cs.write_bytes(b"")
    status, _, err = _run_cli(
        ["analyze", str(tiny_run), "-o", str(tmp_path / "o"), "--z", str(analysed / "z.npy"), "--particles", str(cs),
         "--select", "cluster=0", "-o-star", str(tmp_path / "s.star")],
        capsys,
    )
    assert status == 2 and "RELION .star" in err


def test_maps_of_the_states_are_made_and_checked_against_their_models(tiny_run, tmp_path, capsys):
    import json

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    status, out, err = _run_cli(["analyze", str(run), "--clusters", "2", "--traversal-points", "5", "--maps", "--no-progress"], capsys)
    assert status == 0, err
    maps = json.loads((run / "analysis" / "maps" / "maps.json").read_text())["maps"]
    labels = np.load(run / "analysis" / "labels.npy")
    for m in maps:
        k = int(m["name"].removeprefix("cluster"))
        assert m["n_particles"] == int(np.sum(labels == k)) >= 20
        assert (run / "analysis" / "maps" / m["file"]).is_file()
        assert len(m["fsc_model_vs_map"]) == len(m["fsc_base_vs_map"]) == len(m["frequencies_per_angstrom"]) == 16
        assert m["fsc_half_maps"][1] > 0.3 and isinstance(m["supported"], bool)
    assert maps and "FSC = 0.143 at" in out
    assert (run / "analysis" / "maps_fsc.png").is_file()
    assert main(["report", str(run), "--no-figures"]) == 0
    page = (run / "report.html").read_text()
    assert "analysis/maps_fsc.png" in page and "Maps of the states from their own particles" in page


def test_flat_principal_components_get_no_traversal():
    rng = np.random.default_rng(0)
    n = 400
    one = np.outer(rng.normal(size=n), rng.normal(size=8)) * 10 + rng.normal(size=(n, 8)) * 1e-3
    analysis = analyze_latents(one, AnalysisSettings(n_pcs=3, n_points=4, n_clusters=3))
    assert [t.name for t in analysis.traversals] == ["pc1"] and analysis.flat == (1, 2)
    two = one + np.outer(rng.normal(size=n), rng.normal(size=8)) * 3
    analysis = analyze_latents(two, AnalysisSettings(n_pcs=3, n_points=4, n_clusters=3))
    assert [t.name for t in analysis.traversals] == ["pc1", "pc2"] and analysis.flat == (2,)
    assert analysis.pca.explained_variance_ratio[2] < 0.01 <= analysis.pca.explained_variance_ratio[1]


def test_an_earlier_traversal_of_a_now_flat_pc_is_removed_and_other_files_kept(deforming_run, tmp_path):
    import json

    from cryogeom.analysis.latent_analysis import write_analysis

    rng = np.random.default_rng(1)
    spread = np.outer(rng.normal(size=60), rng.normal(size=8)) + np.outer(rng.normal(size=60), rng.normal(size=8)) * 0.5
    write_analysis(analyze_latents(spread, AnalysisSettings(n_pcs=2, n_points=3, n_clusters=2)), deforming_run, tmp_path)
    assert (tmp_path / "pc2_traversal.pdb").is_file()
    (tmp_path / "pc3_traversal.pdb").write_text("REMARK a user's file\n")
    flat = np.outer(rng.normal(size=60), rng.normal(size=8))
    write_analysis(analyze_latents(flat, AnalysisSettings(n_pcs=3, n_points=3, n_clusters=2)), deforming_run, tmp_path)
    assert not (tmp_path / "pc2_traversal.pdb").exists()  # written by the earlier analysis, flat now
    assert (tmp_path / "pc3_traversal.pdb").read_text() == "REMARK a user's file\n"  # never listed by cryogeom
    assert json.loads((tmp_path / "pca.json").read_text())["flat_pcs"] == ["pc2", "pc3"]

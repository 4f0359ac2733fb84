"""The analysis of a trained latent space, as a library (``cryogeom analyze`` is a thin wrapper).

``analyze_latents(z, ...)`` computes the PCA, the PC traversals and the k-means clusters of the
latents z [n, d]; ``write_analysis(analysis, run, out_dir)`` decodes the traversals and the cluster
representatives with the run's network and writes (all conformations in the base structure's
frame, Cα only, one MODEL per conformation):

    pca.json               explained variance (per PC and cumulative), mean, directions, traversal scores
    pca.png                PC1 vs PC2 coloured by density, explained variance, PC histograms
    pcs.npy                [n, d] PC scores of every particle (file order), the units of --select pcK
    pc1_traversal.pdb ...  n_points conformations along PC1 (5th -> 95th percentile), PC2, ...
    labels.npy             [n] k-means cluster of every particle (0 = largest cluster)
    clusters.json          sizes, centres, the particle nearest each centre, inertia
    cluster_centres.pdb    the decoded cluster centres: MODEL i+1 is cluster i
    cluster_nearest.pdb    the particle nearest each centre, decoded: MODEL i+1 is cluster i
    analysis.json          the settings and a checksum of the latents these files came from

See :mod:`cryogeom.analysis.traversal` for viewing the PDB files in ChimeraX.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryogeom import __version__, files
from cryogeom.analysis.decode import decode_latents
from cryogeom.analysis.figures import plot_latent_pca
from cryogeom.analysis.kmeans import KMeansResult, kmeans_latents
from cryogeom.analysis.pca import LatentPCA, fit_pca
from cryogeom.analysis.traversal import PERCENTILES, Traversal, pc_traversal
from cryogeom.errors import InputError
from cryogeom.files import atomic_output
from cryogeom.structure.write import write_pdb

MANIFEST_NAME = "analysis.json"
#: a PC that carries less than this fraction of z's variance is flat: no traversal is written for it
#: (decoded, it barely moves the structure); PC1 always gets one
MIN_TRAVERSAL_VARIANCE = 0.01


@dataclass(frozen=True)
class AnalysisSettings:
    n_pcs: int = 3
    n_points: int = 10
    n_clusters: int = 10
    seed: int = 0


@dataclass(frozen=True)
class LatentAnalysis:
    """PCA, traversals and clusters of latents ``z`` [n, d]."""

    z: np.ndarray
    settings: AnalysisSettings
    pca: LatentPCA
    pc_scores: np.ndarray  # [n, k]
    traversals: tuple[Traversal, ...]
    clusters: KMeansResult
    flat: tuple[int, ...] = ()  # 0-based PCs among the first n_pcs with no traversal (< MIN_TRAVERSAL_VARIANCE)


def output_names(settings: AnalysisSettings) -> list[str]:
    """The files :func:`write_analysis` writes for ``settings``."""
    traversals = [f"pc{i + 1}_traversal.pdb" for i in range(settings.n_pcs)]
    return [
        "pca.json", "pca.png", "pcs.npy", *traversals,
        "labels.npy", "clusters.json", "cluster_centres.pdb", "cluster_nearest.pdb", MANIFEST_NAME,
    ]


def latents_checksum(z) -> str:
    """SHA-256 of the latents' shape, dtype and values (to recognise outputs made from the same z)."""
    z = np.ascontiguousarray(z)
    digest = hashlib.sha256(f"{z.shape}|{z.dtype.str}|".encode())
    digest.update(z.tobytes())
    return digest.hexdigest()


def analyze_latents(z, settings: AnalysisSettings = AnalysisSettings()) -> LatentAnalysis:
    """PCA of ``z`` [n, d], traversals along PC1..PC``n_pcs``, and ``n_clusters``-means clusters."""
    z = np.asarray(z)
    if z.ndim != 2:
        raise InputError(f"latents: expected an [n, d] array, got shape {z.shape}")
    n, d = z.shape
    if not 1 <= settings.n_pcs <= d:
        raise InputError(f"--pcs: expected 1 to {d} (the latent dimension), got {settings.n_pcs}")
    if settings.n_points < 2:
        raise InputError(f"--traversal-points: expected at least 2, got {settings.n_points}")
    if not 1 <= settings.n_clusters <= n:
        raise InputError(f"--clusters: expected 1 to {n} (the number of particles), got {settings.n_clusters}")
    pca = fit_pca(z)
    if settings.n_pcs > pca.n_components:
        raise InputError(f"--pcs: {n} particles give only {pca.n_components} principal components, got {settings.n_pcs}")
    scores = pca.transform(z)
    ratio = pca.explained_variance_ratio
    flat = tuple(i for i in range(1, settings.n_pcs) if ratio[i] < MIN_TRAVERSAL_VARIANCE)
    traversals = tuple(pc_traversal(pca, scores, i, settings.n_points) for i in range(settings.n_pcs) if i not in flat)
    clusters = kmeans_latents(z, settings.n_clusters, seed=settings.seed)
    return LatentAnalysis(z=z, settings=settings, pca=pca, pc_scores=scores, traversals=traversals, clusters=clusters, flat=flat)


def manifest(settings: AnalysisSettings, z=None) -> dict:
    """What ``analysis.json`` records to recognise an analysis: the settings and (given ``z``) the
    latents' shape and checksum."""
    out = {"n_pcs": settings.n_pcs, "traversal_points": settings.n_points, "clusters": settings.n_clusters, "seed": settings.seed}
    if z is not None:
        out.update(n_particles=int(z.shape[0]), latent_dim=int(z.shape[1]), latents_sha256=latents_checksum(z))
    return out


def check_outputs(out_dir: str | os.PathLike, settings: AnalysisSettings, z=None, *, force: bool) -> None:
    """Refuse (InputError) to overwrite an analysis made with other settings or latents, unless ``force``.

    Outputs of an identical analysis (same settings and latents) may be rewritten: they would not
    change, so e.g. re-running with ``--select`` needs no ``--force``. Without ``z`` only the
    settings are compared (an early check before the latents are computed).
    """
    out = Path(out_dir)
    existing = [name for name in (*output_names(settings), "z.npy") if (out / name).exists()]
    if not existing or force:
        return
    path = out / MANIFEST_NAME
    previous = None
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
        except (OSError, ValueError):
            previous = None
    wanted = manifest(settings, z)
    if not isinstance(previous, dict):
        shown = ", ".join(existing[:3]) + (", ..." if len(existing) > 3 else "")
        raise InputError(f"{out}: already holds {shown}; use --force to overwrite or -o for another directory")
    differ = [key for key, value in wanted.items() if previous.get(key) != value]
    if differ:
        what = ", ".join("other latents" if key == "latents_sha256" else f"{key}={previous.get(key)}" for key in differ)
        raise InputError(
            f"{out}: already holds an analysis made with {what}; use --force to overwrite it or -o for another directory"
        )


def _remove_earlier_flat_traversals(out: Path, flat) -> None:
    """An earlier analysis in ``out`` may have written a traversal for a PC that is flat now: remove
    it where that analysis's pca.json names it as its own, so that no stale motion is shown."""
    try:
        earlier = json.loads((out / "pca.json").read_text()).get("traversals", {})
    except (OSError, ValueError, AttributeError):
        return
    for i in flat:
        name = f"pc{i + 1}"
        path = out / f"{name}_traversal.pdb"
        if path.is_file() and isinstance(earlier, dict) and name in earlier:
            path.unlink()


def write_analysis(analysis: LatentAnalysis, run, out_dir: str | os.PathLike, **manifest_extra) -> list[Path]:
    """Decode the traversals and cluster representatives with ``run`` and write every output file
    (see the module docstring) into ``out_dir``; returns the paths written. ``manifest_extra``
    (e.g. where the latents came from) is recorded in ``analysis.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pca, clusters, base = analysis.pca, analysis.clusters, run.base
    written: list[Path] = []

    for traversal in analysis.traversals:
        path = out / f"{traversal.name}_traversal.pdb"
        write_pdb(path, base, decode_latents(run, traversal.z))
        written.append(path)
    _remove_earlier_flat_traversals(out, analysis.flat)
    write_pdb(out / "cluster_centres.pdb", base, decode_latents(run, clusters.centres))
    write_pdb(out / "cluster_nearest.pdb", base, decode_latents(run, analysis.z[clusters.nearest]))
    written += [out / "cluster_centres.pdb", out / "cluster_nearest.pdb"]

    files.save_npy(out / "pcs.npy", analysis.pc_scores.astype(np.float32))
    files.save_npy(out / "labels.npy", clusters.labels.astype(np.int64))
    info = {
        "n_particles": int(len(analysis.z)),
        "latent_dim": int(analysis.z.shape[1]),
        **pca.to_dict(),
        "traversals": {
            t.name: {"file": f"{t.name}_traversal.pdb", "percentiles": list(PERCENTILES), "scores": t.scores.tolist()}
            for t in analysis.traversals
        },
        "flat_pcs": [f"pc{i + 1}" for i in analysis.flat],
    }
    files.write_json(out / "pca.json", info)
    files.write_json(
        out / "clusters.json",
        {
            "k": clusters.k,
            "seed": analysis.settings.seed,
            "sizes": clusters.sizes.tolist(),
            "inertia": clusters.inertia,
            "centres": clusters.centres.tolist(),
            "nearest_particle": clusters.nearest.tolist(),
            "files": {
                "labels": "labels.npy",
                "centres": "cluster_centres.pdb (MODEL i+1 is cluster i)",
                "nearest": "cluster_nearest.pdb (MODEL i+1 is cluster i)",
            },
        },
    )
    with atomic_output(out / "pca.png") as tmp:
        plot_latent_pca(
            tmp, pca, analysis.pc_scores, n_pcs=analysis.settings.n_pcs,
            traversal_scores={t.component: t.scores for t in analysis.traversals},
            cluster_centre_scores=pca.transform(clusters.centres),
        )
    files.write_json(out / MANIFEST_NAME, {**manifest(analysis.settings, analysis.z), "version": __version__, **manifest_extra})
    written += [out / n for n in ("pcs.npy", "labels.npy", "pca.json", "clusters.json", "pca.png", MANIFEST_NAME)]
    return written

"""Maps of the states the network found, from their particles, checked against the states' models.

For each k-means cluster (and a ``--select`` subset) the particles the network put there are
reconstructed without the network (:mod:`cryogeom.reconstruct`), and the map is compared by FSC
with the density of the cluster's predicted model and with that of the base structure, both drawn
with the network's density model. A state whose model fits its own map better than the base
structure does is supported by the data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from cryogeom import files
from cryogeom.files import atomic_output
from cryogeom.reconstruct.fourier import fourier_shell_correlation
from cryogeom.reconstruct.maps import MIN_PER_HALF, reconstruct, write_map
from cryogeom.reconstruct.model_map import mean_fsc_to, model_density

MAPS_DIR = "maps"


def state_map(run, particles, indices, model_ca: np.ndarray, name: str, out_dir: Path, *, base_density=None,
              progress: bool = True) -> dict:
    """Reconstruct ``particles[indices]``, write ``out_dir/NAME.mrc``, and compare with the model
    ``model_ca`` [N, 3] (base-structure frame) and the base structure (whose density on the map's
    grid, ``base_density``, is drawn here unless given)."""
    rec = reconstruct(particles, indices, invert=run.calibration.invert_data, progress=progress)
    centre = run.rotation_centre
    write_map(out_dir / f"{name}.mrc", rec.full, rec.pixel_size_angstrom, centre)
    box, pixel = rec.full.shape[0], rec.pixel_size_angstrom
    model = model_density(run.model.density, np.asarray(model_ca, dtype=np.float64) - centre, box, pixel)
    base = base_density if base_density is not None else model_density(run.model.density, run.base.ca - centre, box, pixel)
    freq, fsc_model = fourier_shell_correlation(rec.full, model, pixel)
    _, fsc_base = fourier_shell_correlation(rec.full, base, pixel)
    model_mean, base_mean = mean_fsc_to(freq, fsc_model, rec.resolution_angstrom), mean_fsc_to(freq, fsc_base, rec.resolution_angstrom)
    return {
        "name": name, "file": f"{name}.mrc", "n_particles": rec.n_particles, "resolution_angstrom": rec.resolution_angstrom,
        "frequencies_per_angstrom": freq.tolist(), "fsc_half_maps": rec.fsc.tolist(),
        "fsc_model_vs_map": fsc_model.tolist(), "fsc_base_vs_map": fsc_base.tolist(),
        "mean_fsc_model_vs_map": model_mean, "mean_fsc_base_vs_map": base_mean,
        "supported": bool(model_mean > base_mean),
    }


def cluster_maps(run, particles, labels: np.ndarray, centres_ca: np.ndarray, out_dir, *, selection=None,
                 selection_ca=None, progress: bool = True) -> list[dict]:
    """A map and its model check for every cluster with enough particles (and for ``selection``,
    a boolean mask, with its model ``selection_ca``); writes ``out_dir/maps/`` and the figure
    ``out_dir/maps_fsc.png``."""
    folder = Path(out_dir) / MAPS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    pixel = float(np.median(particles.pixel_size_angstrom))
    base = model_density(run.model.density, run.base.ca - run.rotation_centre, particles.box, pixel)  # the same for every state
    for k in range(len(centres_ca)):
        members = np.flatnonzero(labels == k)
        if len(members) < 2 * MIN_PER_HALF:
            continue
        results.append(state_map(run, particles, members, centres_ca[k], f"cluster{k}", folder, base_density=base, progress=progress))
    if selection is not None and int(np.sum(selection)) >= 2 * MIN_PER_HALF:
        results.append(state_map(run, particles, np.flatnonzero(selection), selection_ca, "selection", folder, base_density=base,
                                 progress=progress))
    files.write_json(folder / "maps.json", {"maps": results})
    plot_state_fsc(results, Path(out_dir) / "maps_fsc.png")
    return results


def plot_state_fsc(results: list[dict], path) -> Path:
    """One panel per map: the half-map FSC, and the FSC of the state's model and of the base
    structure against the map."""
    n = max(1, len(results))
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(4.0 * cols, 3.2 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, r in zip(axes, results):
        f = np.asarray(r["frequencies_per_angstrom"])
        ax.plot(f, r["fsc_half_maps"], color="0.4", label="half maps")
        ax.plot(f, r["fsc_model_vs_map"], color="tab:blue", label="model vs map")
        ax.plot(f, r["fsc_base_vs_map"], color="tab:orange", linestyle="--", label="base structure vs map")
        ax.axhline(0.143, color="0.7", linewidth=0.8)
        ax.set_title(f"{r['name']} ({r['n_particles']} particles, {r['resolution_angstrom']:.1f} Å)", fontsize=9)
        ax.set_xlabel("spatial frequency (1/Å)")
        ax.set_ylim(-0.1, 1.02)
    for ax in axes[len(results):]:
        ax.axis("off")
    axes[0].set_ylabel("FSC")
    axes[0].legend(fontsize=7, loc="lower left")
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return Path(path)

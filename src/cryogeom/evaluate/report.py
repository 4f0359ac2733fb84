"""``RUN/report.html``: one self-contained page summarising a run.

Built only from what the run directory holds, so it can be regenerated at any time:

* accuracy from ``evaluation.json`` (``cryogeom evaluate``): EMD-RMSD, mean RMSD, both baselines,
  the 3.8 Å line; failing that, the last validation scores recorded during training;
* training from ``metrics.csv``: epochs, training time, images/s, final losses;
* the configuration (``config.json``, ``calibration.json``);
* every PNG in ``figures/`` and those other commands wrote into subdirectories (e.g.
  ``analysis/pca.png``), embedded (base64), each linked to its file;
* links (relative paths) to the output files: model, metrics, evaluation, predictions
  (e.g. ``predict/*.dcd``) and analyses (e.g. ``analysis/*.pdb``) found in the run directory.

No external resources: the page opens offline in any browser; its one script is the 3D view of
the learned motion (:mod:`cryogeom.evaluate.viewer`, 3Dmol.js embedded).
"""

from __future__ import annotations

import base64
import fnmatch
import html
import json
import time
from pathlib import Path

import numpy as np

from cryogeom import __version__, files
from cryogeom import run_dir as rd
from cryogeom.evaluate.evaluation import CA_CA_DISTANCE_ANGSTROM
from cryogeom.evaluate.figures import CAPTIONS
from cryogeom.evaluate.viewer import viewer_section
from cryogeom.run_dir import read_metrics, read_run_metadata

# What files written by other commands hold (glob pattern on the file name -> description).
_KNOWN_OUTPUTS = (
    ("z.npy", "latent of each particle [n, d]"),
    ("ca.npy", "predicted Cα of each particle [n, N, 3], Å"),
    ("*.dcd", "predicted conformations as a trajectory (open topology.pdb first)"),
    ("topology.pdb", "topology for the trajectory"),
    ("pc*_traversal.pdb", "conformations along a principal component of z (one MODEL each)"),
    ("cluster_centres.pdb", "conformations at the k-means cluster centres"),
    ("cluster_nearest.pdb", "the particle nearest each cluster centre"),
    ("pca.png", "latent PCA"),
    ("pca.json", "principal directions of z and the variance along each"),
    ("pcs.npy", "each particle's scores on the principal components [n, k]"),
    ("labels.npy", "each particle's k-means cluster [n]"),
    ("clusters.json", "k-means centres, sizes and the particle nearest each"),
    ("analysis.json", "the settings and latents an analysis was made with"),
    ("cryogeom_files.json", "the files cryogeom wrote into this run"),
    ("*.star", "a particle subset (cryogeom analyze --select)"),
    ("*.mrc", "a map reconstructed from particles (cryogeom analyze --maps, cryogeom reconstruct)"),
    ("maps.json", "resolution and model-vs-map FSC of each state's map"),
)
_OTHER_CAPTIONS = {
    "pca.png": "The latent space (cryogeom analyze): the variance each principal component of z carries, and the "
               "particles on the first components with the PC traversals and k-means centres. z is in latent units: "
               "the network's own coordinates, whose scale has no physical meaning; the traversal PDBs show what a "
               "direction does to the structure.",
}
_OTHER_CAPTIONS["maps_fsc.png"] = (
    "Maps of the states from their own particles (cryogeom analyze --maps; no network): for each cluster the FSC "
    "between its half maps (grey), between the map and its state's model (blue) and between the map and the base "
    "structure (orange, dashed). A state whose model fits its map better than the base structure does is supported "
    "by the data.")
_SKIP_DIRS = {rd.FIGURES_DIR, rd.TENSORBOARD_DIR}
_MAX_LISTED_FILES = 200
_MAX_OTHER_FIGURES = 20

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #1d2330; background: #ffffff; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 3px solid #2f6fb3; padding-bottom: 0.2em; }
h2 { font-size: 1.25em; color: #2f6fb3; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #c9d3e0; padding: 0.25em 0.7em; text-align: left; vertical-align: top; }
th { background: #eef3fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.headline td { font-weight: bold; background: #fff6d8; }
.note { color: #5a6478; font-size: 0.9em; }
.warning { color: #8a4b00; background: #fff4e0; border-left: 4px solid #e0a030; padding: 0.4em 0.8em; }
figure { margin: 1em 0 2em 0; }
figure img { max-width: 100%; border: 1px solid #dde3ec; }
figcaption { font-size: 0.9em; color: #3a4356; max-width: 900px; }
code { background: #f2f4f8; padding: 0 0.25em; }
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _angstrom(value) -> str:
    return f"{float(value):.3f} Å"


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _table(rows, header=None, headline_rows=()) -> str:
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>")
    for i, row in enumerate(rows):
        cls = ' class="headline"' if i in headline_rows else ""
        cells = []
        for cell in row:
            if isinstance(cell, tuple):  # (text, attributes)
                text, attrs = cell
                cells.append(f"<td {attrs}>{_e(text)}</td>")
            else:
                cells.append(f"<td>{_e(cell)}</td>")
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _accuracy_section(evaluation: dict | None, metrics, stale: bool = False) -> str:
    if evaluation is not None:
        emd = evaluation["emd_rmsd_angstrom"]
        mean_line = evaluation["baseline_mean_structure_angstrom"]
        verdict = (
            "below the mean-structure line: the reconstruction has learned part of the motion"
            if emd < mean_line
            else "not below the mean-structure line: the reconstruction has not shown that it learned the motion"
        )
        rows = [
            ("EMD-RMSD", (_angstrom(emd), 'class="num" id="emd-rmsd"'), "optimal one-to-one pairing of predictions with ground truth (paper App. G)"),
            ("mean RMSD", (_angstrom(evaluation["rmsd_angstrom"]), 'class="num" id="rmsd"'), "each prediction against its own ground-truth frame"),
            ("baseline: base structure", (_angstrom(evaluation["baseline_base_structure_angstrom"]), 'class="num" id="baseline-base"'),
             "the base structure predicted for every particle (the paper's initialisation)"),
            ("baseline: mean structure", (_angstrom(mean_line), 'class="num" id="baseline-mean"'),
             "the mean ground-truth structure predicted for every particle"),
            ("reference: Cα–Cα distance", (_angstrom(CA_CA_DISTANCE_ANGSTROM), 'class="num"'), "the field's good-backbone line"),
        ]
        timing = evaluation.get("timings_seconds", {})
        note = (
            f"K = {_e(evaluation.get('k'))} held-out particles, {_e(evaluation.get('n_residues'))} residues, "
            f"{_e(evaluation.get('n_frames', '?'))} ground-truth frames; evaluated {_e(evaluation.get('created', ''))}"
            + (f" in {sum(timing.values()):.1f} s" if timing else "")
            + f". EMD-RMSD is {_e(verdict)}."
        )
        if stale:
            note += (
                ' <strong id="stale-evaluation">evaluation.json is older than model.pt: these scores are of an earlier '
                "network; run cryogeom evaluate again.</strong>"
            )
        return "<h2>Accuracy (held-out particles)</h2>\n" + _table(rows, ("", "value", "meaning"), headline_rows=(0,)) + f'\n<p class="note">{note}</p>'
    if metrics is not None and "val_emd_rmsd" in metrics.columns and metrics["val_emd_rmsd"].notna().any():
        last = metrics[metrics["val_emd_rmsd"].notna()].iloc[-1]
        rows = [("EMD-RMSD", (_angstrom(last["val_emd_rmsd"]), 'class="num" id="emd-rmsd"'))]
        for name, label in (("val_rmsd", "mean RMSD"), ("baseline_base_structure", "baseline: base structure"),
                            ("baseline_mean_structure", "baseline: mean structure")):
            if name in last and np.isfinite(last[name]):
                rows.append((label, (_angstrom(last[name]), 'class="num"')))
        return (
            "<h2>Accuracy (validation during training)</h2>\n" + _table(rows, ("", "value"), headline_rows=(0,))
            + f'\n<p class="note">Last validation pass of training (epoch {_e(int(last["epoch"]))}). '
            "Run <code>cryogeom evaluate RUN/ --ground-truth ground_truth.npz</code> for the full evaluation.</p>"
        )
    return (
        "<h2>Accuracy</h2>\n<p class=\"note\">No ground truth: accuracy is not known. For synthetic data, run "
        "<code>cryogeom evaluate RUN/ --ground-truth ground_truth.npz</code>.</p>"
    )


def cut_short(metrics, meta: dict) -> str | None:
    """A sentence when training stopped before its schedule ended (a time budget), else None."""
    if metrics is None or not len(metrics):
        return None
    planned = (meta.get("config") or {}).get("epochs")
    last = metrics.iloc[-1]
    partial = "partial_epoch" in metrics.columns and float(last.get("partial_epoch") or 0) == 1
    done = float(last["epoch"]) - (1 if partial else 0)
    if planned is None or (not partial and done >= float(planned)):
        return None
    return (f"Training was cut short: {done:g} of {int(planned)} epochs done when the time budget (--max-minutes) ran out; "
            "the schedule did not finish. Continue with cryogeom train … --resume (a larger --max-minutes, or none).")


def _training_section(metrics, meta: dict | None = None) -> str:
    if metrics is None:
        return '<h2>Training</h2>\n<p class="note">No metrics.csv yet.</p>'
    last = metrics.iloc[-1]
    rows = []
    warning = cut_short(metrics, meta or {})

    def add(label, column, fmt):
        if column in metrics.columns and np.isfinite(float(last[column])):
            rows.append((label, (fmt(float(last[column])), 'class="num"')))

    add("epochs", "epoch", lambda v: f"{int(v)}")
    add("optimiser steps", "step", lambda v: f"{int(v)}")
    add("training time", "train_minutes", lambda v: f"{v:.2f} min")
    if "images_per_s" in metrics.columns and metrics["images_per_s"].notna().any():
        rows.append(("images/s (median over epochs)", (f"{float(np.nanmedian(metrics['images_per_s'])):.1f}", 'class="num"')))
    add("final training loss", "train_loss", lambda v: f"{v:.5g}")
    add("final image loss (training)", "train_image", lambda v: f"{v:.5g}")
    add("final image loss (validation)", "val_image", lambda v: f"{v:.5g}")
    add("final geometry loss", "train_geometry", lambda v: f"{v:.3g}")
    add("final chain loss", "train_chain", lambda v: f"{v:.3g}")
    add("final bond loss", "train_bond", lambda v: f"{v:.3g}")
    add("final learning rate", "lr", lambda v: f"{v:.3g}")
    note = ('<p class="note">The image loss is the mean squared difference per pixel between each particle image '
            "(standardised on its background) and the render of its predicted conformation; pure noise scores about 1, "
            "so the gain over 1 is the signal the network explains.</p>")
    flag = f'<p class="warning" id="cut-short">{_e(warning)}</p>\n' if warning else ""
    return "<h2>Training</h2>\n" + flag + _table(rows) + "\n" + note


def _configuration_section(meta: dict, calibration: dict | None) -> str:
    rows = []
    for key in ("particles", "n_particles", "base_structure", "n_residues", "box", "pixel_size_angstrom", "version", "torch", "started"):
        if key in meta:
            rows.append((key, meta[key]))
    if meta.get("command_line"):
        rows.append(("command line", " ".join(str(a) for a in meta["command_line"])))
    if calibration:
        rows.append(("contrast", "inverted (protein bright; negated before use)" if calibration.get("invert_data") else "protein dark"))
    settings = meta.get("config", {})
    setting_rows = [(key, json.dumps(value) if not isinstance(value, str) else value) for key, value in sorted(settings.items())]
    return (
        "<h2>Configuration</h2>\n" + _table(rows)
        + ("\n<h3>Training settings</h3>\n" + _table(setting_rows, ("setting", "value")) if setting_rows else "")
    )


def _other_pngs(run_dir: Path) -> list[Path]:
    """PNGs written by other commands into subdirectories of the run (e.g. analysis/pca.png)."""
    found = []
    for sub in sorted(p for p in run_dir.iterdir() if p.is_dir() and p.name not in _SKIP_DIRS and not p.name.startswith(".")):
        found += sorted(p for p in sub.rglob("*.png") if not p.name.startswith("."))
    return found[:_MAX_OTHER_FIGURES]


def _figure(run_dir: Path, png: Path, caption: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    rel = png.relative_to(run_dir).as_posix()
    return (
        f'<figure id="fig-{_e(rel.replace("/", "-").removesuffix(".png"))}"><a href="{_e(rel)}">'
        f'<img alt="{_e(rel)}" src="data:image/png;base64,{data}"></a>'
        f"<figcaption><code>{_e(rel)}</code>: {_e(caption)}</figcaption></figure>"
    )


def _figures_section(run_dir: Path) -> str:
    folder = run_dir / rd.FIGURES_DIR
    pngs = sorted(p for p in folder.glob("*.png") if not p.name.startswith(".")) if folder.is_dir() else []
    order = list(CAPTIONS)
    pngs.sort(key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name))
    others = _other_pngs(run_dir)
    if not pngs and not others:
        return '<h2>Figures</h2>\n<p class="note">No figures yet.</p>'
    parts = ["<h2>Figures</h2>"]
    parts += [_figure(run_dir, png, CAPTIONS.get(png.name, png.stem.replace("_", " "))) for png in pngs]
    parts += [_figure(run_dir, png, _OTHER_CAPTIONS.get(png.name, f"from {png.parent.relative_to(run_dir).as_posix()}/")) for png in others]
    return "\n".join(parts)


def _human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _files_section(run_dir: Path) -> str:
    rows = []
    for name, meaning in rd.DESCRIPTIONS.items():
        path = run_dir / name
        if path.is_file():
            rows.append((name, meaning, path.stat().st_size))
    others = []
    for sub in sorted(p for p in run_dir.iterdir() if p.is_dir() and p.name not in _SKIP_DIRS and not p.name.startswith(".")):
        others += [p for p in sorted(sub.rglob("*")) if p.is_file() and not p.name.startswith(".")]
    for path in others[:_MAX_LISTED_FILES]:
        meaning = next((text for pattern, text in _KNOWN_OUTPUTS if fnmatch.fnmatch(path.name, pattern)), "")
        rows.append((path.relative_to(run_dir).as_posix(), meaning, path.stat().st_size))
    lines = ["<h2>Files</h2>", "<table>", "<tr><th>file</th><th>size</th><th>content</th></tr>"]
    for rel, meaning, size in rows:
        lines.append(f'<tr><td><a href="{_e(rel)}">{_e(rel)}</a></td><td class="num">{_human_size(size)}</td><td>{_e(meaning)}</td></tr>')
    if (run_dir / rd.TENSORBOARD_DIR).is_dir():
        lines.append('<tr><td><a href="tensorboard/">tensorboard/</a></td><td></td><td>TensorBoard logs (tensorboard --logdir)</td></tr>')
    lines.append("</table>")
    if len(others) > _MAX_LISTED_FILES:
        lines.append(f'<p class="note">… and {len(others) - _MAX_LISTED_FILES} more files.</p>')
    return "\n".join(lines)


def _latent_section(run_dir: Path, evaluation: dict | None) -> str:
    """How much of z's variance each PC carries (``cryogeom analyze``'s pca.json, or else the
    evaluation's), which PCs are flat, and — for a landscape with known coordinates — how each
    coordinate correlates with each PC."""
    pca = _read_json(run_dir / rd.ANALYSIS_DIR / "pca.json")
    known = (evaluation or {}).get("latent_coordinates")
    if pca is not None and "explained_variance_ratio" in pca:
        ratio, source = pca["explained_variance_ratio"], f"{pca.get('n_particles', '?')} particles (cryogeom analyze)"
    elif known is not None:
        ratio, source = known["variance_fraction_per_pc"], f"{evaluation.get('k', '?')} held-out particles (cryogeom evaluate)"
    else:
        return ""
    flat = set((pca or {}).get("flat_pcs", []))
    coordinates = (known or {}).get("coordinates", [])
    header = ("PC", "share of z's variance", *(f"r with {c['name']}" for c in coordinates))
    rows = []
    for i, share in enumerate(ratio):
        label = f"PC{i + 1}" + (" (flat: no traversal)" if f"pc{i + 1}" in flat else "")
        percent = 100 * share
        cells = [(f"{percent:.1f} %" if percent >= 1 else f"{percent:.2g} %", 'class="num"')]
        for c in coordinates:
            r = c["correlation_per_pc"][i] if i < len(c["correlation_per_pc"]) else float("nan")
            cells.append((f"{r:+.2f}", 'class="num"'))
        rows.append((label, *cells))
    note = f"Principal components of the latents of {_e(source)}. A PC after the first that carries under 1 % of the variance is flat: cryogeom analyze writes no traversal for it."
    if coordinates:
        note += " " + "; ".join(
            f"{_e(c['name'])}: |r| = {c['best_abs_r']:.2f} with PC{c['best_pc']}, R² of a linear fit on z {c['linear_r2']:.2f}" for c in coordinates) + "."
    return "<h2>Latent space</h2>\n" + _table(rows, header) + f'\n<p class="note">{note}</p>'


def _older_than_model(path: Path, run_dir: Path) -> bool:
    model = run_dir / rd.MODEL
    return model.is_file() and path.stat().st_mtime < model.stat().st_mtime


def build_report(run_dir) -> str:
    """The HTML of the report for ``run_dir`` (see the module docstring)."""
    run_dir = Path(run_dir)
    meta = read_run_metadata(run_dir)
    metrics = read_metrics(run_dir)
    evaluation = _read_json(run_dir / rd.EVALUATION)
    if evaluation is not None and not all(k in evaluation for k in ("emd_rmsd_angstrom", "rmsd_angstrom", "baseline_mean_structure_angstrom", "baseline_base_structure_angstrom")):
        evaluation = None
    calibration = _read_json(run_dir / rd.CALIBRATION)
    title = f"cryogeom report: {run_dir.resolve().name}"
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="note">{_e(run_dir.resolve())} — report written {_e(time.strftime("%Y-%m-%d %H:%M:%S"))} by cryogeom {_e(__version__)}</p>',
        _accuracy_section(evaluation, metrics, stale=evaluation is not None and _older_than_model(run_dir / rd.EVALUATION, run_dir)),
        viewer_section(run_dir),
        _latent_section(run_dir, evaluation),
        _training_section(metrics, meta),
        _figures_section(run_dir),
        _files_section(run_dir),
        _configuration_section(meta, calibration),
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def write_report(run_dir) -> Path:
    """Write ``run_dir/report.html`` atomically; returns its path."""
    run_dir = Path(run_dir)
    path = files.write_text(run_dir / rd.REPORT, build_report(run_dir))
    rd.record(run_dir, rd.REPORT)
    return path

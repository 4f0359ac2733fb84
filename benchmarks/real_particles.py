"""ADK particles as a consensus refinement gives them: the map's frame, pose errors, junk.

For each scenario: simulate the built-in ADK path (``cryogeom simulate``, the scenario's options),
train with the defaults (``cryogeom train``, base structure ``base.pdb`` in the map's coordinates),
evaluate on the held-out true particles (``cryogeom evaluate``), and measure from the run's
``particles.npz`` and ``refined_particles.star`` against ``ground_truth.npz``:

* the median angular error of the poses written to the .star and of the refined poses (true
  particles), and the same for the shifts;
* the ROC AUC of the particle score separating true particles from each kind of junk.

Scenarios (``--scenarios``): clean; offset (rotation centre ``--offset`` Å from the Cα centroid);
poses (``--pose-error`` ° RMS, ``--shift-error`` Å RMS); junk (``--junk`` fraction, three kinds);
all (the three together); offset-centroid (the offset data trained about the Cα centroid, as
cryogeom did before it read the map's frame); X-refined (trained with ``--refine-poses``);
junk-unweighted (junk not down-weighted).

  python benchmarks/real_particles.py --out /tmp/real --per-conf 300
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

#: scenario -> (the simulation it trains on, extra arguments of cryogeom train)
SCENARIOS = {
    "clean": ("clean", []), "offset": ("offset", []), "poses": ("poses", []), "junk": ("junk", []), "all": ("all", []),
    "offset-centroid": ("offset", ["--rotation-centre", "centroid"]),  # as cryogeom trained before it read the map's frame
    "poses-refined": ("poses", ["--refine-poses"]), "all-refined": ("all", ["--refine-poses"]),
    "clean-refined": ("clean", ["--refine-poses"]), "junk-unweighted": ("junk", ["--set", "junk_weighting=false"]),
}


def simulate_args(name: str, a) -> list[str]:
    offset = ["--rotation-centre-offset", str(a.offset)]
    poses = ["--pose-error", str(a.pose_error), "--shift-error", str(a.shift_error)]
    junk = ["--junk", str(a.junk)]
    return {"clean": [], "offset": offset, "poses": poses, "junk": junk, "all": offset + poses + junk}[name]


def cryogeom(*args: str) -> None:
    print("+ cryogeom " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "cryogeom", *args], check=True)


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[n] the angle of a_i b_iᵀ, degrees."""
    trace = np.einsum("nij,nij->n", a, b)
    return np.degrees(np.arccos(np.clip((trace - 1) / 2, -1, 1)))


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative) (ties count half): the area under the ROC curve."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([positive, negative]))
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def measure(sim: Path, run: Path) -> dict:
    from cryogeom.particles.read import read_particles

    truth = np.load(sim / "ground_truth.npz")
    quality = np.load(run / "particles.npz")
    good = ~truth["junk"]
    out = json.loads((run / "evaluation.json").read_text())
    result = {k: out[k] for k in ("emd_rmsd_angstrom", "rmsd_angstrom", "baseline_base_structure_angstrom", "baseline_mean_structure_angstrom")}
    written = read_particles(sim / "particles.star")
    true_r, true_s = truth["rotations"], truth["shifts_angstrom"]
    result["pose_error_written_median_deg"] = float(np.median(rotation_angle_deg(written.rotations, true_r)[good]))
    result["shift_error_written_median_angstrom"] = float(np.median(np.linalg.norm(written.shifts_angstrom - true_s, axis=1)[good]))
    if (run / "refined_particles.star").is_file():
        refined = read_particles(run / "refined_particles.star")
        result["pose_error_refined_median_deg"] = float(np.median(rotation_angle_deg(refined.rotations, true_r)[good]))
        result["shift_error_refined_median_angstrom"] = float(np.median(np.linalg.norm(refined.shifts_angstrom - true_s, axis=1)[good]))
    score, kind = quality["score"], truth["junk_kind"]
    names = [str(n) for n in truth["junk_kind_names"]]
    for k, name in enumerate(names, start=1):
        if np.any(kind == k):
            result[f"junk_auc_{name}"] = roc_auc(score[kind == 0], score[kind == k])
    if np.any(kind > 0):
        p = quality["junk_probability"]
        result["junk_flagged_of_junk"] = float((p[kind > 0] > 0.5).mean())
        result["junk_flagged_of_good"] = float((p[kind == 0] > 0.5).mean())
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--scenarios", default="clean,offset,poses,junk,all")
    ap.add_argument("--per-conf", type=int, default=300)
    ap.add_argument("--dose", type=float, default=50.0)
    ap.add_argument("--offset", type=float, default=7.0)
    ap.add_argument("--pose-error", type=float, default=3.0)
    ap.add_argument("--shift-error", type=float, default=0.7)
    ap.add_argument("--junk", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-args", default="", help="extra arguments for cryogeom train, e.g. '--set pose_refinement=false'")
    a = ap.parse_args()
    results = json.loads((a.out / "results.json").read_text()) if (a.out / "results.json").is_file() else {}
    for name in a.scenarios.split(","):
        sim_name, extra = SCENARIOS[name]
        sim = a.out / sim_name / "sim"
        t0 = time.time()
        if not (sim / "ground_truth.npz").is_file():
            cryogeom("simulate", "-o", str(sim), "--per-conf", str(a.per_conf), "--dose", str(a.dose), "--seed", str(a.seed),
                     "--force", "--quiet", *simulate_args(sim_name, a))
        run = a.out / name / "run"
        cryogeom("train", str(sim / "particles.star"), "--structure", str(sim / "base.pdb"), "-o", str(run), "--force",
                 "--seed", str(a.seed), "--ground-truth", str(sim / "ground_truth.npz"), "--no-progress", *extra, *a.train_args.split())
        cryogeom("evaluate", str(run), "--ground-truth", str(sim / "ground_truth.npz"), "--no-progress")
        results[name] = {**measure(sim, run), "minutes": round((time.time() - t0) / 60, 1), "simulation": sim_name, "train_args": extra}
        print(json.dumps({name: results[name]}, indent=1), flush=True)
        (a.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()

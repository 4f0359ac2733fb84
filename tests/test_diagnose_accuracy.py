"""benchmarks/diagnose_accuracy.py on the tiny simulated set: the likelihood it builds from the
run's renderer, the particles' poses and the ground truth must point at the true frames."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "diagnose_accuracy.py"


def test_likelihood_of_the_true_frames_points_at_them(tiny_run, tiny_dataset):
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(tiny_run), "--data", str(tiny_dataset), "--k", "100", "--threads", "1"],
        check=True, capture_output=True, text=True,
    )
    report = json.loads(out.stdout)
    bound = report["likelihood_bound"]
    # 6 frames 17 apart at 200 e/Å²: the likelihood over all 102 frames finds each particle's frame
    assert report["frame_correlation"]["likelihood_weighted_mean"] > 0.9
    assert bound["map_frame_median_abs_error_frames"] <= 8
    # the true structures explain the held-out images better than a 2-epoch network does
    held_out = report["image_loss_per_pixel"]["held_out"]
    assert held_out["ground_truth"] < held_out["network"]
    assert bound["weighted_mean_rmsd"] < report["network"]["rmsd"]

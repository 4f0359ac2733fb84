"""Benchmark: forward model (pose → splat → × CTF → crop) forward + backward, images/s and peak memory.

Usage::

    .venv/bin/python benchmarks/bench_projector.py                 # both standard cases
    .venv/bin/python benchmarks/bench_projector.py --threads 1 --repeats 5
    .venv/bin/python benchmarks/bench_projector.py --compare-autograd   # also the plain-autograd splat

Cases: ADK Cα (MDAnalysisTests ``PDB_small``, N = 214) at D = 80 and CFTR protein Cα (``6msm.pdb.bz2``,
N = 1181) at D = 128, 1 Å/px, batch 128, float32, default settings (CTF canvas ``2 · D``),
per-particle defocus 1-2 µm, uniform random poses, σ = 1.7 Å, 60 electrons per residue. The loss
is ``sum(render²)`` so the backward pass starts from a dense gradient, as an image loss does.

Each case runs in a fresh subprocess. Time: the median of ``--repeats`` forward + backward passes
after one warm-up pass (``time.perf_counter``). Memory: ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
(the process's resident high-water mark; tracemalloc does not see torch's allocator) after the
inputs are built, subtracted from the same after the timed passes: the extra peak resident memory
the render needs. On a shared machine the times are indicative only.

Prints one Markdown table row per case (command, date, machine, settings, results). ``what``:
``render`` is the whole forward model; with ``--compare-autograd`` also ``splat`` (the splat alone
on the padded canvas, hand-written backward) and ``splat-autograd`` (the same render as plain
torch ops through autograd, untruncated, over the whole canvas).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
import warnings

CASES = {"adk": ("PDB_small", 214, 80), "cftr": ("6msm.pdb.bz2", 1181, 128)}


def _load_ca(name: str):
    import MDAnalysis as mda
    import MDAnalysisTests.datafiles as datafiles
    import numpy as np

    path = getattr(datafiles, name, None) or os.path.join(os.path.dirname(datafiles.__file__), "data", name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ca = mda.Universe(path).select_atoms("protein and name CA").positions.astype(np.float64)
    return ca - ca.mean(0)


def _autograd_splat(points, sigma, mass, box, pixel):
    """The same render as :func:`splat_gaussians` written with plain autograd (for comparison)."""
    import torch

    c = (torch.arange(box, dtype=points.dtype) - box // 2) * pixel
    inv = 1.0 / sigma
    gx = torch.exp(-0.5 * ((c - points[..., 0, None]) * inv[:, None]) ** 2)
    gy = torch.exp(-0.5 * ((c - points[..., 1, None]) * inv[:, None]) ** 2)
    amp = mass * pixel * pixel / (2 * math.pi) * inv * inv
    return torch.bmm(gy.transpose(1, 2), gx * amp[:, None])


def run_case(case: str, batch: int, repeats: int, threads: int | None, splat: str) -> dict:
    import torch

    if threads:
        torch.set_num_threads(threads)
    from cryogeom.imaging.ctf import CTFParams
    from cryogeom.imaging.forward import ForwardModel, ForwardSettings
    from cryogeom.imaging.rotations import pose_points
    from cryogeom.imaging.projector import splat_gaussians
    from cryogeom.imaging.rotations import random_rotations

    name, n_expected, box = CASES[case]
    ca = torch.tensor(_load_ca(name), dtype=torch.float32)
    assert ca.shape[0] == n_expected, (name, ca.shape)
    n = ca.shape[0]
    g = torch.Generator().manual_seed(0)
    clouds = ca.expand(batch, n, 3).clone().requires_grad_(True)
    rotations = torch.as_tensor(random_rotations(batch, 0), dtype=torch.float32)
    shifts = torch.zeros(batch, 2)
    sigma = torch.full((n,), 1.7)
    mass = torch.full((n,), 60.0)
    ctf = CTFParams.from_values(defocus_u_angstrom=10000 + 10000 * torch.rand(batch, generator=g), amplitude_contrast=0.07)
    settings = ForwardSettings(box, 1.0)
    model = ForwardModel(settings)

    if splat == "render":

        def step():
            clouds.grad = None
            model(clouds, rotations, shifts, ctf, sigma, mass).square().sum().backward()

    else:  # the splat alone, custom Function vs plain autograd, on the padded canvas

        def step():
            clouds.grad = None
            points = pose_points(clouds, rotations, shifts)
            render = splat_gaussians if splat == "splat" else _autograd_splat
            render(points, sigma, mass, settings.render_box, 1.0).square().sum().backward()

    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    median = statistics.median(times)
    return {
        "case": case,
        "what": splat,
        "n": n,
        "box": box,
        "padded": settings.render_box,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "seconds": median,
        "images_per_s": batch / median,
        "peak_mb": (peak_kb - base_kb) / 1024,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--compare-autograd", action="store_true", help="also time the splat alone: hand-written backward (splat) vs plain autograd")
    parser.add_argument("--_one", nargs=2, metavar=("CASE", "WHAT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._one:
        print(json.dumps(run_case(args._one[0], args.batch, args.repeats, args.threads, args._one[1])))
        return 0

    command = "python benchmarks/bench_projector.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    date = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}"
    try:
        load = ", load %.1f" % os.getloadavg()[0]
    except OSError:
        load = ""
    whats = ["render"] + (["splat", "splat-autograd"] if args.compare_autograd else [])
    print("| command | date | machine | case | what | N | D | canvas | batch | threads | fwd+bwd s | images/s | peak MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for case in args.cases:
        for what in whats:
            extra = ["--batch", str(args.batch), "--repeats", str(args.repeats)] + (["--threads", str(args.threads)] if args.threads else [])
            out = subprocess.run([sys.executable, __file__, "--_one", case, what, *extra], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"| `{command.strip()}` | {date} | {machine}{load} | {r['case']} | {r['what']} | {r['n']} | {r['box']} | {r['padded']} | "
                f"{r['batch']} | {r['threads']} | {r['seconds']:.3f} | {r['images_per_s']:.0f} | {r['peak_mb']:.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What a training step costs as the protein grows: N = 214 … 10,000 residues, D = 64 … 128 px.

Three parts (Markdown tables on stdout):

1. **One training step at N = 10,000** (batch 16, D = 128): time and peak memory, with the
   all-pairs geometry loss (the paper's) and with the k-nearest-neighbour one (k = 16). Each case
   runs in a fresh subprocess; "peak" is its maximum resident set (``ru_maxrss``) and "added" the
   part above the resident set just before the first step (model, data and libraries are below
   it). Reported twice: with glibc's default allocator settings (what a user sees; freed blocks
   of up to 32 MB stay in the heap, so the peak also holds fragmentation) and with
   ``MALLOC_MMAP_THRESHOLD_=1048576`` (every block ≥ 1 MB returned when freed: the live tensors).
2. **The geometry loss alone at N = 10,000** (batch 16, forward + backward): all pairs vs k-NN.
3. **Cost table**: step time against N (214, 590, 1181, 10,000) and D (64, 80, 128), with the
   share of each part — encoder (with the reference render of the base structure beside the image), decoder, density (pseudo-atoms from Cα), render (splat + CTF +
   output normalisation + image loss), geometry loss (all pairs), optimiser (Adam) — each timed
   forward + backward on its own with the real shapes (the best of --repeats runs after one
   warm-up), and the whole step measured as one. The k-NN geometry loss (k = 16), alone and in a
   whole step, is shown beside.

The model is the package's default (``cryogeom.train.config.preset("default")``: fast encoder,
backbone + side-chain density, decoder 7 × 350) on the D-pixel images directly (no
downsampling), batch 16. Structures are synthetic (``benchmarks/synthetic_protein.py``: a compact
3.8 Å Cα walk at protein density with N, CA, C, O, CB atoms): the cost depends on N, the number of
pseudo-atoms (2N) and the box, not on the fold. The field of view is twice the structure's
diameter (pixel size = field / D). Timings depend on the machine's load (this machine is shared:
say so beside any number); the lead reruns benchmarks on a quiet machine.

    python benchmarks/bench_scale.py                       # all three parts
    python benchmarks/bench_scale.py --parts table --sizes 214 1181 --boxes 64 --repeats 1
    python benchmarks/bench_scale.py --parts step geometry --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

BATCH = 16
K_NEIGHBOURS = 16
ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20)}


# --------------------------------------------------------------------------------------------
# a model and a batch


def setup(n: int, box: int, batch: int = BATCH, seed: int = 0):
    """The default model for a synthetic n-residue structure on box-pixel images, and a batch."""
    from synthetic_protein import synthetic_structure

    from cryogeom.imaging.ctf import CTFParams
    from cryogeom.imaging.rotations import random_rotations
    from cryogeom.train.build import build_model
    from cryogeom.train.config import preset

    structure = synthetic_structure(n, seed)
    diameter = 2 * float(np.linalg.norm(structure.ca - structure.ca.mean(0), axis=1).max())
    pixel = 2 * diameter / box
    config = preset("default", train_pixel_angstrom=None)
    torch.manual_seed(seed)
    model = build_model(config.network, structure, box, pixel)
    rng = np.random.default_rng(seed)
    batch_data = {
        "images": torch.randn(batch, box, box, generator=torch.Generator().manual_seed(seed)),
        "rotations": torch.as_tensor(random_rotations(batch, rng), dtype=torch.float32),
        "shifts": torch.zeros(batch, 2),
        "ctf": CTFParams.stack(torch.tensor([[15000.0, 14000.0, 30.0, 300.0, 2.7, 0.07, 0.0]]).repeat(batch, 1)),
    }
    return config, structure, model, batch_data, pixel


def make_losses(config, structure, model, k: int | None):
    from cryogeom.losses.bond import bond_loss
    from cryogeom.losses.centering import centering_loss
    from cryogeom.losses.geometry import GeometryLoss
    from cryogeom.losses.image import image_loss

    geometry = GeometryLoss(model.base_ca.double(), k=k)
    bonds = torch.as_tensor(structure.bonded_pairs, dtype=torch.long)

    w = config.losses

    def total(ca, render, images):
        return (image_loss(render, images) + w.geometry_weight * geometry(ca) + w.bond_weight * bond_loss(ca, bonds)
                + w.centering_weight * centering_loss(ca))  # fmt: skip

    return geometry, total


def make_optimizer(config, model):
    decoder = list(model.decoder.parameters())
    ids = {id(p) for p in decoder}
    other = [p for p in model.parameters() if id(p) not in ids]
    opt = config.optimisation
    return torch.optim.Adam([{"params": other}, {"params": decoder, "lr": opt.lr * opt.decoder_lr_scale}], lr=opt.lr)


def training_step(model, optimizer, total_loss, b) -> float:
    optimizer.zero_grad(set_to_none=True)
    z, ca, render = model(b["images"], b["rotations"], b["shifts"], b["ctf"])
    loss = total_loss(ca, render, b["images"])
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def best_time(fn, repeats: int) -> float:
    """The shortest of ``repeats`` runs after a warm-up (on a shared machine the others include waits)."""
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


# --------------------------------------------------------------------------------------------
# 1 and 2: subprocess cases (peak memory of one case alone)


def case_main(spec: dict) -> dict:
    """Run one case in this (fresh) process and return its measurements."""
    import resource

    torch.set_flush_denormal(True)
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    config, structure, model, b, _ = setup(spec["n"], spec["box"])
    k = spec["k"]
    kb = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # noqa: E731
    if spec["what"] == "step":
        _, total = make_losses(config, structure, model, k)
        optimizer = make_optimizer(config, model)
        before = kb()
        t0 = time.perf_counter()
        training_step(model, optimizer, total, b)
        first = time.perf_counter() - t0
        times = []
        for _ in range(spec["repeats"]):
            t0 = time.perf_counter()
            training_step(model, optimizer, total, b)
            times.append(time.perf_counter() - t0)
    else:  # the geometry loss alone
        from cryogeom.losses.geometry import GeometryLoss

        geometry = GeometryLoss(model.base_ca.double(), k=k)
        pred = (model.base_ca + torch.randn(BATCH, spec["n"], 3, generator=torch.Generator().manual_seed(1))).requires_grad_()
        before = kb()

        def once():
            pred.grad = None
            geometry(pred).backward()

        t0 = time.perf_counter()
        once()
        first = time.perf_counter() - t0
        times = []
        for _ in range(spec["repeats"]):
            t0 = time.perf_counter()
            once()
            times.append(time.perf_counter() - t0)
    return {"first_s": first, "best_s": min(times), "peak_mb": kb(), "added_mb": kb() - before}


def run_case(spec: dict, env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, __file__, "--case", json.dumps(spec)], capture_output=True, text=True,
                         env={**os.environ, **(env or {})})  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def part_step(args) -> None:
    print(f"## One training step, N = 10,000, batch {BATCH}, D = 128 (default model, Adam)\n")
    print("| geometry loss | allocator | first step (s) | step (s, best of %d) | peak RSS (MB) | added by the steps (MB) |" % args.repeats)
    print("|---|---|---|---|---|---|")
    for k in (None, K_NEIGHBOURS):
        for label, env in (("glibc default", None), ("mmap ≥ 1 MB", ALLOCATOR_ENV)):
            r = run_case({"what": "step", "n": 10_000, "box": 128, "k": k, "repeats": args.repeats, "threads": args.threads}, env)
            name = "all pairs" if k is None else f"k-NN, k = {k}"
            print(f"| {name} | {label} | {r['first_s']:.2f} | {r['best_s']:.2f} | {r['peak_mb']:.0f} | {r['added_mb']:.0f} |", flush=True)
    print()


def part_geometry(args) -> None:
    print(f"## Geometry loss alone, N = 10,000, batch {BATCH}, forward + backward\n")
    print("| pairs | first call (s) | best of %d (s) | peak RSS (MB) | added (MB) |" % args.repeats)
    print("|---|---|---|---|---|")
    for k in (None, K_NEIGHBOURS, 32):
        r = run_case({"what": "geometry", "n": 10_000, "box": 64, "k": k, "repeats": args.repeats, "threads": args.threads}, ALLOCATOR_ENV)
        name = "all N(N−1)/2 = 5.0e7" if k is None else f"k-NN, k = {k}"
        print(f"| {name} | {r['first_s']:.3f} | {r['best_s']:.3f} | {r['peak_mb']:.0f} | {r['added_mb']:.0f} |", flush=True)
    print()


# --------------------------------------------------------------------------------------------
# 3: the cost table


def part_costs(n: int, box: int, repeats: int) -> dict:
    from cryogeom.losses.image import image_loss

    config, structure, model, b, pixel = setup(n, box)
    model.train()
    geometry, total = make_losses(config, structure, model, None)
    knn, total_knn = make_losses(config, structure, model, K_NEIGHBOURS)
    optimizer = make_optimizer(config, model)
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        z = model.encode(b["images"], b["rotations"], b["shifts"], b["ctf"])
        ca = model.decode(z)
        points = model.density(ca)
    grad_z, grad_ca, grad_points = (torch.randn(t.shape, generator=gen) for t in (z, ca, points))
    sigma, mass = model.density.sigma, model.density.mass

    def encoder():
        model.encode(b["images"], b["rotations"], b["shifts"], b["ctf"]).backward(grad_z)

    def decoder():
        model.decode(z.clone().requires_grad_()).backward(grad_ca)

    def density():
        model.density(ca.clone().requires_grad_()).backward(grad_points)

    def render():
        r = model.output_norm(model.renderer(points.clone().requires_grad_(), b["rotations"], b["shifts"], b["ctf"], sigma, mass))
        image_loss(r, b["images"]).backward()

    def geom(loss=geometry):
        loss(ca.clone().requires_grad_()).backward()

    training_step(model, optimizer, total, b)  # gradients and Adam state exist
    parts = {
        "encoder": best_time(encoder, repeats),
        "decoder": best_time(decoder, repeats),
        "density": best_time(density, repeats),
        "render": best_time(render, repeats),
        "geometry": best_time(geom, repeats),
        "optimiser": best_time(optimizer.step, repeats),
    }
    step = best_time(lambda: training_step(model, optimizer, total, b), repeats)
    knn_s = best_time(lambda: geom(knn), repeats)
    step_knn = best_time(lambda: training_step(model, optimizer, total_knn, b), repeats)
    return {"parts": parts, "step": step, "knn": knn_s, "step_knn": step_knn, "pixel": pixel, "points": model.density.n_points}


def part_table(args) -> None:
    print(f"## Cost of a training step (batch {BATCH}): time and share of each part\n")
    print(f"Best of {args.repeats} after one warm-up; parts timed alone (forward + backward); shares of their sum. "
          f"Geometry: all pairs (the default); the k-NN loss (k = {K_NEIGHBOURS}) beside it.\n")  # fmt: skip
    names = ["encoder", "decoder", "density", "render", "geometry", "optimiser"]
    print("| N | D | Å/px | step (s) | sum of parts (s) | " + " | ".join(names) + f" | dominant | k-NN geometry (s) | step with k-NN (s) |")
    print("|---|---|---|---|---|" + "---|" * len(names) + "---|---|---|")
    for n in args.sizes:
        for box in args.boxes:
            r = part_costs(n, box, args.repeats)
            parts = r["parts"]
            total = sum(parts.values())
            shares = " | ".join(f"{100 * parts[k] / total:.0f}%" for k in names)
            dominant = max(parts, key=parts.get)
            print(f"| {n:,} | {box} | {r['pixel']:.2f} | {r['step']:.3f} | {total:.3f} | {shares} | {dominant} | {r['knn']:.4f} | {r['step_knn']:.3f} |", flush=True)
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=("step", "geometry", "table"), default=["step", "geometry", "table"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[214, 590, 1181, 10_000])
    parser.add_argument("--boxes", type=int, nargs="+", default=[64, 80, 128])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(case_main(json.loads(args.case))))
        return
    torch.set_flush_denormal(True)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores (shared machine: timings are indicative)\n")  # fmt: skip
    if "step" in args.parts:
        part_step(args)
    if "geometry" in args.parts:
        part_geometry(args)
    if "table" in args.parts:
        part_table(args)


if __name__ == "__main__":
    main()

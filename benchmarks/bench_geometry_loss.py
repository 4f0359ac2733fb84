"""Time and peak memory of the geometry degradation loss alone (forward + backward).

Cases: all pairs (the hand-written blocked gradient, :func:`cryogeom.losses.geometry_loss`), the
k-nearest-neighbour pairs (k = 16, 32; hand-written gradient over the pair list), and — where it
fits in memory (B · pairs <= --autograd-max-pairs) — plain autograd over all pairs in float32,
the naive version the fast path replaces. Sizes: N = 10,000 residues at batch 16; N = 214 (ADK) and 1181
(CFTR) at batch 128. The clouds are random points in a sphere at protein density (one Cα per
136 Å³, i.e. 1.35 g/cm³ at 110 Da per residue); the prediction is the base plus 1 Å of noise.

Each case runs in a fresh subprocess, so that peak memory (``resource.getrusage(RUSAGE_SELF)
.ru_maxrss``) belongs to that case alone; "peak" is the process's maximum resident set and
"added" the part above the resident set measured just before the first loss call (inputs,
pair lists and the imported libraries are below that line). Times: the first call, and the best
of --repeats further calls. Timings depend on the load of the machine; the lead reruns
benchmarks on a quiet one.

    python benchmarks/bench_geometry_loss.py                       # all cases, Markdown rows
    python benchmarks/bench_geometry_loss.py --sizes 214:128 --repeats 1   # quick check
    python benchmarks/bench_geometry_loss.py --threads 1   # steadier on a shared machine
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from functools import partial

RESIDUE_VOLUME_ANGSTROM3 = 136.0
DEFAULT_SIZES = ["10000:16", "214:128", "1181:128"]
METHODS = ["all-pairs", "knn16", "knn32", "autograd"]


def compact_cloud(n: int, seed: int = 0):
    """[n, 3] Å: uniform random points in a sphere holding n residues at protein density."""
    import numpy as np

    rng = np.random.default_rng(seed)
    radius = (3 * n * RESIDUE_VOLUME_ANGSTROM3 / (4 * np.pi)) ** (1 / 3)
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return direction * radius * rng.uniform(size=(n, 1)) ** (1 / 3)


def plain_autograd_loss(pred, base):
    """The naive all-pairs L_geom: every pair distance materialised, gradient by autograd."""
    import torch

    from cryogeom.losses import MIN_SQUARED_DISTANCE_ANGSTROM2 as eps

    a, c = torch.triu_indices(pred.shape[1], pred.shape[1], offset=1)
    d2 = (pred[:, c] - pred[:, a]).square().sum(-1)
    d02 = (base[c] - base[a]).square().sum(-1)
    return (d2.clamp_min(eps).log() - d02.clamp_min(eps).log()).square().mean()


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_case(n: int, batch: int, method: str, repeats: int, threads: int) -> dict:
    """One case in this process; returns its measurements."""
    import numpy as np
    import torch

    from cryogeom.losses import GeometryLoss

    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    base = compact_cloud(n)
    t0 = time.perf_counter()
    if method == "all-pairs":
        loss_fn = GeometryLoss(base)
    elif method.startswith("knn"):
        loss_fn = GeometryLoss(base, k=int(method[3:]))
    else:
        loss_fn = partial(plain_autograd_loss, base=torch.as_tensor(base, dtype=torch.float32))
    setup_s = time.perf_counter() - t0
    n_pairs = loss_fn.n_pairs if isinstance(loss_fn, GeometryLoss) else n * (n - 1) // 2
    pred = (torch.as_tensor(base, dtype=torch.float32) + torch.randn(batch, n, 3)).requires_grad_(True)

    def step():
        pred.grad = None
        loss = loss_fn(pred)
        loss.backward()
        return loss

    rss_before = max_rss_mib()
    t0 = time.perf_counter()
    step()
    first_s = time.perf_counter() - t0
    peak = max_rss_mib()
    best = first_s
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    return {
        "n": n, "batch": batch, "method": method, "pairs": n_pairs, "setup_s": setup_s,
        "first_s": first_s, "best_s": best, "peak_mib": max(peak, max_rss_mib()),
        "added_mib": max(peak, max_rss_mib()) - rss_before, "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=DEFAULT_SIZES, help="N:B pairs (residues:batch)")
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the first")
    parser.add_argument("--autograd-max-pairs", type=float, default=2e7,
                        help="run plain autograd only when batch × pairs is at most this")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--case", nargs=5, metavar=("N", "B", "METHOD", "REPEATS", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.case:
        n, batch, method, repeats, threads = args.case
        print(json.dumps(run_case(int(n), int(batch), method, int(repeats), int(threads))))
        return

    print("| N | batch | method | pairs | setup (s) | first fwd+bwd (s) | best fwd+bwd (s) | peak RSS (MiB) | added (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        n, batch = (int(v) for v in size.split(":"))
        for method in args.methods:
            if method == "autograd" and batch * n * (n - 1) / 2 > args.autograd_max_pairs:
                print(f"| {n} | {batch} | autograd | {n * (n - 1) // 2} | — | skipped (B·pairs > {args.autograd_max_pairs:.0e}) | | | |",
                      flush=True)
                continue
            out = subprocess.run([sys.executable, __file__, "--case", str(n), str(batch), method, str(args.repeats), str(args.threads)],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(f"| {n} | {batch} | {method} | | | failed: {out.stderr.strip().splitlines()[-1]} | | | |", flush=True)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {r['n']} | {r['batch']} | {r['method']} | {r['pairs']:,} | {r['setup_s']:.3f} | {r['first_s']:.3f} "
                  f"| {r['best_s']:.3f} | {r['peak_mib']:.0f} | {r['added_mib']:.0f} |", flush=True)
    print(f"\n(torch threads: {r['threads'] if 'r' in locals() else '?'}; float32; forward + backward of L_geom alone)")


if __name__ == "__main__":
    main()

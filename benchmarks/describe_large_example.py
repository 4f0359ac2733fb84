"""Describe the large built-in example (CFTR in a generated multi-domain motion) and time its generation.

Prints the numbers of docs/examples.md as Markdown: residues and atoms, Cα RMSD to frame 0,
per-domain displacements and rigid-body moves, bonded Cα–Cα distances, closest non-bonded Cα
and heavy-atom pairs, new clashes, principal-component variance fractions, step sizes.
With ``--regenerate`` the path is generated afresh in a temporary cache (wall and CPU time
reported); otherwise the user cache is used (generated there on first use). Timings depend on
the load of the machine; the lead reruns benchmarks on a quiet one.

    python benchmarks/describe_large_example.py                    # all frames, cached path
    python benchmarks/describe_large_example.py --regenerate       # time the generation too
    python benchmarks/describe_large_example.py --atom-stride 10   # heavy atoms every 10th frame
"""

from __future__ import annotations

import argparse
import tempfile
import time

from cryogeom.examples.large import CFTR_DOMAINS, N_FRAMES, SEED, SETTINGS, VERSION, cftr
from path_statistics import describe_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=N_FRAMES)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--regenerate", action="store_true", help="generate in a fresh temporary cache and time it")
    parser.add_argument("--atom-stride", type=int, default=1, help="check heavy atoms on every k-th frame")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = time.perf_counter(), time.process_time()
        trajectory = cftr(args.frames, args.seed, cache_dir=tmp if args.regenerate else None)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"# {VERSION}, {args.frames} frames, seed {args.seed}; {SETTINGS}")
    print(f"{'generated' if args.regenerate else 'loaded'} in {wall:.1f} s wall, {cpu:.1f} s CPU\n")
    wall = time.perf_counter()
    stats = describe_path(trajectory, CFTR_DOMAINS, atom_frame_stride=args.atom_stride)
    print(stats.to_markdown())
    print(f"\n(statistics computed in {time.perf_counter() - wall:.1f} s)")


if __name__ == "__main__":
    main()

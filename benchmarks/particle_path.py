"""Which of the package's files one particle passes from its .star line to the training loss.

Simulates a tiny ADK set (or uses ``--data SIMDIR``), builds a trainer on it, then records with
``sys.setprofile`` every cryogeom source file whose code runs while one particle is read from the
.star, batched, prepared, encoded, decoded, rendered and scored (one ``Trainer.losses`` call on a
batch holding that particle). Set-up (reading the base structure, building the network, the
calibration) is outside the recording. Prints the files, split into the data path (before the
network) and the network and losses.

Example:
  python benchmarks/particle_path.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cryogeom
from cryogeom.cli import main as cryogeom_cli
from cryogeom.particles.read import read_particles
from cryogeom.structure.read import read_structure
from cryogeom.train.config import preset
from cryogeom.train.loop import Trainer

PACKAGE = Path(cryogeom.__file__).resolve().parent
TINY = ["--frames", "0:102:17", "--per-conf", "12", "--box", "32", "--pixel", "2.5", "--dose", "200", "--seed", "3", "--workers", "1", "--quiet"]


class FileRecorder:
    def __init__(self):
        self.files: list[str] = []

    def __call__(self, frame, event, arg):
        if event == "call":
            path = Path(frame.f_code.co_filename)
            if PACKAGE in path.parents:
                rel = path.relative_to(PACKAGE).as_posix()
                if rel not in self.files:
                    self.files.append(rel)

    def __enter__(self):
        sys.setprofile(self)
        return self

    def __exit__(self, *exc):
        sys.setprofile(None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="a cryogeom simulate directory (default: simulate a tiny one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "sim"
        if not args.data:
            assert cryogeom_cli(["simulate", *TINY, "-o", str(data)]) == 0
        base = read_structure(data / "base.pdb")
        particles = read_particles(data / "particles.star")  # warm-up: imports and caches
        trainer = Trainer(preset("default", epochs=1, batch_size=8, threads=1), particles, base, Path(tmp) / "run", progress=False, log=lambda *a: None)
        with FileRecorder() as data_path:
            particles = read_particles(data / "particles.star")
            trainer.dataset.particle_set = particles
            batch = trainer.dataset.get_batch(trainer.train_idx[:8])
            prepared = batch.prepared_images(trainer.calibration.invert_data)
        with FileRecorder() as network_path:
            trainer.losses(batch)
    del prepared
    both = data_path.files + [f for f in network_path.files if f not in data_path.files]
    print(f"data path ({len(data_path.files)} files): {', '.join(data_path.files)}")
    print(f"network and losses ({len(network_path.files)} files): {', '.join(network_path.files)}")
    print(f"in all: {len(both)} files")


if __name__ == "__main__":
    main()

"""``python -m cryogeom`` (also what ``torchrun -m cryogeom`` runs)."""

from cryogeom.cli import run

run()

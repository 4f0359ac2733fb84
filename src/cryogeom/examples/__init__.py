"""Built-in example systems, made from data that ships in pip packages.

* :func:`adk` — adenylate kinase (214 residues), the 102-frame closed→open path of
  MDAnalysisTests (PSF + DCD2), the paper's first protein.
* :func:`cftr` — a large stand-in for the paper's Nsp13: CFTR chain A (1,181 residues, PDB 6MSM
  from MDAnalysisTests) in a generated 200-frame multi-domain motion (docs/examples.md).
* :func:`adk_two_domains` — ADK with its LID and NMP domains closing independently: a 16 × 16
  grid of the two closures, a known two-dimensional landscape (docs/examples.md).
"""

from cryogeom.examples.adk import adk
from cryogeom.examples.adk_two_domains import adk_two_domains
from cryogeom.examples.large import cftr

EXAMPLES = {"adk": adk, "adk-2d": adk_two_domains, "cftr": cftr}

__all__ = ["EXAMPLES", "adk", "adk_two_domains", "cftr"]

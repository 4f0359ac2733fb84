"""The all-atom synthetic-data simulator (independent of the network's residue-Gaussian model).

The folder follows the image formation of one particle:

* :mod:`~cryogeom.physics.scattering` — what an atom is: Peng electron scattering factors, the
  projected potential as Gaussians, the interaction constant;
* :mod:`~cryogeom.simulate.projection` — the pose convention and the band-limited projected
  potential of posed atoms: the direct Fourier sum (float64 reference) and real-space erf splatting;
* :mod:`~cryogeom.simulate.fourier_projection` — the same in Fourier space, as the simulator
  computes it: each element's structure factor by gridding (a type-1 NUFFT) times its form factor;
* :mod:`~cryogeom.simulate.ice` — the amorphous-ice background (Gaussian random phase field);
* :mod:`~cryogeom.physics.solvent` — the ice each atom displaces (excluded volumes);
* :mod:`~cryogeom.simulate.detector` — dose, shot noise, RELION normalisation;
* :mod:`~cryogeom.simulate.simulator` — settings, random particle parameters and the composed
  weak-phase image formation (CTF from :mod:`cryogeom.imaging.ctf`);
* :mod:`~cryogeom.simulate.parallel` and :mod:`~cryogeom.simulate.dataset` — rendering on several
  processes and writing particles.star/.mrcs and the ground truth (``cryogeom simulate``).
"""

from cryogeom.simulate.dataset import write_dataset
from cryogeom.simulate.simulator import AtomicEnsemble, ImageFormation, ParticleParameters, SimulationConfig, draw_particles

__all__ = ["AtomicEnsemble", "ImageFormation", "ParticleParameters", "SimulationConfig", "draw_particles", "write_dataset"]

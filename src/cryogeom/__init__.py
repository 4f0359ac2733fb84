"""cryogeom: geometric heterogeneous cryo-EM reconstruction.

Learns the distribution of a flexible protein's conformations as Cα point clouds from particle
images with known poses and CTF, by an autoencoder that deforms a base structure and renders
images through a differentiable image-formation model, regularised by the geometry degradation
loss (Prins et al. 2024).
"""

__version__ = "0.1.0"

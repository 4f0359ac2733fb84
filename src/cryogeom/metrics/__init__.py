"""Accuracy metrics on Cα conformations: Kabsch superposition, RMSD matrices, EMD-RMSD, the two
constant baselines, and the ground truth they are measured against. Used by validation during
training and by ``cryogeom evaluate`` alike."""

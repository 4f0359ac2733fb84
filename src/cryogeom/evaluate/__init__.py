"""Evaluation: Kabsch superposition, RMSD, EMD-RMSD, latent analysis, figures and the report."""

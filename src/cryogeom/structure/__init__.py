"""Structures and trajectories: Cα clouds, residue names, chains, bonds, and the residue table."""

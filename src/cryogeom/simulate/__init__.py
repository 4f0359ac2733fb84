"""The all-atom synthetic-data simulator (independent of the network's residue-Gaussian model)."""

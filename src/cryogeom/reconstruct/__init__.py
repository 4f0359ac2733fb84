"""Maps from particles by classical reconstruction (no network): a prior-free check of a state."""

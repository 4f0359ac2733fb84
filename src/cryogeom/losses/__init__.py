"""Training losses: image, geometry degradation, bond and centering."""

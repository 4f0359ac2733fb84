"""Particle data: RELION .star/.mrcs, cryoSPARC .cs and cryoDRGN .pkl readers and writers."""

"""The physics of electron scattering shared by the simulator and the network's density: atomic
scattering factors and projected potentials (Peng), the ice each atom displaces (excluded
volumes), and the amorphous-ice spectrum and mean potential."""

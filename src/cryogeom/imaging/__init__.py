"""The image-formation model: poses, the pixel grid, the CTF, the projector and their composition."""

"""The reconstruction network: image encoder, latent decoder, deformer and output normalisation."""

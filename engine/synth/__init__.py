"""Synthesis: the latent walk, the generator runtime and the fast synthesis plan."""

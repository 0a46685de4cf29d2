"""StyleGAN2 networks and ops, the checkpoint format, the ADA trainer and importers of published checkpoints."""

"""Custom ops of StyleGAN2, each with a pure-PyTorch reference path."""

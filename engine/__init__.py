"""Runtime: set loading, audio features, latent walk, generator runtime, GL renderer, encoder, live loop."""

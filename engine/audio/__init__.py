"""Audio: per-frame features (offline and streaming, one core), audio devices, live input."""

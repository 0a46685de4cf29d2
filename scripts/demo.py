"""`make demo`: runs the main job end to end on what exists so far."""

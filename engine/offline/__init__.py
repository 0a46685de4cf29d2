"""Offline: the frame-exact render, line loops, previews and the video encoder."""

"""GLSL files of the renderer's post chain, shipped as package data."""

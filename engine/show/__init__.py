"""The live show: play() (the Python API), its loop, director, worker, clocks, controls, keys, MIDI, OSC, HUD."""

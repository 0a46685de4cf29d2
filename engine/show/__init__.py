"""The live show: its loop, clocks, controls, MIDI, OSC, HUD, tempo and hot reload."""

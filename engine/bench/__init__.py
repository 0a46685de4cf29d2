"""`lyriscope bench`: measures the engine and the trainers on this machine."""

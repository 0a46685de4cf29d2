"""How a studio runs: where the sets live, where it listens, and the limits of what it accepts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MiB = 2**20


@dataclass(frozen=True, kw_only=True)
class StudioOptions:
    sets_dir: Path  # the folder whose sub-folders are sets (sets/NAME/set.toml)
    host: str = "127.0.0.1"  # loopback only: the studio reads and writes local files
    port: int = 0  # 0: a free port
    max_audio_bytes: int = 512 * MiB  # an uploaded song (a 10-minute 24-bit 96 kHz WAV fits)
    max_lyrics_bytes: int = 1 * MiB  # an uploaded LRC
    max_json_bytes: int = 64 * 1024  # a request body of the page
    stop_grace_s: float = 30.0  # a cancelled job's time after SIGINT before SIGTERM
    kill_grace_s: float = 60.0  # and after SIGTERM before SIGKILL

"""`make demo`: render the embedded demo set (sets/demo) to an MP4 with its song.

When sets/demo has its trained line models, this is one `lyriscope render`. Until they are
committed, it builds the same song in out/demo-random/ with random-weight models per line
and renders that instead, saying so: the whole engine runs end to end either way.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "sets" / "demo"
OUT = ROOT / "out"


def lyriscope(*args: str) -> None:
    cmd = [sys.executable, "-m", "lyriscope", *args]
    print("$ lyriscope " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def demo_models_present() -> bool:
    from lyriscope.setmodel import load_set

    if not (DEMO / "set.toml").is_file():
        return False
    songset = load_set(DEMO)
    return all(line.model is not None and line.model.is_file() for line in songset.lines)


def random_stand_in() -> Path:
    """out/demo-random: the demo song, its LRC and one random 64² model per line."""
    work = OUT / "demo-random"
    src = OUT / "demo-song"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo_song.py"), "--out", str(src)], check=True
    )
    if not (work / "set.toml").is_file():
        lyriscope(
            "new",
            work.name,
            "--audio",
            str(src / "song.wav"),
            "--lyrics",
            str(src / "song.lrc"),
            "--sets-dir",
            str(work.parent),
        )
    text = (work / "set.toml").read_text(encoding="utf-8")
    text = text.replace("size = 1024 ", "size = 512 ").replace("fps = 60.0 ", "fps = 30.0 ")
    (work / "set.toml").write_text(text, encoding="utf-8")
    from lyriscope.setmodel import load_set

    for line in load_set(work).lines:
        if not line.model.is_file():
            lyriscope(
                "init-model",
                "--size",
                "64",
                "--channel-base",
                "4096",
                "--channel-max",
                "128",
                "--mapping-layers",
                "2",
                "--seed",
                str(line.index + 1),
                "-o",
                str(line.model),
            )
    return work


def main() -> int:
    began = time.perf_counter()
    if demo_models_present():
        songset, note = DEMO, "the demo set's trained line models"
    else:
        print(
            "note: sets/demo has no trained models yet (issue 10), so this renders the demo "
            "song with random-weight 64² models per line: the full engine, untrained pictures."
        )
        songset, note = random_stand_in(), "random-weight models (no trained demo models yet)"
    out = OUT / "demo.mp4"
    lyriscope("check", str(songset))
    lyriscope("render", str(songset), "-o", str(out))
    print(f"\ndemo: {out} rendered from {note} in {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

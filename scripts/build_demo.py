"""Build the demo set sets/demo from nothing: song, set.toml, pictures, dataset zips (models last).

Steps, each resumable and each a plain `lyriscope` command a user could type:
  1. song.wav + song.lrc from scripts/demo_song.py (a deterministic synthesizer);
  2. set.toml from `lyriscope new`, then the demo's edits (sizes, queries, walk, post, MIDI)
     — only when the set has no set.toml yet or with --rewrite-toml, so hand edits stay;
  3. pictures per line from scripts/demo_images.py into sets/demo/generated/line-NN/;
  4. `lyriscope collect --line N --sources folder:sets/demo/generated/line-NN` per line;
  5. `lyriscope cluster` (verify + features + K-means) and `lyriscope prepare --size 64`;
  6. with --train: `lyriscope train sets/demo --all --kimg K` (64² models, CPU-trainable).

    python scripts/build_demo.py            # data only
    python scripts/build_demo.py --train    # and the four models
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent

# What the demo's set.toml says beyond `lyriscope new`'s defaults; one entry per lyric line.
LINE_QUERIES: tuple[tuple[str, ...], ...] = (
    ("rays of light", "sunbeam through clouds", "crepuscular rays", "light beams"),
    ("calm horizon", "sunset over the sea", "moonrise over still water", "distant hills at dawn"),
    ("sunflower seed spiral", "phyllotaxis", "concentric circles", "packed circles"),
    ("flowing fire", "flames", "bonfire at night", "wall of fire"),
)
LINE_SEEDS: tuple[tuple[int, ...], ...] = (
    (11, 42, 7, 3, 99, 5, 18, 23),
    (101, 142, 107, 103, 199, 105, 118, 123),
    (211, 242, 207, 203, 299, 205, 218, 223),
    (311, 342, 307, 303, 399, 305, 318, 323),
)
OUTPUT = {"size": 512, "fps": 30.0}  # the README's first render: 512² at 30 fps on a CPU
# A loop per 8 s section; young (24 kimg) models look cleaner without their per-pixel noise,
# except the circles, whose shapes come from it.
WALK = {"loop_seconds": 8.0, "seeds": 8, "pulse": 0.5, "motion": 0.6, "noise": "none"}
POST = {
    "vignette": 0.3,
    "trail": 0.25,
    "text": True,
    # The lyric at 512²: letters 30 px high, low in the frame and clear of the centre, a
    # warm gold sweeping through each word as it is sung, a dark outline and soft shadow
    # so it reads over bright rays and fire alike.
    "text_size": 0.058,
    "text_margin": 0.08,
    "text_max_width": 0.88,
    "text_color": "#ffffff",
    "text_sung_color": "#ffc640",
    "text_karaoke": "fill",
    "text_outline": 0.12,
    "text_outline_color": "#1a0f05",
    "text_shadow": 0.6,
    "text_fade_s": 0.3,
}
LINE_WALK: tuple[dict, ...] = (
    {},
    {"pulse": 0.25, "motion": 0.3},
    {"noise": "const"},
    {"pulse": 0.7, "motion": 0.8},
)
# Small networks so four models train on a CPU and fit in git together (~5 MB each at 64²);
# metrics off (they need many samples), mirrored pictures double the little data we have.
TRAIN_ARGS: tuple[str, ...] = (
    "--channel-base",
    "2048",
    "--channel-max",
    "64",
    "--batch",
    "16",
    "--mirror",
    "--metrics",
    "none",
)
MIDI = {
    "cc": {1: "pulse", 2: "motion", 3: "band_depth", 7: "truncation", 16: "vignette", 17: "trail"},
    "notes": {
        36: "line:next",
        37: "line:prev",
        38: "freeze",
        39: "flash",
        40: "blackout",
        48: "line:1",
        49: "line:2",
        50: "line:3",
        51: "line:4",
    },
}


def load_script(name: str) -> ModuleType:
    """Import scripts/<name>.py (the scripts folder is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"lyriscope_scripts_{name}", SCRIPTS / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # worker processes find the module's functions by name
    spec.loader.exec_module(module)
    return module


def lyriscope(*args: str | Path) -> None:
    """Run one `lyriscope` command in this Python; stop the build when it fails."""
    command = [sys.executable, "-m", "lyriscope", *map(str, args)]
    print("$ lyriscope " + " ".join(map(str, args)), flush=True)
    done = subprocess.run(command, cwd=REPO, check=False)
    if done.returncode != 0:
        raise SystemExit(
            f"build_demo: `lyriscope {args[0]}` failed (exit {done.returncode}); "
            f"fix the cause and run the same command again: finished steps are kept"
        )


def write_song(folder: Path) -> None:
    """song.wav and song.lrc into `folder` (the same bytes on every run)."""
    song = load_script("demo_song")
    folder.mkdir(parents=True, exist_ok=True)
    y, entries = song.synthesize()
    song.write_wav(folder / "song.wav", y)
    (folder / "song.lrc").write_text(song.lrc_text(entries, title="First Light"), encoding="utf-8")


def demo_toml(text: str) -> str:
    """`lyriscope new`'s set.toml `text` with the demo's settings filled in (comments kept)."""
    import tomlkit

    # `new` writes [post] commented out; switch the table and the keys we set back on.
    text = re.sub(r"^# \[post\]", "[post]", text, count=1, flags=re.M)
    for key in POST:
        text = re.sub(rf"^# {key} = ", f"{key} = ", text, count=1, flags=re.M)
    text = re.sub(r"^# gap = ", "gap = ", text, count=1, flags=re.M)
    text = re.sub(r"^# seeds = ", "seeds = ", text, flags=re.M)  # each line's keyframes
    doc = tomlkit.parse(text)
    doc["song"]["title"] = "First Light"
    for key, value in OUTPUT.items():
        doc["output"][key] = value
    doc["output"]["gap"] = 1  # the intro and outro show line 1's rays
    for key, value in WALK.items():
        doc["walk"][key] = value
    post = doc.setdefault("post", tomlkit.table())
    for key, value in POST.items():
        post[key] = value
    lines = doc["line"]
    if len(lines) != len(LINE_QUERIES):
        raise SystemExit(
            f"build_demo: the song has {len(lines)} lyric lines; the demo expects "
            f"{len(LINE_QUERIES)}"
        )
    for line, queries, seeds, walk in zip(lines, LINE_QUERIES, LINE_SEEDS, LINE_WALK, strict=True):
        line["queries"] = list(queries)
        line["tags"] = ["art"]
        line["seeds"] = list(seeds)
        for key, value in walk.items():
            line[key] = value
    midi = doc.setdefault("midi", tomlkit.table())
    for key, mapping in MIDI.items():
        inline = tomlkit.inline_table()
        inline.update({str(k): v for k, v in mapping.items()})
        midi[key] = inline
    return tomlkit.dumps(doc)


def write_set_toml(set_dir: Path) -> None:
    """Create set.toml with `lyriscope new` (from a scratch copy of the song), then edit it."""
    with tempfile.TemporaryDirectory() as tmp:
        write_song(Path(tmp))
        lyriscope(
            "new",
            set_dir.name,
            "--audio",
            Path(tmp) / "song.wav",
            "--lyrics",
            Path(tmp) / "song.lrc",
            "--sets-dir",
            set_dir.parent,
            "--force",
        )
    path = set_dir / "set.toml"
    path.write_text(demo_toml(path.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {path}")


def write_pictures(set_dir: Path, *, count: int, size: int, seed: int, workers: int) -> list[Path]:
    """Each line's pictures in generated/line-NN/; a line painted alike before is left as it is.

    A line painted anew (other options, or scripts/demo_images.py changed) also loses its
    collected copies in images/line-NN/, so that `lyriscope collect` takes the new pictures
    instead of skipping their file names as known.
    """
    images = load_script("demo_images")
    painter = hashlib.sha256((SCRIPTS / "demo_images.py").read_bytes()).hexdigest()[:16]
    stamp = {"count": count, "size": size, "seed": seed, "painter": painter}
    folders = []
    for line, kind in enumerate(images.LINE_KINDS):
        folder = set_dir / "generated" / f"line-{line + 1:02d}"
        folders.append(folder)
        stamp_file = folder / "stamp.json"
        if stamp_file.is_file() and json.loads(stamp_file.read_text()) == stamp:
            print(f"line {line + 1} ({kind}): {count} pictures already in {folder}")
            continue
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(set_dir / "images" / folder.name, ignore_errors=True)
        start = time.perf_counter()
        images.write_line_images(
            folder.parent, line, count=count, size=size, seed=seed, workers=workers
        )
        stamp_file.write_text(json.dumps(stamp) + "\n")  # last: marks the line complete
        print(
            f"line {line + 1} ({kind}): {count} pictures {size}² in {folder} "
            f"({time.perf_counter() - start:.1f} s)",
            flush=True,
        )
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=REPO / "sets" / "demo", help="the set folder")
    parser.add_argument("--count", type=int, default=256, help="pictures per line (default 256)")
    parser.add_argument(
        "--size", type=int, default=256, help="picture side in pixels (default 256)"
    )
    parser.add_argument("--seed", type=int, default=0, help="picture seed (default 0)")
    parser.add_argument("--workers", type=int, default=2, help="processes painting pictures")
    parser.add_argument(
        "--model-size", type=int, default=64, help="dataset and model side in pixels (default 64)"
    )
    parser.add_argument("--k", type=int, default=6, help="clusters per line (default 6)")
    parser.add_argument(
        "--rewrite-toml",
        action="store_true",
        help="write set.toml afresh even if it exists (hand edits are lost)",
    )
    parser.add_argument("--train", action="store_true", help="also train the four models")
    parser.add_argument(
        "--kimg",
        type=float,
        default=24.0,
        help="with --train: thousands of images shown per model (default 24)",
    )
    parser.add_argument(
        "--train-arg",
        action="append",
        default=[],
        metavar="ARG",
        help=f"with --train: one more argument for `lyriscope train`, after the "
        f"demo's own ({' '.join(TRAIN_ARGS)}); repeatable, e.g. "
        f"--train-arg=--device=cuda",
    )
    args = parser.parse_args()
    set_dir = args.set.resolve()
    start = time.perf_counter()

    if args.rewrite_toml or not (set_dir / "set.toml").is_file():
        write_set_toml(set_dir)
    write_song(set_dir)  # identical bytes each time; restores a deleted or edited song
    folders = write_pictures(
        set_dir, count=args.count, size=args.size, seed=args.seed, workers=args.workers
    )
    for line, folder in enumerate(folders):
        lyriscope("collect", set_dir, "--line", line + 1, "--sources", f"folder:{folder}")
    lyriscope("cluster", set_dir, "--k", args.k, "--min-side", min(args.size, 256))
    lyriscope("prepare", set_dir, "--size", args.model_size)
    if args.train:
        lyriscope("train", set_dir, "--all", "--kimg", args.kimg, *TRAIN_ARGS, *args.train_arg)
    print(f"demo set built in {set_dir} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()

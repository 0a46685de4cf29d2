"""The README's strip of demo frames: frames of a rendered video at given times, side by side.

python scripts/demo_frames.py [out/demo.mp4] [--at 2 8.5 14.2 22.8 32.3] [-o docs/demo-frames.png]

The default times show the intro (pictures, no words: nobody sings yet), then one moment
of each line while a word is being sung, so the strip shows the karaoke fill.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def frames_at(video: Path, times: list[float]) -> list[Image.Image]:
    """The first decoded frame at or after each time (seconds), in the order given."""
    wanted = sorted(set(times))
    found: dict[float, Image.Image] = {}
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            while wanted and t >= wanted[0] - 1e-6:
                found[wanted.pop(0)] = frame.to_image()
            if not wanted:
                break
    missing = [t for t in times if t not in found]
    if missing:
        raise SystemExit(f"{video} ends before {missing[0]} s")
    return [found[t] for t in times]


def strip(images: list[Image.Image], *, size: int, gap: int) -> Image.Image:
    """The images scaled to size², left to right, `gap` black pixels apart."""
    out = Image.new("RGB", (len(images) * size + (len(images) - 1) * gap, size))
    for i, image in enumerate(images):
        out.paste(image.resize((size, size), Image.Resampling.LANCZOS), (i * (size + gap), 0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path, nargs="?", default=ROOT / "out" / "demo.mp4")
    parser.add_argument(
        "--at",
        type=float,
        nargs="+",
        default=[2, 8.5, 14.2, 22.8, 32.3],
        help="seconds into the video (default: 2 8.5 14.2 22.8 32.3)",
    )
    parser.add_argument("-o", "--out", type=Path, default=ROOT / "docs" / "demo-frames.png")
    parser.add_argument("--size", type=int, default=256, help="side of each frame (default 256)")
    args = parser.parse_args()
    strip(frames_at(args.video, args.at), size=args.size, gap=8).save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

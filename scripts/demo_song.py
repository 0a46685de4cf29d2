"""A deterministic numpy synthesizer for the demo set's song: drums, bass, a pad, four sections.

Writes a 16-bit mono WAV and its LRC (one lyric line per section, an instrumental intro and
outro) with enhanced word times. The song has no voice to take word times from, so each
line's words are spread evenly over the first SUNG_BEATS beats of its section, each on a
beat, and a closing stamp ends the last word. Same bytes on every run: no randomness
outside a fixed RandomState.

    python scripts/demo_song.py --out sets/demo
"""

from __future__ import annotations

import argparse
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SR = 22050  # Hz; 22050 / 30 fps = 735 samples per video frame


@dataclass(frozen=True)
class Section:
    start_beat: int
    beats: int
    chord: tuple[float, ...]  # pad notes (Hz)
    bass: float  # root (Hz)
    drums: bool
    lyric: str | None  # None: instrumental


BPM = 120.0
SUNG_BEATS = 12  # a line's words are sung over this many beats of its 16, then a rest
SECTIONS: tuple[Section, ...] = (
    Section(0, 8, (220.0, 277.2, 329.6), 55.0, False, None),  # intro: pad alone
    Section(8, 16, (220.0, 277.2, 329.6), 55.0, True, "I'm the first ray of light"),
    Section(24, 16, (196.0, 246.9, 293.7), 49.0, True, "Over a calm horizon"),
    Section(40, 16, (174.6, 220.0, 261.6), 43.65, True, "Seeds become circles"),
    Section(56, 16, (164.8, 207.7, 246.9), 41.2, True, "And the fire flows on"),
    Section(72, 4, (220.0, 277.2, 329.6), 55.0, False, None),  # outro
)


def beat_seconds() -> float:
    return 60.0 / BPM


def kick(n: int) -> np.ndarray:
    t = np.arange(n) / SR
    freq = 45 + 90 * np.exp(-t * 30)  # pitch drop gives the thump
    phase = 2 * np.pi * np.cumsum(freq) / SR
    return np.sin(phase) * np.exp(-t * 9)


def snare(n: int, rng: np.random.RandomState) -> np.ndarray:
    t = np.arange(n) / SR
    noise = rng.standard_normal(n)
    return 0.6 * noise * np.exp(-t * 22) + 0.4 * np.sin(2 * np.pi * 190 * t) * np.exp(-t * 30)


def hat(n: int, rng: np.random.RandomState) -> np.ndarray:
    t = np.arange(n) / SR
    noise = np.diff(rng.standard_normal(n + 1))  # first difference: a crude high-pass
    return noise * np.exp(-t * 80)


def pad(freqs: tuple[float, ...], n: int) -> np.ndarray:
    t = np.arange(n) / SR
    out = np.zeros(n)
    for f in freqs:
        for detune in (0.997, 1.0, 1.003):  # a slight chorus
            out += np.sin(2 * np.pi * f * detune * t)
    env = np.minimum(1.0, np.minimum(t / 0.5, (n / SR - t) / 0.5))  # 0.5 s fades
    return out * env / (3 * len(freqs))


def bass(root: float, n: int, beat_n: int) -> np.ndarray:
    t = np.arange(n) / SR
    wave_ = np.sin(2 * np.pi * root * t) + 0.35 * np.sin(
        4 * np.pi * root * t
    )  # warm, few harmonics
    env = np.exp(-((np.arange(n) % beat_n) / SR) * 4)  # re-struck every beat
    return wave_ * env


def synthesize() -> tuple[np.ndarray, list[tuple[float, str]]]:
    """The song [n] float32 in [-1, 1] and its LRC entries (start seconds, text; '' = gap)."""
    rng = np.random.RandomState(2022)
    beat_n = int(round(beat_seconds() * SR))
    total_beats = SECTIONS[-1].start_beat + SECTIONS[-1].beats
    y = np.zeros(total_beats * beat_n + SR)  # one second of tail
    lrc: list[tuple[float, str]] = []
    for s in SECTIONS:
        a = s.start_beat * beat_n
        n = s.beats * beat_n
        y[a : a + n] += 0.35 * pad(s.chord, n)
        lrc.append((s.start_beat * beat_seconds(), s.lyric or ""))
        if not s.drums:
            continue
        y[a : a + n] += 0.25 * bass(s.bass, n, beat_n)
        for b in range(s.beats):
            at = a + b * beat_n
            y[at : at + beat_n] += 0.9 * kick(beat_n) if b % 2 == 0 else 0.55 * snare(beat_n, rng)
            half = beat_n // 2
            y[at + half : at + half + half] += 0.15 * hat(half, rng)
    y = y / np.max(np.abs(y)) * 0.89
    return y.astype(np.float32), lrc


def word_times(start: float, text: str) -> list[tuple[float, str]]:
    """When each word of a line starting at `start` s is sung, as (seconds, word); '' closes.

    Evenly spread over SUNG_BEATS beats and rounded to the beat: a stand-in for a singer.
    """
    words = text.split()
    beats = [round(i * SUNG_BEATS / len(words)) for i in range(len(words))]
    stamps = [(start + b * beat_seconds(), word) for b, word in zip(beats, words, strict=True)]
    return [*stamps, (start + SUNG_BEATS * beat_seconds(), "")]


def stamp(t: float) -> str:
    m, s = divmod(t, 60.0)
    return f"{int(m):02d}:{s:05.2f}"


def lrc_text(entries: list[tuple[float, str]], *, title: str) -> str:
    """The LRC: a line per entry, its words timed (enhanced LRC: <mm:ss.xx> before each)."""
    lines = [f"[ti:{title}]", "[ar:lyriscope]", "[by:scripts/demo_song.py]"]
    for t, text in entries:
        words = " ".join(f"<{stamp(at)}>{word}" for at, word in word_times(t, text)) if text else ""
        lines.append(f"[{stamp(t)}]{words}")
    return "\n".join(lines) + "\n"


def write_wav(path: Path, y: np.ndarray) -> None:
    pcm = (np.clip(y, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SR)
        f.writeframes(pcm.tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for song.wav and song.lrc")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    y, entries = synthesize()
    write_wav(args.out / "song.wav", y)
    (args.out / "song.lrc").write_text(lrc_text(entries, title="First Light"), encoding="utf-8")
    print(f"wrote {args.out / 'song.wav'} ({len(y) / SR:.2f} s) and {args.out / 'song.lrc'}")


if __name__ == "__main__":
    main()

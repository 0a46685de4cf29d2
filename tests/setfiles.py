"""The one way tests make a set folder: set.toml, its audio and LRC, and tiny random models.

Every table can be given as TOML text (written as is, so a test can check that comments
survive) or as a dict. Lines are texts or [[line]] tables; the LRC stamps them `line_s`
apart from 0 unless `times` says otherwise, or is the `lrc` text given (word times, gaps).

Example:
    >>> root = write_set(tmp_path / "s", walk={"pulse": 0.9}, audio="tone", models=True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import tomlkit

from lyriscope.lrc import format_time

SR = 22050
Table = str | Mapping[str, Any] | None


def write_set(
    root: Path,
    *,
    lines: Sequence[str | Mapping[str, Any]] = ("first line", "second line"),
    times: Sequence[float] | None = None,  # LRC stamp of each line (s); None: 0, line_s, ...
    lrc: str | None = None,  # song.lrc exactly as given; None: one stamp per line (times)
    line_s: float = 2.0,  # LRC spacing of the lines when times is None
    audio: str | np.ndarray = "placeholder",  # "placeholder" (a stub file), "silence", "tone"
    seconds: float = 4.0,  # length of a generated song
    sr: int = SR,
    song: Table = None,  # extra [song] keys (title/audio/lyrics are written already)
    output: Table = None,
    walk: Table = None,
    post: Table = None,
    midi: Table = None,
    models: bool | int = False,  # True: a random 32² model per line; an int: that resolution
    title: str = "test",
    comment: str = "# a test set",
    toml: str | None = None,  # set.toml exactly as given (parsing tests); tables above unused
) -> Path:
    """A set folder at root whose set.toml loads (models written when asked); returns root."""
    root.mkdir(parents=True, exist_ok=True)
    _write_audio(root / "song.wav", audio, seconds=seconds, sr=sr)
    tables = [_line_table(line) for line in lines]
    stamps = list(times) if times is not None else [i * line_s for i in range(len(tables))]
    if lrc is None:
        lrc = "".join(
            f"[{format_time(t)}]{table['text']}\n" for t, table in zip(stamps, tables, strict=True)
        )
    (root / "song.lrc").write_text(lrc, encoding="utf-8")
    if models:
        size = 32 if models is True else int(models)
        for i, table in enumerate(tables):
            table.setdefault("model", f"models/line-{i + 1:02d}.safetensors")
            write_model(root / table["model"], size=size, seed=i + 1)
    if toml is None:
        toml = set_toml(
            lines=tables,
            song=song,
            output=output,
            walk=walk,
            post=post,
            midi=midi,
            title=title,
            comment=comment,
        )
    (root / "set.toml").write_text(toml, encoding="utf-8")
    return root


def set_toml(
    *,
    lines: Sequence[str | Mapping[str, Any]] = ("first line", "second line"),
    song: Table = None,
    output: Table = None,
    walk: Table = None,
    post: Table = None,
    midi: Table = None,
    title: str = "test",
    comment: str = "# a test set",
) -> str:
    """The text of a set.toml (as write_set writes it), for a test that rewrites or varies one."""
    song_table = f'[song]\ntitle = {_toml(title)}\naudio = "song.wav"\nlyrics = "song.lrc"'
    parts = [comment, song_table]
    if song:
        parts.append(_body(song))
    for name, table in (("output", output), ("walk", walk), ("post", post)):
        if table is not None:
            parts.append(f"[{name}]\n{_body(table)}")
    for line in lines:
        parts.append("[[line]]\n" + _body(_line_table(line)))
    if midi is not None:
        parts.append(f"[midi]\n{_body(midi)}")
    return "\n\n".join(parts) + "\n"


def write_model(
    path: Path, *, size: int = 32, seed: int = 1, channel_base: int = 256, c_dim: int = 0
) -> Path:
    """A random-weight generator of size² with small channels (fast on a CPU); c_dim classes."""
    # Imported here so that tests which only need set.toml do not load torch.
    from lyriscope.trainers.checkpoint import save_model
    from lyriscope.trainers.random_model import random_generator

    G = random_generator(
        size, channel_base=channel_base, channel_max=32, mapping_layers=2, c_dim=c_dim, seed=seed
    )
    save_model(path, G)
    return path


def _write_audio(path: Path, audio: str | np.ndarray, *, seconds: float, sr: int) -> None:
    if isinstance(audio, np.ndarray):
        sf.write(path, audio.astype(np.float32), sr)
    elif audio == "placeholder":
        path.write_bytes(b"RIFF")  # enough for set.toml to load; not decodable
    elif audio in ("silence", "tone"):
        t = np.arange(round(seconds * sr)) / sr
        y = 0.05 * np.sin(2 * np.pi * 220 * t) if audio == "tone" else np.zeros_like(t)
        sf.write(path, y.astype(np.float32), sr)
    else:
        raise ValueError(f"audio: expected placeholder, silence, tone or samples, got {audio!r}")


def _line_table(line: str | Mapping[str, Any]) -> dict[str, Any]:
    return {"text": line} if isinstance(line, str) else dict(line)


def _body(table: str | Mapping[str, Any]) -> str:
    if isinstance(table, str):
        return table.strip()
    return "\n".join(f"{key} = {_toml(value)}" for key, value in table.items())


def _toml(value: Any) -> str:
    """A TOML value; a dict becomes an inline table (bands, [midi] cc and notes)."""
    if isinstance(value, Mapping):
        inline = tomlkit.inline_table()
        inline.update({str(k): v for k, v in value.items()})
        return inline.as_string()
    return tomlkit.item(value).as_string()

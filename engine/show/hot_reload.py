"""Hot reload for the live show: poll set.toml, its lyrics and the shader files; apply changes.

The files' stamps are polled a few times a second (engine.file_watch). A change that does
not load keeps the last good state running: a broken set.toml keeps the previous SongSet,
a broken shader keeps its last good program (the renderer's `reload()`), and the error is
returned for the HUD.

Example:
    >>> reloader = HotReload(songset, shader_dir=Path("my-shaders"))
    >>> change = reloader.poll(renderer)  # once per frame; cheap between polls
    >>> if change.songset is not None:
    ...     songset = change.songset
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lyriscope.engine.file_watch import FileWatcher
from lyriscope.errors import LyriscopeError
from lyriscope.setmodel import SongSet, load_set

POLL_S = 0.25  # seconds between looks at the files' modification times


class _Reloadable(Protocol):
    def reload(self) -> list[str]: ...


@dataclass(frozen=True)
class Reload:
    """What one poll did."""

    songset: SongSet | None = None  # the new set when its files changed and it loads; else None
    shaders: bool = False  # shader files changed and the renderer recompiled them
    errors: tuple[str, ...] = ()  # one sentence each: a broken set.toml or shader

    @property
    def changed(self) -> bool:
        return self.songset is not None or self.shaders or bool(self.errors)


def incompatible(old: SongSet, new: SongSet) -> str | None:
    """Why `new` cannot replace the running `old` without a restart (None when it can).

    The generator keeps every line's model (and class) loaded, so lines, models and classes
    must stay; walk, seeds, post, text, timings and MIDI mappings may change.
    """
    if len(new.lines) != len(old.lines):
        return (
            f"{new.path}: the number of lines changed ({len(old.lines)} -> {len(new.lines)}); "
            f"restart the show to load them; kept the previous set"
        )
    for a, b in zip(old.lines, new.lines, strict=True):
        if a.model != b.model:
            return (
                f"{new.path}: line {b.index + 1}'s model changed; restart the show to load "
                f"it; kept the previous set"
            )
        if a.label != b.label:  # the generator maps each line with its class
            return (
                f"{new.path}: line {b.index + 1}'s class in the song's model changed; restart "
                f"the show to use it; kept the previous set"
            )
    if new.song.audio != old.song.audio:
        return (
            f"{new.path}: [song] audio changed; restart the show to play it; kept the previous set"
        )
    return None


class HotReload:
    """Watches a set (set.toml and its lyrics) and a shader folder; `poll()` applies changes."""

    def __init__(
        self,
        songset: SongSet,
        *,
        shader_dir: Path | None = None,  # folder of the *.glsl the renderer loads; None: no shaders
        poll_s: float = POLL_S,  # seconds between looks at the files
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.songset = songset
        self.shader_dir = shader_dir
        self.poll_s = poll_s
        self._clock = clock
        self._next_poll = clock() + poll_s
        self._set_files = FileWatcher(_set_paths(songset))
        self._shader_files = FileWatcher(_shader_paths(shader_dir))

    def poll(self, renderer: _Reloadable | None = None) -> Reload:
        """Look at the files if poll_s passed since the last look; reload what changed."""
        now = self._clock()
        if now < self._next_poll:
            return Reload()
        self._next_poll = now + self.poll_s
        self._shader_files.watch(_shader_paths(self.shader_dir))  # new files in the folder
        set_changed = bool(self._set_files.changed())
        shaders_changed = bool(self._shader_files.changed())
        return self._apply(renderer, set_changed=set_changed, shaders_changed=shaders_changed)

    def reload_now(self, renderer: _Reloadable | None = None) -> Reload:
        """Reload the set and the shaders whether or not their files changed (the R key)."""
        self._set_files.changed()
        self._shader_files.changed()
        return self._apply(renderer, set_changed=True, shaders_changed=True)

    def _apply(
        self, renderer: _Reloadable | None, *, set_changed: bool, shaders_changed: bool
    ) -> Reload:
        errors: list[str] = []
        new_set = None
        if set_changed:
            new_set, error = self._load_set()
            if error:
                errors.append(error)
        if shaders_changed and renderer is not None:
            errors.extend(renderer.reload())
        else:
            shaders_changed = False
        return Reload(songset=new_set, shaders=shaders_changed, errors=tuple(errors))

    def _load_set(self) -> tuple[SongSet | None, str | None]:
        try:
            new = load_set(self.songset.path)
            why = incompatible(self.songset, new)
            if why:
                return None, why
        except LyriscopeError as exc:
            return None, f"{exc} (kept the previous set)"
        except OSError as exc:
            return None, f"{self.songset.path}: {exc.strerror or exc} (kept the previous set)"
        self.songset = new
        self._set_files.watch(_set_paths(new))  # a new lyrics file
        return new, None


def _set_paths(songset: SongSet) -> list[Path]:
    return [songset.path, songset.song.lyrics]


def _shader_paths(folder: Path | None) -> list[Path]:
    if folder is None or not folder.is_dir():
        return []
    return sorted(folder.glob("*.glsl"))


__all__ = ["POLL_S", "HotReload", "Reload", "incompatible"]

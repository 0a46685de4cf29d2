"""The live show's keyboard, as one table: each key's Action (through LiveControls) or show command.

Keys: space play/pause, left/right previous/next line, 1-9 cue a line, F fullscreen, H HUD,
R reload set.toml and shaders, B blackout, Esc quit (while playing, a second Esc within 2 s).
Actions go through LiveControls like a MIDI note or an OSC message; the show commands act
on the show itself (its window, its HUD, its reloader).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from types import MappingProxyType

from lyriscope.engine.gl.targets import GLTarget
from lyriscope.engine.show.controls import Action


class ShowCommand(Enum):
    """What a key does to the show itself rather than to its controls."""

    HUD = "show or hide the HUD"
    RELOAD = "reload set.toml and the shaders now"
    FULLSCREEN = "toggle fullscreen"
    QUIT = "quit (while playing, only on a second Esc)"


# Key names as GLTarget.listen_keys takes them (glfw's KEY_<NAME>; digits on the keypad too).
KEYS: Mapping[str, Action | ShowCommand] = MappingProxyType(
    {
        "space": Action("play_pause"),
        "left": Action("prev"),
        "right": Action("next"),
        **{str(n): Action("cue", float(n - 1)) for n in range(1, 10)},
        "b": Action("blackout"),
        "f": ShowCommand.FULLSCREEN,
        "h": ShowCommand.HUD,
        "r": ShowCommand.RELOAD,
        "escape": ShowCommand.QUIT,
    }
)


def install_keyboard(target: GLTarget, on_key: Callable[[str], None]) -> None:
    """Call on_key(name) for each press of a show key (KEYS) in target's window; none offscreen."""
    target.listen_keys(tuple(KEYS), on_key)


__all__ = ["KEYS", "ShowCommand", "install_keyboard"]

"""The one exception family of lyriscope: messages for people, printed in one line by the CLI."""

from __future__ import annotations


class LyriscopeError(Exception):
    """Bad input or a state a person can fix; the message says what, where and what would be right."""


class SetError(LyriscopeError):
    """set.toml is malformed, has unknown keys or wrong types, or names files that are missing."""


class LyricsError(LyriscopeError):
    """An LRC file cannot be read or has a malformed line."""


class AudioError(LyriscopeError):
    """An audio file is missing, unreadable or of an unsupported format."""


class CheckpointError(LyriscopeError):
    """A model file is missing, unsafe, or does not match the expected architecture."""


class DatasetError(LyriscopeError):
    """An image set or dataset zip cannot be used (empty, mixed sizes, unreadable)."""


class DeviceError(LyriscopeError):
    """A GPU, GL context, audio or MIDI device is missing or failed."""


def quoted(text: str, limit: int = 60) -> str:
    """text as a message quotes it: repr, cut after `limit` characters (a lyric may be long)."""
    return repr(text if len(text) <= limit else text[:limit] + "...")

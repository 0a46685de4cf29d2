"""The page's edits of set.toml, applied through setmodel.edit_set: the CLI's validation and messages.

An edit is a list of changes, each {"table": "walk", "key": "pulse", "value": 0.8} or
{"line": 2, "key": "queries", "value": ["rays", "beams"]} (line counted from 1); a null
value removes the key (a line then follows [walk] again). All changes are written at once
or, when the result would not load as a set, not at all: SetError says what broke.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import tomlkit

from lyriscope.errors import SetError
from lyriscope.setmodel import Post, SongSet, TextStyle, WalkParams, edit_set
from lyriscope.studio.errors import BadRequest
from lyriscope.studio.fields import Fields

_WALK = {f.name for f in fields(WalkParams)}
_TEXT = {f"text_{f.name}" for f in fields(TextStyle)}
# What the studio may change; models, classes and [midi] stay with the editor and the CLI.
TABLE_KEYS: dict[str, frozenset[str]] = {
    "song": frozenset({"title", "artist"}),
    "output": frozenset({"size", "fps", "crf", "gap"}),
    "walk": frozenset(_WALK),
    "post": frozenset(({f.name for f in fields(Post)} - {"style"}) | _TEXT),
}
LINE_KEYS: frozenset[str] = frozenset(
    {"text", "queries", "tags", "sources", "seeds", "at"} | _WALK | _TEXT
)
MAX_LIST = 64  # entries of a list value (queries, tags, seeds)


def apply_edits(set_root: Path, body: object, *, line_count: int) -> SongSet:
    """Apply the changes of a request body {"changes": [...]} to the set's set.toml."""
    changes = [_change(item, line_count=line_count) for item in Fields(body).objects("changes")]

    def change(doc: tomlkit.TOMLDocument) -> None:
        for target, key, value in changes:
            table = _table_of(doc, target)
            if value is None:
                table.pop(key, None)
            else:
                table[key] = _toml_value(value)

    return edit_set(set_root, change)


def _change(item: Fields, *, line_count: int) -> tuple[str | int, str, Any]:
    key = item.required_text("key", max_chars=40)
    if item.has("line"):
        line = item.whole("line", lo=1, hi=line_count)
        if key not in LINE_KEYS:
            raise BadRequest(f"{item.where}: a [[line]] key the studio edits, not {key!r}")
        target: str | int = line - 1
    else:
        table = item.choice("table", tuple(TABLE_KEYS))
        if key not in TABLE_KEYS[table]:
            raise BadRequest(f"{item.where}: [{table}] has no key {key!r} the studio edits")
        target = table
    value = item.body.get("value")
    _check_value(value, f"{item.where}: {key}")
    return target, key, value


def _check_value(value: Any, where: str) -> None:
    """JSON the set.toml can hold: a scalar, a short list of scalars, or a table of strings."""
    if value is None or isinstance(value, str | int | float | bool):
        return
    if isinstance(value, list) and len(value) <= MAX_LIST:
        if all(isinstance(x, str | int | float) and not isinstance(x, bool) for x in value):
            return
    if isinstance(value, dict) and len(value) <= 8:
        if all(isinstance(v, str) for v in value.values()):
            return
    raise BadRequest(f"{where}: expected a value, a list of at most {MAX_LIST} or a small table")


def _table_of(doc: tomlkit.TOMLDocument, target: str | int):
    if isinstance(target, int):
        lines = doc.get("line")
        if lines is None or target >= len(lines):
            raise SetError(f"set.toml has no [[line]] {target + 1}")
        return lines[target]
    if target not in doc:
        doc.add(target, tomlkit.table())
    return doc[target]


def _toml_value(value: Any):
    if isinstance(value, list):
        array = tomlkit.array()
        array.extend(value)
        return array
    if isinstance(value, dict):
        table = tomlkit.inline_table()
        table.update(value)
        return table
    return value

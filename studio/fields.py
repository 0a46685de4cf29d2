"""Reading a JSON request of the page: each field checked, a 400 naming the field otherwise."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lyriscope.studio.errors import BadRequest


class Fields:
    """Typed access to a JSON object's fields; every getter raises BadRequest with the field's name."""

    def __init__(self, body: object, *, where: str = "the request") -> None:
        if not isinstance(body, Mapping):
            raise BadRequest(f"{where}: expected a JSON object")
        self.body = body
        self.where = where

    def has(self, name: str) -> bool:
        return self.body.get(name) is not None

    def text(self, name: str, *, default: str | None = None, max_chars: int = 1000) -> str | None:
        value = self.body.get(name, default)
        if value is None:
            return None
        if not isinstance(value, str):
            raise BadRequest(f"{name}: expected text, got {_kind(value)}")
        if len(value) > max_chars:
            raise BadRequest(f"{name}: expected at most {max_chars} characters")
        return value

    def required_text(self, name: str, *, max_chars: int = 1000) -> str:
        value = self.text(name, max_chars=max_chars)
        if value is None or not value.strip():
            raise BadRequest(f"{name}: required")
        return value

    def number(
        self,
        name: str,
        *,
        default: float | None = None,
        lo: float = -math.inf,
        hi: float = math.inf,
    ) -> float | None:
        value = self.body.get(name, default)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise BadRequest(f"{name}: expected a number, got {_kind(value)}")
        if not lo <= value <= hi:
            raise BadRequest(f"{name}: expected a number in {lo:g}..{hi:g}, got {value:g}")
        return float(value)

    def whole(
        self, name: str, *, default: int | None = None, lo: int = -(2**62), hi: int = 2**62
    ) -> int | None:
        value = self.body.get(name, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest(f"{name}: expected a whole number, got {_kind(value)}")
        if not lo <= value <= hi:
            raise BadRequest(f"{name}: expected a whole number in {lo}..{hi}, got {value}")
        return value

    def flag(self, name: str, *, default: bool = False) -> bool:
        value = self.body.get(name, default)
        if not isinstance(value, bool):
            raise BadRequest(f"{name}: expected true or false, got {_kind(value)}")
        return value

    def choice(self, name: str, options: Sequence[str], *, default: str | None = None) -> str:
        value = self.text(name, default=default)
        if value not in options:
            raise BadRequest(f"{name}: expected one of {', '.join(options)}, got {value!r:.40}")
        return value

    def objects(self, name: str, *, most: int = 200) -> list[Fields]:
        value = self.body.get(name)
        if not isinstance(value, list) or not value:
            raise BadRequest(f"{name}: expected a list of objects")
        if len(value) > most:
            raise BadRequest(f"{name}: expected at most {most} entries")
        return [Fields(item, where=f"{name}[{i}]") for i, item in enumerate(value)]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return f"text {value!r:.40}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return "a list" if isinstance(value, list) else "an object"

"""Answers other than 200 that the studio's operations give, each with a sentence for people."""

from __future__ import annotations

from http import HTTPStatus


class StudioRequestError(Exception):
    """A request the studio refuses; `status` is the HTTP answer, the message says why."""

    status: HTTPStatus = HTTPStatus.BAD_REQUEST

    def __init__(self, message: str, *, status: HTTPStatus | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class BadRequest(StudioRequestError):
    status = HTTPStatus.BAD_REQUEST


class NotFound(StudioRequestError):
    status = HTTPStatus.NOT_FOUND


class Conflict(StudioRequestError):
    status = HTTPStatus.CONFLICT


class TooLarge(StudioRequestError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE

"""Domain errors: small classes the web layer maps to translated 4xx answers."""

from __future__ import annotations


class AppError(Exception):
    """An error the user can act on. ``key`` names a catalogue message."""

    status = 400
    key = "error.400.title"

    def __init__(self, key: str | None = None, **params: object) -> None:
        super().__init__(key or self.key)
        if key:
            self.key = key
        self.params = params


class NotFound(AppError):
    status = 404
    key = "error.404.body"


class Forbidden(AppError):
    status = 403
    key = "error.403.body"


class Conflict(AppError):
    status = 409


class TooManyRequests(AppError):
    status = 429


class ValidationFailed(AppError):
    """Per-field problems; ``errors`` maps a field name to a message key."""

    status = 422
    key = "form.errors"

    def __init__(self, errors: dict[str, tuple[str, dict[str, object]]]) -> None:
        super().__init__()
        self.errors = errors

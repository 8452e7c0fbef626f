"""Errors the service raises for callers; the API maps each to its status and JSON body."""

from __future__ import annotations


class SyncdError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(SyncdError):
    status = 422
    code = "invalid"


class NotFound(SyncdError):
    status = 404
    code = "not_found"


class Conflict(SyncdError):
    status = 409
    code = "conflict"


class Unauthorized(SyncdError):
    status = 401
    code = "unauthorized"


class Forbidden(SyncdError):
    status = 403
    code = "forbidden"


class NotConfigured(SyncdError):
    """A feature this server was not set up for (e.g. no Google OAuth client file)."""

    status = 409
    code = "not_configured"

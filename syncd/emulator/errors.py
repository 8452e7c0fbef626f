"""Google API error bodies, byte-for-byte in the shape Google's JSON APIs return them.

Messages and reasons follow Google's Calendar "Handle API errors" guide; where Google does not
document a message the emulator's own wording is used (listed in docs/emulator.md).
"""

from __future__ import annotations

import json
from typing import Any

# google.rpc.Code names that Google's front end adds as "status"; HTTP codes Google has no
# canonical mapping for (410) carry no "status", as in the guide's examples.
_CANONICAL_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

AUTH_REALM = 'Bearer realm="https://accounts.google.com/"'


class ApiError(Exception):
    """An error response of the Calendar API (or of the batch endpoint)."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        location_type: str | None = None,
        location: str | None = None,
        top_message: str | None = None,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.domain = domain
        self.location_type = location_type
        self.location = location
        # Google's top-level message sometimes differs from the per-error one (401, 403 scope).
        self.top_message = top_message or message
        self.headers = headers or {}
        self.details = details

    def body(self) -> dict[str, Any]:
        item: dict[str, Any] = {"message": self.message, "domain": self.domain, "reason": self.reason}
        if self.location_type:
            item["locationType"] = self.location_type
        if self.location:
            item["location"] = self.location
        error: dict[str, Any] = {"code": self.code, "message": self.top_message, "errors": [item]}
        status = _CANONICAL_STATUS.get(self.code)
        if status:
            error["status"] = status
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def to_bytes(self) -> bytes:
        return json.dumps(self.body(), indent=1).encode()


def bad_request(message: str, reason: str = "invalid", *, location: str | None = None,
                location_type: str | None = None, domain: str = "global") -> ApiError:
    return ApiError(400, reason, message, domain=domain, location=location,
                    location_type=location_type)


def invalid_parameter(name: str, message: str) -> ApiError:
    return ApiError(400, "invalid", message, location_type="parameter", location=name)


def required(message: str) -> ApiError:
    return ApiError(400, "required", message)


def parse_error() -> ApiError:
    return ApiError(400, "parseError", "Parse Error")


def _error_info(reason: str, method: str) -> list[dict[str, Any]]:
    # Google's front end attaches a google.rpc.ErrorInfo to authentication failures; note
    # that googleapiclient's HttpError.error_details then shows these, not "errors".
    service, _, rest = method.partition(".")
    resource, _, verb = rest.partition(".")
    rpc = f"{service}.v3.{resource[:1].upper()}{resource[1:]}.{verb[:1].upper()}{verb[1:]}"
    return [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
             "domain": "googleapis.com",
             "metadata": {"service": "calendar-json.googleapis.com", "method": rpc}}]


def login_required(method: str) -> ApiError:
    return ApiError(
        401, "required", "Login Required.", location_type="header", location="Authorization",
        top_message="Request is missing required authentication credential. Expected OAuth 2 "
        "access token, login cookie or other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project.",
        headers={"WWW-Authenticate": AUTH_REALM},
        details=_error_info("CREDENTIALS_MISSING", method),
    )


def invalid_credentials(method: str | None = None) -> ApiError:
    return ApiError(
        401, "authError", "Invalid Credentials", location_type="header", location="Authorization",
        top_message="Request had invalid authentication credentials. Expected OAuth 2 access "
        "token, login cookie or other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project.",
        headers={"WWW-Authenticate": f'{AUTH_REALM}, error="invalid_token"'},
        details=_error_info("ACCESS_TOKEN_TYPE_UNSUPPORTED", method) if method else None,
    )


def insufficient_scopes(method: str, required_scopes: list[str]) -> ApiError:
    return ApiError(
        403, "insufficientPermissions", "Insufficient Permission",
        top_message="Request had insufficient authentication scopes.",
        headers={"WWW-Authenticate": f'{AUTH_REALM}, error="insufficient_scope", '
                                     f'scope="{" ".join(required_scopes)}"'},
        details=_error_info("ACCESS_TOKEN_SCOPE_INSUFFICIENT", method),
    )


def not_found(message: str = "Not Found") -> ApiError:
    return ApiError(404, "notFound", message)


def duplicate() -> ApiError:
    return ApiError(409, "duplicate", "The requested identifier already exists.")


def deleted() -> ApiError:
    return ApiError(410, "deleted", "Resource has been deleted")


def full_sync_required() -> ApiError:
    return ApiError(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.",
                    domain="calendar", location_type="parameter", location="syncToken")


def condition_not_met() -> ApiError:
    return ApiError(412, "conditionNotMet", "Precondition Failed", location_type="header",
                    location="If-Match")


def time_range_empty(location: str | None = None) -> ApiError:
    return ApiError(400, "timeRangeEmpty", "The specified time range is empty.", domain="calendar",
                    location_type="parameter" if location else None, location=location)


def user_rate_limit() -> ApiError:
    return ApiError(403, "userRateLimitExceeded", "User Rate Limit Exceeded", domain="usageLimits")


def rate_limit(code: int = 429) -> ApiError:
    return ApiError(code, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits")


def quota_exceeded() -> ApiError:
    return ApiError(403, "quotaExceeded", "Calendar usage limits exceeded.", domain="usageLimits")


def backend_error(code: int = 500) -> ApiError:
    if code == 503:
        return ApiError(503, "backendError", "The service is currently unavailable.")
    return ApiError(code, "backendError", "Backend Error")


_BY_REASON = {
    "authError": invalid_credentials,
    "userRateLimitExceeded": user_rate_limit,
    "quotaExceeded": quota_exceeded,
    "notFound": not_found,
    "duplicate": duplicate,
    "deleted": deleted,
    "fullSyncRequired": full_sync_required,
    "conditionNotMet": condition_not_met,
}


_DEFAULT_REASON = {400: "badRequest", 401: "authError", 403: "rateLimitExceeded",
                   404: "notFound", 409: "duplicate", 410: "deleted", 412: "conditionNotMet",
                   429: "rateLimitExceeded"}


def injected(code: int, reason: str | None = None) -> ApiError:
    """The error Google returns with `code` (and `reason`), for fault injection."""
    reason = reason or _DEFAULT_REASON.get(code, "backendError")
    template = _BY_REASON.get(reason)
    if reason == "rateLimitExceeded":
        error = rate_limit(code)
    elif template is not None:
        error = template()
    elif reason == "backendError":
        error = backend_error(code)
    elif reason == "badRequest":
        error = ApiError(code, "badRequest", "Bad Request")
    else:
        error = ApiError(code, reason, f"Injected fault {code} {reason}")
    error.code = code  # the status asked for wins over the reason's usual one
    return error

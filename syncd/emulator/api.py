"""One Calendar API call from raw request to raw response: routing, bearer authentication,
scope enforcement, quotas and injected faults, the handler, `fields`, counting.

Both the HTTP front door and the batch endpoint call `Dispatcher.handle`, so a call inside a
batch behaves exactly like the same call on its own.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from . import errors, fields
from .calendar import CalendarApi, Call, match_route
from .counters import Counters
from .errors import ApiError
from .faults import Faults
from .grants import Grants
from .scopes import METHOD_SCOPES, granting_scopes
from .state import AccessToken, EmulatorState

log = logging.getLogger(__name__)

API_PREFIX = "/calendar/v3/"
JSON_TYPE = "application/json; charset=UTF-8"
_REASONS = {200: "OK", 204: "No Content", 304: "Not Modified", 400: "Bad Request",
            401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
            410: "Gone", 412: "Precondition Failed", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
            504: "Gateway Timeout"}


def reason_phrase(status: int) -> str:
    return _REASONS.get(status, "Unknown")


@dataclass
class ApiRequest:
    method: str
    path: str  # percent-encoded, without the query string
    params: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base_url: str


@dataclass
class ApiResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def error(cls, exc: ApiError) -> ApiResponse:
        return cls(exc.code, exc.to_bytes(), {"Content-Type": JSON_TYPE, **exc.headers})


def route_of(http_method: str, path: str) -> tuple[str, list[str]] | None:
    """The method id and decoded path arguments of a Calendar API path, if it is one."""
    if not path.startswith(API_PREFIX):
        return None
    segments = [unquote(s) if "%" in s else s for s in path[len(API_PREFIX):].split("/")]
    return match_route(http_method, segments)


class Dispatcher:
    def __init__(self, state: EmulatorState, grants: Grants, calendar: CalendarApi,
                 faults: Faults, counters: Counters) -> None:
        self.state = state
        self.grants = grants
        self.calendar = calendar
        self.faults = faults
        self.counters = counters

    def handle(self, request: ApiRequest, in_batch: bool = False,
               route: tuple[str, list[str]] | None = None) -> ApiResponse:
        route = route or route_of(request.method, request.path)
        if route is None:
            response = ApiResponse.error(errors.not_found())
            self.counters.api_request("unknown", response.status, None, in_batch)
            return response
        method, args = route
        account = None
        try:
            with self.state.lock:
                token = self._authenticate(method, request.headers.get("authorization"))
                account = token.account
                granting = granting_scopes(method, token.scopes)
                if not granting:
                    raise errors.insufficient_scopes(method, sorted(METHOD_SCOPES[method]))
                quota_user = (request.params.get("quotaUser") or [account])[-1]
                fault = self.faults.api_level(method, request.method, request.path, account,
                                              token.client_id, quota_user)
                if fault is not None:
                    raise fault
                call = Call(method=method, account=account, client_id=token.client_id,
                            granting=granting, args=args, params=request.params,
                            headers=request.headers, body=request.body,
                            base_url=request.base_url)
                wanted = request.params.get("fields")
                # Parsed first so that a bad selection rejects a write instead of following it.
                selection = fields.parse(wanted[-1]) if wanted and wanted[-1] else None
                status, body, headers = self.calendar.run(call)
            response = self._encode(status, body, headers, selection)
        except ApiError as exc:
            response = ApiResponse.error(exc)
        except Exception:  # a bug must look like Google's 500, not kill the connection
            log.exception("emulator failure in %s", method)
            response = ApiResponse.error(errors.backend_error())
        self.counters.api_request(method, response.status, account, in_batch)
        return response

    def _authenticate(self, method: str, header: str | None) -> AccessToken:
        if not header:
            raise errors.login_required(method)
        scheme, _, value = header.partition(" ")
        token = self.grants.access_token(value.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            raise errors.invalid_credentials(method)
        return token

    @staticmethod
    def _encode(status: int, body: dict[str, Any] | None, headers: dict[str, str],
                selection: fields.Selection | None) -> ApiResponse:
        if body is None:
            return ApiResponse(status, b"", headers)
        if selection is not None:
            body = fields.apply(body, selection)
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return ApiResponse(status, payload, {"Content-Type": JSON_TYPE, **headers})

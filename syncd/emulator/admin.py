"""The /emulator/ admin API: JSON over HTTP on top of Control (see docs/emulator.md)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .control import Control
from .faults import Faults

Handler = Callable[[Request], Awaitable[Response]]


def base_url(request: Request, public_url: str) -> str:
    if public_url:
        return public_url.rstrip("/")
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise TypeError("the request body must be a JSON object")
    return data


def _guard(handler: Callable[[Request], Awaitable[Any]]) -> Handler:
    """Turn bad input into a 400 and unknown names into a 404, with a plain JSON error."""
    async def wrapped(request: Request) -> Response:
        try:
            result = await handler(request)
        except KeyError as exc:
            return JSONResponse({"error": f"not found: {exc.args[0]}"}, 404)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return result if isinstance(result, Response) else JSONResponse(result)
    return wrapped


class AdminApi:
    def __init__(self, control: Control, faults: Faults) -> None:
        self.control = control
        self.faults = faults

    def routes(self) -> list[Route]:
        table: list[tuple[str, str, Callable[[Request], Awaitable[Any]]]] = [
            ("GET", "/emulator/health", self._health),
            ("GET", "/emulator/accounts", self._accounts),
            ("POST", "/emulator/accounts", self._create_account),
            ("GET", "/emulator/accounts/{email}/calendars", self._calendars),
            ("GET", "/emulator/accounts/{email}/calendars/{calendar_id}/events", self._events),
            ("POST", "/emulator/accounts/{email}/revoke", self._revoke),
            ("POST", "/emulator/accounts/{email}/expire-access-tokens", self._expire_access),
            ("GET", "/emulator/clients", self._clients),
            ("POST", "/emulator/clients", self._register_client),
            ("GET", "/emulator/clients/{client_id}/secrets", self._client_secrets),
            ("GET", "/emulator/client-secrets", self._client_secrets),
            ("GET", "/emulator/counters", self._counters),
            ("POST", "/emulator/counters/reset", self._reset_counters),
            ("GET", "/emulator/faults", self._faults),
            ("PUT", "/emulator/faults", self._set_faults),
            ("DELETE", "/emulator/faults", self._clear_faults),
            ("POST", "/emulator/faults/scripted", self._script_fault),
            ("PUT", "/emulator/quota", self._quota),
            ("GET", "/emulator/config", self._config),
            ("PATCH", "/emulator/config", self._config),
            ("POST", "/emulator/sync-tokens/expire", self._expire_sync_tokens),
            ("GET", "/emulator/channels", self._channels),
            ("POST", "/emulator/clock/advance", self._advance_clock),
            ("POST", "/emulator/reset", self._reset),
            ("POST", "/emulator/save", self._save),
        ]
        return [Route(path, _guard(fn), methods=[verb]) for verb, path, fn in table]

    def _base(self, request: Request) -> str:
        return base_url(request, self.control.settings.public_url)

    async def _health(self, request: Request) -> Any:
        return {"ok": True}

    async def _accounts(self, request: Request) -> Any:
        return {"accounts": self.control.accounts()}

    async def _create_account(self, request: Request) -> Any:
        body = await _body(request)
        if "email" not in body:
            raise ValueError("email is required")
        return self.control.create_account(
            body["email"], scopes=body.get("scopes"), client_id=body.get("client_id"),
            time_zone=body.get("time_zone"), base_url=self._base(request))

    async def _calendars(self, request: Request) -> Any:
        return {"items": self.control.calendars(request.path_params["email"])}

    async def _events(self, request: Request) -> Any:
        p = request.path_params
        return {"items": self.control.events(p["email"], p["calendar_id"])}

    async def _revoke(self, request: Request) -> Any:
        body = await _body(request)
        return {"revoked": self.control.revoke(request.path_params["email"],
                                               body.get("client_id"))}

    async def _expire_access(self, request: Request) -> Any:
        return {"expired": self.control.expire_access_tokens(request.path_params["email"])}

    async def _clients(self, request: Request) -> Any:
        return {"clients": self.control.clients()}

    async def _register_client(self, request: Request) -> Any:
        body = await _body(request)
        return self.control.register_client(
            client_id=body.get("client_id"), client_secret=body.get("client_secret"),
            redirect_uris=body.get("redirect_uris"), kind=body.get("type", "web"),
            name=body.get("name", "syncd"))

    async def _client_secrets(self, request: Request) -> Any:
        return self.control.client_secrets(request.path_params.get("client_id"),
                                           self._base(request))

    async def _counters(self, request: Request) -> Any:
        return self.control.counters.snapshot()

    async def _reset_counters(self, request: Request) -> Any:
        self.control.counters.reset()
        return self.control.counters.snapshot()

    async def _faults(self, request: Request) -> Any:
        return self.faults.describe()

    async def _set_faults(self, request: Request) -> Any:
        body = await _body(request)
        self.faults.configure(
            error_rates=body.get("error_rates"), error_reasons=body.get("error_reasons"),
            methods=body.get("methods"), latency_ms=float(body.get("latency_ms", 0)),
            jitter_ms=float(body.get("jitter_ms", 0)), drop_rate=float(body.get("drop_rate", 0)))
        return self.faults.describe()

    async def _clear_faults(self, request: Request) -> Any:
        self.faults.clear()
        return self.faults.describe()

    async def _script_fault(self, request: Request) -> Any:
        body = await _body(request)
        fault = self.faults.script(
            count=int(body.get("count", 1)), method=body.get("method"), path=body.get("path"),
            http_method=body.get("http_method"), status=body.get("status"),
            reason=body.get("reason"), drop=bool(body.get("drop", False)))
        return fault.describe()

    async def _quota(self, request: Request) -> Any:
        body = await _body(request)
        self.control.set_quota_exceeded(bool(body.get("quota_exceeded", True)),
                                        body.get("accounts"))
        return self.faults.describe()

    async def _config(self, request: Request) -> Any:
        body = await _body(request) if request.method == "PATCH" else {}
        return self.control.config(**body)

    async def _expire_sync_tokens(self, request: Request) -> Any:
        return {"epoch": self.control.expire_sync_tokens()}

    async def _channels(self, request: Request) -> Any:
        return {"channels": self.control.channels()}

    async def _advance_clock(self, request: Request) -> Any:
        body = await _body(request)
        return {"now": self.control.advance_clock(float(body.get("seconds", 0)))}

    async def _reset(self, request: Request) -> Any:
        self.control.reset()
        return {"ok": True}

    async def _save(self, request: Request) -> Any:
        body = await _body(request)
        return {"saved": self.control.save(body.get("path"))}

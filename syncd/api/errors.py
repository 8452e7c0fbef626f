"""Every error leaves as {"error": {"code", "message", "field"?}} with a 4xx status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from syncd.errors import SyncdError

log = logging.getLogger(__name__)

STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 409: "conflict", 415: "unsupported_media_type",
                422: "invalid"}


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict = {"code": code, "message": message}
    if field:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _field(loc: tuple) -> str | None:
    # ("body", "entity", "url") → "entity.url"; ("query", "limit") → "limit"
    parts = [str(p) for p in loc[1:] if not str(p).startswith("function-after")]
    if not parts and loc[:1] == ("body",):
        return "body"  # the body as a whole: missing, or not a JSON object
    return ".".join(parts) or None


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        return error_response(400, "malformed_json", "request body is not valid JSON", "body")
    field = _field(tuple(first.get("loc", ())))
    message = first.get("msg", "invalid value")
    return error_response(422, "invalid", f"{field}: {message}" if field else message, field)


async def _syncd(request: Request, exc: SyncdError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, exc.field,
                          {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None)


async def _http(request: Request, exc: HTTPException) -> JSONResponse:
    code = STATUS_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(SyncdError, _syncd)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http)  # type: ignore[arg-type]

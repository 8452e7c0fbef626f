"""The web page (SPEC §6 "Web page"): plain files from `syncd/web/static`, no build step.

`GET /` is the page; `/static/...` its assets; `GET /v1/me` tells a signed-in page who it is.
The page reads everything else through the ordinary REST API with the user's token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from pydantic import BaseModel

from syncd.api.auth import Caller, caller
from syncd.errors import Forbidden, NotFound

STATIC = (Path(__file__).resolve().parent.parent / "web" / "static").resolve()

# The page builds its DOM with textContent and loads nothing from elsewhere; the policy makes
# an injected script inert even if a future change slipped. Tokens never leak via Referer.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
               ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml",
               ".png": "image/png", ".ico": "image/x-icon", ".json": "application/json"}

router = APIRouter(tags=["web"])


class MeOut(BaseModel):
    user_id: str


def _file(path: Path) -> FileResponse:
    headers = dict(PAGE_HEADERS)
    if path.name == "sw.js":
        headers["Service-Worker-Allowed"] = "/"
    return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
                        headers=headers)


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    return _file(STATIC / "index.html")


@router.get("/static/{name:path}", include_in_schema=False)
def asset(name: str) -> FileResponse:
    path = (STATIC / name).resolve()
    if not path.is_relative_to(STATIC) or not path.is_file() or path.name.startswith("."):
        raise NotFound(f"no asset {name!r}")
    return _file(path)


@router.get("/v1/me", response_model=MeOut, tags=["users"])
def me(who: Annotated[Caller, Depends(caller)]) -> MeOut:
    """The user a token belongs to. An API key is not a user."""
    if who.user_id is None:
        raise Forbidden("an API key has no user; call this with a user token")
    return MeOut(user_id=who.user_id)

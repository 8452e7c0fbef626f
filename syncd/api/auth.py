"""Who is calling: the CRM (an API key from settings) or one user (a token they were issued)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from syncd.api.schemas import ID_PATTERN
from syncd.daemon import Node
from syncd.errors import Forbidden, NotFound, Unauthorized


@dataclass(frozen=True)
class Caller:
    user_id: str | None  # None: the CRM, with an API key

    @property
    def is_crm(self) -> bool:
        return self.user_id is None


def node(request: Request) -> Node:
    return request.app.state.node


async def caller(request: Request) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        # EventSource cannot set headers, so the stream also takes the token as a parameter.
        token = request.query_params.get("access_token", "")
    if not token:
        raise Unauthorized("missing bearer token")
    n: Node = request.app.state.node
    if any(hmac.compare_digest(token, key) for key in n.settings.api.keys):
        return Caller(user_id=None)
    user_id = await run_in_threadpool(n.service.user_for_token, token)
    if user_id is None:
        raise Unauthorized("unknown or revoked token")
    return Caller(user_id=user_id)


def crm_only(who: Annotated[Caller, Depends(caller)]) -> Caller:
    if not who.is_crm:
        raise Forbidden("this call needs an API key")
    return who


UserId = Annotated[str, Path(pattern=ID_PATTERN)]


def own_user(id: UserId, who: Annotated[Caller, Depends(caller)]) -> str:
    """A user may touch only their own data; anyone else's looks absent (404), not forbidden."""
    if who.user_id is not None and who.user_id != id:
        raise NotFound(f"no user {id!r}", field="id")
    return id


def existing_user(id: Annotated[str, Depends(own_user)],
                  n: Annotated[Node, Depends(node)]) -> str:
    n.service.get_user(id)
    return id


CRM = Annotated[Caller, Depends(crm_only)]
OwnUser = Annotated[str, Depends(existing_user)]
NodeDep = Annotated[Node, Depends(node)]

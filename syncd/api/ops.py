"""Operations endpoints: `GET /healthz` (200 healthy / 503 not) and `GET /metrics` (Prometheus).

Both are unauthenticated, as load balancers and Prometheus expect: they reveal no user data and
no secret (a failed check names only the exception class; the details go to the log). Bind
`http.host` to a private address, or filter these two paths at the proxy, if that matters.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from syncd import health

router = APIRouter(tags=["ops"])

NO_CACHE = {"Cache-Control": "no-store"}


@router.get("/healthz", responses={503: {"description": "Unhealthy (same body)"}})
async def healthz(request: Request) -> JSONResponse:
    """Database reachable, workers alive and making progress, the most overdue job's lateness,
    users whose Google sync is failing (reported, not fatal). 200 if healthy, else 503."""
    ok, body = await run_in_threadpool(health.health, request.app.state.node)
    return JSONResponse(body, status_code=200 if ok else 503, headers=NO_CACHE)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request) -> Response:
    """This node's metrics in the Prometheus text format (OpenMetrics if Accept asks)."""
    data, content_type = await run_in_threadpool(request.app.state.node.metrics.render,
                                                 request.headers.get("accept", ""))
    return Response(data, headers={**NO_CACHE, "Content-Type": content_type})

"""The FastAPI application for one node."""

from __future__ import annotations

from fastapi import FastAPI

from syncd import __doc__ as about
from syncd.api import calendar, devices, errors, notifications, ops, tasks, users, web
from syncd.api.schemas import ErrorOut
from syncd.daemon import Node

ERRORS = {code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 422)}


def create_app(node: Node) -> FastAPI:
    app = FastAPI(title="syncd", version="0.1.0", description=about, responses=ERRORS)
    app.state.node = node
    errors.install(app)
    for module in (users, tasks, notifications, calendar):
        app.include_router(module.router)
    app.include_router(web.router)  # the web page: GET /, /static/..., /v1/me
    app.include_router(devices.router)  # devices, Web Push subscriptions (issue 5)
    app.include_router(ops.router)  # GET /healthz, GET /metrics
    return app

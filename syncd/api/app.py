"""The FastAPI application for one node."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text

from syncd import __doc__ as about
from syncd.api import errors, notifications, tasks, users
from syncd.api.schemas import ErrorOut
from syncd.daemon import Node

ERRORS = {code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 422)}


def create_app(node: Node) -> FastAPI:
    app = FastAPI(title="syncd", version="0.1.0", description=about, responses=ERRORS)
    app.state.node = node
    errors.install(app)
    for module in (users, tasks, notifications):
        app.include_router(module.router)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict:
        with node.db.read() as s:
            s.execute(text("SELECT 1"))
        return {"status": "ok", "workers_alive": node.worker.alive}

    return app

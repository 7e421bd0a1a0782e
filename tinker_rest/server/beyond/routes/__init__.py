"""One router per resource; :data:`router` includes them all (``app.include_router(router)``)."""

from fastapi import APIRouter

from tinker_rest.server.beyond.routes import (
    accounts,
    billing,
    files,
    session_search,
    traces,
    weights,
)

router = APIRouter()
for module in (accounts, weights, files, session_search, traces, billing):
    router.include_router(module.router)

__all__ = ["router"]

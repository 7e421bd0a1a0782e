"""Authentication (tag ``auth``): who an API key belongs to."""

from __future__ import annotations

from typing import Any

import tinker_rest_models as m
from fastapi import APIRouter

from tinker_rest.server.api.deps import CallerDep, StoreDep

router = APIRouter(prefix="/api/v1/auth")


@router.get("/apikey/me", response_model=m.WhoamiResponse)
def whoami(caller: CallerDep, store: StoreDep) -> dict[str, Any]:
    """Who the API key belongs to.
    ``GET /api/v1/auth/apikey/me``"""
    return store.whoami(caller)

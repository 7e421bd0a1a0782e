"""Routes: ``whoami`` and the supported models."""

from __future__ import annotations

from typing import Any

import tinker_rest_models as m
from fastapi import APIRouter

from tinker_rest.server.beyond import accounts
from tinker_rest.server.beyond.deps import CallerDep, DbDep

router = APIRouter(tags=["auth", "capabilities"])


@router.get("/api/v1/auth/apikey/me", response_model=m.WhoamiResponse)
def whoami(caller: CallerDep) -> dict[str, Any]:
    """Who the API key belongs to. ``GET /api/v1/auth/apikey/me``"""
    return accounts.whoami(caller)


@router.get("/api/v1/get_server_capabilities", response_model=m.GetServerCapabilitiesResponse)
def get_server_capabilities(caller: CallerDep, s: DbDep) -> dict[str, Any]:
    """The models the server supports. ``GET /api/v1/get_server_capabilities``"""
    return {"supported_models": accounts.supported_models(s)}

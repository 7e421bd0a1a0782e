"""Capabilities (tag ``capabilities``): the models the server supports."""

from __future__ import annotations

from typing import Any

import tinker_rest_models as m
from fastapi import APIRouter

from tinker_rest.server.api.deps import CallerDep, StoreDep

router = APIRouter(prefix="/api/v1")


@router.get("/get_server_capabilities", response_model=m.GetServerCapabilitiesResponse)
def get_server_capabilities(caller: CallerDep, store: StoreDep) -> dict[str, Any]:
    """The models the server supports.
    ``GET /api/v1/get_server_capabilities``"""
    return {"supported_models": store.supported_models()}

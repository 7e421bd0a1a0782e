"""SDK configuration and telemetry (tag ``client``): they need a key and change nothing."""

from __future__ import annotations

from typing import Annotated, Any

import tinker_rest_models as m
from fastapi import APIRouter, Depends, Request

from tinker_rest.server.api.deps import CallerDep, json_body

router = APIRouter(prefix="/api/v1")


async def config_body(request: Request) -> m.ClientConfigRequest | None:
    """The SDK's config request: required by ``/client/config``, optional for the dynamic one."""
    required = request.url.path.endswith("/client/config")
    return await json_body(m.ClientConfigRequest, required=required)(request)


ConfigBody = Annotated[m.ClientConfigRequest | None, Depends(config_body)]


@router.post("/client/config", response_model=m.ClientConfigResponse)
@router.post("/client/dynamic_config", response_model=m.ClientConfigResponse)
def client_config(caller: CallerDep, body: ConfigBody) -> dict[str, Any]:
    """SDK configuration, fixed or refreshable; empty means defaults. The body, which says
    the SDK's version, is validated; a required one for ``config``, optional for the other.
    ``POST /api/v1/client/config``, ``POST /api/v1/client/dynamic_config``"""
    return {}


@router.post("/telemetry", response_model=m.TelemetryResponse)
def telemetry(
    caller: CallerDep,
    body: Annotated[
        m.TelemetryRequest | None, Depends(json_body(m.TelemetryRequest, required=False))
    ],
) -> dict[str, Any]:
    """Accept a telemetry batch without looking at it.
    ``POST /api/v1/telemetry``"""
    return {"status": "accepted"}

"""SDK configuration and telemetry (tag ``client``): they need a key and change nothing."""

from __future__ import annotations

from typing import Annotated, Any

import tinker_rest_models as m
from fastapi import APIRouter, Depends

from tinker_rest.server.api.deps import CallerDep, json_body

router = APIRouter(prefix="/api/v1")


@router.post("/client/config", response_model=m.ClientConfigResponse)
def client_config(
    caller: CallerDep,
    body: Annotated[m.ClientConfigRequest, Depends(json_body(m.ClientConfigRequest))],
) -> dict[str, Any]:
    """SDK configuration; empty means defaults.
    ``POST /api/v1/client/config``"""
    return {}


@router.post("/client/dynamic_config", response_model=m.ClientConfigResponse)
def client_dynamic_config(
    caller: CallerDep,
    body: Annotated[
        m.ClientConfigRequest | None, Depends(json_body(m.ClientConfigRequest, required=False))
    ],
) -> dict[str, Any]:
    """Refreshable SDK configuration.
    ``POST /api/v1/client/dynamic_config``"""
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

"""Samplers (tag ``samplers``)."""

from __future__ import annotations

from typing import Any

import tinker_rest_models as m
from fastapi import APIRouter

from tinker_rest.server.api.deps import CallerDep, StoreDep

router = APIRouter(prefix="/api/v1/samplers")


@router.get("/{sampler_id}", response_model=m.GetSamplerResponse)
def get_sampler(caller: CallerDep, store: StoreDep, sampler_id: str) -> dict[str, Any]:
    """A sampler.
    ``GET /api/v1/samplers/{sampler_id}``"""
    return store.get_sampler(caller, sampler_id)

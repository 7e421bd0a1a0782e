"""Routes: ``copy_weights`` and the signed URLs of an external checkpoint's files."""

from __future__ import annotations

from typing import Annotated, Any

import tinker_rest_models as m
from fastapi import APIRouter, Depends, Header

from tinker_rest.server.app import required_body
from tinker_rest.server.beyond import weights
from tinker_rest.server.beyond.deps import (
    SIGNED_URL_SECONDS,
    BaseUrlDep,
    CallerDep,
    DbDep,
    SignerDep,
    StoreDep,
)

router = APIRouter(tags=["checkpoints"])


@router.post("/api/v1/copy_weights", response_model=m.CopyWeightsResponse)
def copy_weights(
    caller: CallerDep,
    store: StoreDep,
    s: DbDep,
    body: Annotated[m.CopyWeightsRequest, Depends(required_body(m.CopyWeightsRequest))],
    weights_access_token: Annotated[
        str | None, Header(alias="X-Tinker-Weights-Access-Token", max_length=4096)
    ] = None,
) -> dict[str, Any]:
    """Copy a checkpoint into a project as a new training run. ``POST /api/v1/copy_weights``

    The reference server has no other accounts, so the access token is accepted and unused;
    it is never logged.
    """
    tinker_path = weights.copy_weights(
        store,
        s,
        caller,
        source_path=body.source_path,
        destination_project_id=body.destination_project_id,
        ttl_seconds=body.ttl_seconds,
    )
    return {"tinker_path": tinker_path}


@router.get(
    "/api/v1/training_runs/{training_run_id}/checkpoints/external_weights/{checkpoint_name}"
    "/external_weights_urls",
    response_model=m.ExternalWeightsUrlsResponse,
)
def get_external_weights_urls(
    caller: CallerDep,
    store: StoreDep,
    s: DbDep,
    signer: SignerDep,
    base_url: BaseUrlDep,
    training_run_id: str,
    checkpoint_name: str,
) -> dict[str, Any]:
    """A signed URL per file of an external checkpoint.
    ``GET …/checkpoints/external_weights/{name}/external_weights_urls``"""
    signed = weights.external_weights_urls(
        store,
        s,
        caller,
        signer,
        training_run_id=training_run_id,
        checkpoint_name=checkpoint_name,
        base_url=base_url,
        valid_seconds=SIGNED_URL_SECONDS,
    )
    return {"urls": signed.urls, "expires": signed.expires}

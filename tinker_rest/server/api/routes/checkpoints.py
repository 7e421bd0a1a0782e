"""Checkpoints (tag ``checkpoints``): list, delete, publish, TTL, archive URL, weights info,
copies (``copy_weights``) and the signed file URLs of external checkpoints.

The writes take the idempotency key (:data:`IdempotencyDep`) and hand it to the store, which
records it in the write's own transaction.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import tinker_rest_models as m
from fastapi import APIRouter, Depends, Header, Request, Response

from tinker_rest._paths import TinkerPath
from tinker_rest.server.api.deps import (
    CallerDep,
    CheckpointPathDep,
    IdempotencyDep,
    Limit,
    Offset,
    StoreDep,
    in_db_write_group,
    in_db_writer,
    json_body,
)
from tinker_rest.server.errors import Unavailable
from tinker_rest.server.store import Caller, Store

router = APIRouter(prefix="/api/v1")

CHECKPOINT = "/training_runs/{training_run_id}/checkpoints/{checkpoint_kind}/{checkpoint_name}"
TtlBody = Annotated[
    m.SetCheckpointTtlRequest,
    Depends(json_body(m.SetCheckpointTtlRequest, nullable=frozenset({"ttl_seconds"}))),
]
WeightsInfoBody = Annotated[m.WeightsInfoRequest, Depends(json_body(m.WeightsInfoRequest))]
CopyWeightsBody = Annotated[m.CopyWeightsRequest, Depends(json_body(m.CopyWeightsRequest))]
# How long the signed URLs of checkpoint files and traces stay valid.
SIGNED_URL_SECONDS = 3600


@router.get(
    "/training_runs/{training_run_id}/checkpoints", response_model=m.CheckpointsListResponse
)
def list_checkpoints(caller: CallerDep, store: StoreDep, training_run_id: str) -> dict[str, Any]:
    """A run's checkpoints, oldest first, not paginated.
    ``GET /api/v1/training_runs/{training_run_id}/checkpoints``"""
    return {"checkpoints": store.list_checkpoints(caller, training_run_id), "cursor": None}


@dataclass(frozen=True)
class CheckpointWrite:
    """A write on one checkpoint of the caller's (delete, publish, TTL): who, where, which."""

    request: Request
    caller: Caller
    store: Store
    path: TinkerPath

    async def apply(self, method: Callable[..., None], *args: Any) -> Response:
        """``method(caller, path, *args)`` on the app's writer thread, in a write group;
        answers 204."""
        await in_db_write_group(self.request, method, self.caller, self.path, *args)
        return Response(status_code=204)


async def checkpoint_write(
    request: Request, caller: CallerDep, store: StoreDep, path: CheckpointPathDep
) -> CheckpointWrite:
    """The caller and the checkpoint of a write, after authentication (a coroutine: no I/O)."""
    return CheckpointWrite(request, caller, store, path)


CheckpointWriteDep = Annotated[CheckpointWrite, Depends(checkpoint_write)]


@router.delete(CHECKPOINT, status_code=204, response_class=Response)
async def delete_checkpoint(write: CheckpointWriteDep, idempotent: IdempotencyDep) -> Response:
    """Delete an owned checkpoint and its files.
    ``DELETE /api/v1/training_runs/{training_run_id}/checkpoints/{kind}/{name}``"""
    return await write.apply(write.store.delete_checkpoint, idempotent)


@router.api_route(
    CHECKPOINT + "/publish", methods=["POST", "DELETE"], status_code=204, response_class=Response
)
async def set_checkpoint_public(write: CheckpointWriteDep, idempotent: IdempotencyDep) -> Response:
    """Make an owned checkpoint public (POST, ``publish_checkpoint``) or private again (DELETE,
    ``unpublish_checkpoint``).
    ``POST``/``DELETE /api/v1/training_runs/{training_run_id}/checkpoints/{kind}/{name}/publish``
    """
    public = write.request.method == "POST"
    return await write.apply(write.store.set_public, public, idempotent)


@router.put(CHECKPOINT + "/ttl", status_code=204, response_class=Response)
async def set_checkpoint_ttl(
    write: CheckpointWriteDep, body: TtlBody, idempotent: IdempotencyDep
) -> Response:
    """Set or remove an owned checkpoint's expiry.
    ``PUT /api/v1/training_runs/{training_run_id}/checkpoints/{kind}/{name}/ttl``"""
    return await write.apply(write.store.set_ttl, body.ttl_seconds, idempotent)


@router.get(CHECKPOINT + "/archive", response_model=m.CheckpointArchiveUrlResponse)
def get_checkpoint_archive_url(
    request: Request, caller: CallerDep, store: StoreDep, path: CheckpointPathDep
) -> dict[str, Any]:
    """A signed URL for the checkpoint's tar archive; 503 while it is being built.
    ``GET /api/v1/training_runs/{training_run_id}/checkpoints/{kind}/{name}/archive``

    The URL starts with the configured public base URL (``--public-url``), else the address
    the server is bound to; never with the request's ``Host``, which the client controls.
    """
    files = store.checkpoint_files(caller, path)
    built = request.app.state.builder.request(files)
    if built is None:
        raise Unavailable("The archive is being built")
    expires = int(time.time()) + request.app.state.archive_url_ttl
    url_path = f"/api/v1/storage/archives/{built.archive_id}"
    expires_at = dt.datetime.fromtimestamp(expires, dt.UTC)
    store.audit_archive_url(caller, files.tinker_path, path.training_run_id)
    signed = request.app.state.signer.sign(url_path, expires)
    return {
        "url": f"{public_base_url(request)}{url_path}?{signed}",
        "expires": expires_at,
        "expires_at": expires_at,
    }


def public_base_url(request: Request) -> str:
    """The configured public base URL, else ``http://<bound host>:<port>`` of this connection."""
    configured: str | None = request.app.state.public_url
    if configured:
        return configured.rstrip("/")
    host, port = request.scope["server"][:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


@router.post("/weights_info", response_model=m.WeightsInfoResponse)
def get_weights_info(caller: CallerDep, store: StoreDep, body: WeightsInfoBody) -> dict[str, Any]:
    """The model behind an accessible or published checkpoint.
    ``POST /api/v1/weights_info``"""
    return store.weights_info(caller, body.tinker_path)


@router.get("/checkpoints", response_model=m.CheckpointsListResponse)
def list_user_checkpoints(
    caller: CallerDep, store: StoreDep, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    """One page of the caller's checkpoints, newest first.
    ``GET /api/v1/checkpoints``"""
    ckpts, total = store.list_user_checkpoints(caller, limit=limit, offset=offset)
    return {
        "checkpoints": ckpts,
        "cursor": {"offset": offset, "limit": limit, "total_count": total},
    }


@router.post("/copy_weights", response_model=m.CopyWeightsResponse)
async def copy_weights(
    request: Request,
    caller: CallerDep,
    store: StoreDep,
    body: CopyWeightsBody,
    idempotent: IdempotencyDep,
    weights_access_token: Annotated[
        str | None, Header(alias="X-Tinker-Weights-Access-Token", min_length=1, max_length=4096)
    ] = None,
) -> dict[str, Any]:
    """Copy a checkpoint into a project as a new training run.
    ``POST /api/v1/copy_weights``

    The reference server has no other accounts, so the access token is accepted and unused;
    it is never logged.
    """
    tinker_path = await in_db_writer(
        request,
        store.copy_weights,
        caller,
        source_path=body.source_path,
        destination_project_id=body.destination_project_id,
        ttl_seconds=body.ttl_seconds,
        idempotent=idempotent,
    )
    return {"tinker_path": tinker_path}


@router.get(
    "/training_runs/{training_run_id}/checkpoints/external_weights/{checkpoint_name}"
    "/external_weights_urls",
    response_model=m.ExternalWeightsUrlsResponse,
)
def get_external_weights_urls(
    request: Request, caller: CallerDep, store: StoreDep, training_run_id: str, checkpoint_name: str
) -> dict[str, Any]:
    """A signed URL per file of an external checkpoint.
    ``GET /api/v1/training_runs/{id}/checkpoints/external_weights/{name}/external_weights_urls``"""
    signed = store.external_weights_urls(
        caller,
        request.app.state.signer,
        training_run_id=training_run_id,
        checkpoint_name=checkpoint_name,
        base_url=public_base_url(request),
        valid_seconds=SIGNED_URL_SECONDS,
    )
    return {"urls": signed.urls, "expires": signed.expires}

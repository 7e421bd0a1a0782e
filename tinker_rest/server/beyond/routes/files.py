"""Routes: checkpoint files and traces behind signed URLs (no API key), whole or one range."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from tinker_rest.server.app import ApiError
from tinker_rest.server.beyond import traces, weights
from tinker_rest.server.beyond.deps import DbDep, SignerDep, StoreDep
from tinker_rest.server.beyond.files import file_response

router = APIRouter(tags=["storage"])

HexId = Annotated[str, Path(pattern="^[0-9a-f]{1,64}$")]
Expires = Annotated[int, Query(ge=-(2**63), le=2**63 - 1)]
Signature = Annotated[str, Query(pattern="^[0-9a-f]{1,128}$")]
EXPIRED = "The download URL is invalid or has expired"


@router.api_route(weights.FILES_ROUTE + "/{file_set_id}", methods=["GET", "HEAD"])
def download_checkpoint_file(
    request: Request,
    store: StoreDep,
    signer: SignerDep,
    s: DbDep,
    file_set_id: HexId,
    path: Annotated[str, Query(min_length=1, max_length=4096)],
    expires: Expires,
    signature: Signature,
) -> Response:
    """One file of a checkpoint behind a signed URL.
    ``GET``/``HEAD /api/v1/storage/checkpoint_files/{file_set_id}?path=…``"""
    if not weights.verify_file_url(signer, file_set_id, path, expires, signature):
        raise ApiError(403, EXPIRED)
    target = weights.checkpoint_file(store, s, file_set_id, path)
    return file_response(request, target, "application/octet-stream")


@router.api_route(traces.TRACES_ROUTE + "/{trace_id}", methods=["GET", "HEAD"])
def download_trace(
    request: Request,
    store: StoreDep,
    signer: SignerDep,
    s: DbDep,
    trace_id: HexId,
    expires: Expires,
    signature: Signature,
) -> Response:
    """A session trace behind a signed URL. ``GET /api/v1/storage/traces/{trace_id}``"""
    if not signer.verify(f"{traces.TRACES_ROUTE}/{trace_id}", expires, signature):
        raise ApiError(403, EXPIRED)
    target = traces.ready_trace(store, s, trace_id)
    if target is None:
        raise ApiError(404, "Trace not found")
    return file_response(request, target, "application/json")

"""Signed downloads (tag ``storage``): archives, checkpoint files and traces; no API key, a
signed URL instead.

Starlette's :class:`~starlette.responses.FileResponse` serves every one of them, HEAD and
``Range``; :class:`RangeFileResponse` only turns its two plain-text refusals (a malformed
``Range``, a range outside the file) into the API's ``{"detail": ...}`` JSON that the spec
documents. It is the server's one place that serves a file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import FileResponse
from starlette.types import Message, Receive, Scope, Send

from tinker_rest.server.api.deps import store_of
from tinker_rest.server.errors import ApiError, NotFound
from tinker_rest.server.store import Store
from tinker_rest.server.store.traces import TRACES_ROUTE
from tinker_rest.server.store.weights import FILES_ROUTE, file_url_message

router = APIRouter(prefix="/api/v1/storage")

INT64 = (-(2**63), 2**63 - 1)
EXPIRED = "The download URL is invalid or has expired"
HexId = Annotated[str, Path(pattern="^[0-9a-f]{1,64}$")]
Expires = Annotated[int, Query(ge=INT64[0], le=INT64[1])]
Signature = Annotated[str, Query(pattern="^[0-9a-f]{1,128}$")]
# FileResponse's own refusals, and the detail each gets.
REFUSALS = {400: "Range: malformed", 416: "Range not satisfiable"}


class RangeFileResponse(FileResponse):
    """A file served by Starlette, whole or one range, with its Range refusals as JSON errors."""

    # The spec offers one range; a list of several gets the whole file, as RFC 9110 allows.
    max_ranges = 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused: int | None = None

        async def send_json_errors(message: Message) -> None:
            nonlocal refused
            if message["type"] == "http.response.start" and message["status"] in REFUSALS:
                refused = message["status"]
                body = json.dumps({"detail": REFUSALS[refused]}).encode()
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in (b"content-type", b"content-length")
                ]
                headers += [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]
                await send({**message, "headers": headers})
                await send({"type": "http.response.body", "body": body})
            elif refused is None:
                await send(message)

        await super().__call__(scope, receive, send_json_errors)


@dataclass(frozen=True)
class SignedUrl:
    """The ``expires`` and ``signature`` of a signed download URL, for the app it came to."""

    request: Request
    expires: int
    signature: str

    def require(self, message: str) -> Store:
        """The app's store, once the URL's signature of ``message`` is genuine and unexpired.

        Raises:
            ApiError: 403, the signature is wrong or the URL has expired.
        """
        if not self.request.app.state.signer.verify(message, self.expires, self.signature):
            raise ApiError(EXPIRED, status=403)
        return store_of(self.request)


async def signed_url(request: Request, expires: Expires, signature: Signature) -> SignedUrl:
    """The query of a signed URL, which every download here has instead of an API key."""
    return SignedUrl(request, expires, signature)


SignedUrlDep = Annotated[SignedUrl, Depends(signed_url)]


@router.api_route("/archives/{archive_id}", methods=["GET", "HEAD"])
def download_archive(
    archive_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]+$")], signed: SignedUrlDep
) -> RangeFileResponse:
    """Serve an archive behind a signed URL, whole or one byte range; no API key.
    ``GET``/``HEAD /api/v1/storage/archives/{archive_id}``"""
    store = signed.require(f"/api/v1/storage/archives/{archive_id}")
    found = store.downloadable_archive(archive_id)
    if found is None:
        raise NotFound("Archive not found")
    file_path, _ = found
    return RangeFileResponse(file_path, media_type="application/x-tar")


@router.api_route(
    FILES_ROUTE.removeprefix("/api/v1/storage") + "/{file_set_id}", methods=["GET", "HEAD"]
)
def download_checkpoint_file(
    file_set_id: HexId,
    path: Annotated[str, Query(min_length=1, max_length=4096)],
    signed: SignedUrlDep,
) -> RangeFileResponse:
    """One file of a checkpoint behind a signed URL, whole or one byte range; no API key.
    ``GET``/``HEAD /api/v1/storage/checkpoint_files/{file_set_id}?path=…``"""
    store = signed.require(file_url_message(file_set_id, path))
    target = store.checkpoint_file(file_set_id, path)
    return RangeFileResponse(target, media_type="application/octet-stream")


@router.api_route(
    TRACES_ROUTE.removeprefix("/api/v1/storage") + "/{trace_id}", methods=["GET", "HEAD"]
)
def download_trace(trace_id: HexId, signed: SignedUrlDep) -> RangeFileResponse:
    """A session trace behind a signed URL, whole or one byte range; no API key.
    ``GET``/``HEAD /api/v1/storage/traces/{trace_id}``"""
    target = signed.require(f"{TRACES_ROUTE}/{trace_id}").ready_trace(trace_id)
    if target is None:
        raise NotFound("Trace not found")
    return RangeFileResponse(target, media_type="application/json")

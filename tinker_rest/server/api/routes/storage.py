"""Signed archive downloads (tag ``storage``): no API key, a signed URL instead.

Starlette's :class:`~starlette.responses.FileResponse` serves the file, HEAD and ``Range``;
:class:`ArchiveResponse` only turns its two plain-text refusals (a malformed ``Range``, a range
outside the file) into the API's ``{"detail": ...}`` JSON that the spec documents.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import FileResponse
from starlette.types import Message, Receive, Scope, Send

from tinker_rest.server.errors import ApiError, NotFound

router = APIRouter(prefix="/api/v1/storage")

INT64 = (-(2**63), 2**63 - 1)
# FileResponse's own refusals, and the detail each gets.
REFUSALS = {400: "Range: malformed", 416: "Range not satisfiable"}


class ArchiveResponse(FileResponse):
    """A tar archive served by Starlette, with its Range refusals as JSON errors."""

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


@router.api_route("/archives/{archive_id}", methods=["GET", "HEAD"])
def download_archive(
    request: Request,
    archive_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]+$")],
    expires: Annotated[int, Query(ge=INT64[0], le=INT64[1])],
    signature: Annotated[str, Query(pattern=r"^[0-9a-f]+$")],
) -> ArchiveResponse:
    """Serve an archive behind a signed URL, whole or one byte range; no API key.
    ``GET``/``HEAD /api/v1/storage/archives/{archive_id}``"""
    path = f"/api/v1/storage/archives/{archive_id}"
    if not request.app.state.signer.verify(path, expires, signature):
        raise ApiError("The download URL is invalid or has expired", status=403)
    found = request.app.state.store.downloadable_archive(archive_id)
    if found is None:
        raise NotFound("Archive not found")
    file_path, _ = found
    return ArchiveResponse(file_path, media_type="application/x-tar")

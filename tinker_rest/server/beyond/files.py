"""Serving one file from disk, whole or one byte range, for the signed-URL downloads here.

It answers like the archive download (``app.download_archive``): the same range rules
(:func:`~tinker_rest.server.archives.parse_range`: one range, others served whole), the same
chunked reads (:func:`~tinker_rest.server.archives.iter_file`), and a JSON 416. Starlette's
``FileResponse`` also serves ranges, but answers several ranges as ``multipart/byteranges`` and
a bad one with a plain-text 416, which the spec does not describe.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from tinker_rest.server.app import ApiError
from tinker_rest.server.archives import iter_file, parse_range


def file_response(request: Request, path: Path, media_type: str) -> Response:
    """``path`` as the answer to a GET or HEAD, honouring one ``Range``."""
    size = path.stat().st_size
    headers = {"Accept-Ranges": "bytes", "Content-Type": media_type}
    if request.method == "HEAD":
        return Response(status_code=200, headers={**headers, "Content-Length": str(size)})
    wanted = parse_range(request.headers.get("range"), size)
    if wanted == "unsatisfiable":
        raise ApiError(416, "Range not satisfiable", {"Content-Range": f"bytes */{size}"})
    if wanted is None or isinstance(wanted, str):
        first, last, status = 0, size - 1, 200
    else:
        first, last = wanted
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    length = max(last - first + 1, 0)
    headers["Content-Length"] = str(length)
    return StreamingResponse(
        iter_file(path, first, length), status_code=status, headers=headers, media_type=media_type
    )

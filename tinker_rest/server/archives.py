"""Building checkpoint archives once, sharing concurrent builds, and serving byte ranges.

``GET …/checkpoints/{kind}/{name}/archive`` calls :meth:`ArchiveBuilder.request`: a built archive
is answered at once; otherwise one build starts (or the running one is joined) and the request
waits a short while for it. A build that is still running then answers 503 with ``Retry-After``.
Builds write an uncompressed tar to a temporary name and rename it into place, so a crash never
leaves a half archive that looks finished.

``GET``/``HEAD /api/v1/storage/archives/{archive_id}`` (and the checkpoint-file and trace
downloads) answer with :func:`file_response`: the file streamed from disk in chunks with
:func:`iter_file`, whole or one ``Range`` (:func:`parse_range`). Starlette's ``FileResponse``
also serves ranges, but answers several as ``multipart/byteranges`` and a bad one with a
plain-text 416, neither of which the spec describes.
"""

from __future__ import annotations

import logging
import os
import secrets
import tarfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path

from starlette.responses import JSONResponse, Response, StreamingResponse

from tinker_rest.server.store import CheckpointFiles, Store

log = logging.getLogger("tinker_rest.server")

CHUNK = 1 << 20


@dataclass(frozen=True)
class BuiltArchive:
    """A finished archive: its id (the signed URL's path segment) and size."""

    archive_id: str
    size_bytes: int


class ArchiveBuilder:
    """Builds each checkpoint's archive once; concurrent requests share one build."""

    def __init__(self, store: Store, *, wait_seconds: float = 2.0, workers: int = 2) -> None:
        self._store = store
        self._wait = wait_seconds
        self._lock = threading.Lock()
        self._running: dict[int, Future[BuiltArchive | None]] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tinker-archive")
        self.builds_started = 0

    def request(self, files: CheckpointFiles) -> BuiltArchive | None:
        """The checkpoint's archive, or None while it is still being built (answer 503).

        Raises whatever the build raised; a vanished checkpoint also gives None from the build,
        which the caller treats as not found.
        """
        ready = self._store.ready_archive(files.checkpoint_pk)
        if ready is not None:
            return BuiltArchive(*ready)
        with self._lock:
            future = self._running.get(files.checkpoint_pk)
            if future is None:
                ready = self._store.ready_archive(files.checkpoint_pk)
                if ready is not None:
                    return BuiltArchive(*ready)
                self.builds_started += 1
                future = self._pool.submit(self._build, files)
                self._running[files.checkpoint_pk] = future
        try:
            return future.result(timeout=self._wait)
        except FutureTimeout:
            return None

    def _build(self, files: CheckpointFiles) -> BuiltArchive | None:
        archive_id = secrets.token_urlsafe(18)
        target = self._store.archive_path(archive_id)
        partial = target.with_suffix(".part")
        try:
            with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
                for path in sorted(p for p in files.directory.rglob("*") if p.is_file()):
                    info = tar.gettarinfo(
                        path, arcname=path.relative_to(files.directory).as_posix()
                    )
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    info.mode = 0o644
                    with path.open("rb") as fh:
                        tar.addfile(info, fh)
            with partial.open("rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(partial, target)
            size = target.stat().st_size
            if not self._store.save_archive(files.checkpoint_pk, archive_id, size):
                target.unlink(missing_ok=True)
                return None
            log.info("built archive %s for %s (%d bytes)", archive_id, files.tinker_path, size)
            return BuiltArchive(archive_id, size)
        except BaseException:
            partial.unlink(missing_ok=True)
            target.unlink(missing_ok=True)
            raise
        finally:
            with self._lock:
                self._running.pop(files.checkpoint_pk, None)

    def close(self) -> None:
        """Wait for running builds and stop the worker threads."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """The inclusive byte range a ``Range`` header asks for.

    Returns None to serve the whole file (no header, or one this server ignores, as RFC 9110
    allows: other units, several ranges, bad syntax), ``"unsatisfiable"`` for a range outside
    the file, or ``(first, last)``.
    """
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if (
        not dash
        or not (first_text.isdigit() or first_text == "")
        or not (last_text.isdigit() or last_text == "")
    ):
        return None
    if not first_text.isascii() or not last_text.isascii():
        return None
    if first_text == "":
        if last_text == "":
            return None
        suffix = int(last_text)
        if suffix == 0:
            return "unsatisfiable"
        return max(size - suffix, 0), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None
    if first >= size:
        return "unsatisfiable"
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)


def iter_file(path: Path, first: int, length: int) -> Iterator[bytes]:
    """Yield ``length`` bytes of a file from ``first`` in 1 MiB chunks, never all at once."""
    with path.open("rb") as fh:
        fh.seek(first)
        remaining = length
        while remaining > 0:
            chunk = fh.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


def file_response(
    method: str, range_header: str | None, path: Path, media_type: str, size: int | None = None
) -> Response:
    """``path`` as the answer to a GET or HEAD, whole or the one range asked for.

    ``size`` is the file's size when the caller knows it already; else it is read from disk.
    A range outside the file is a JSON 416 with ``Content-Range: bytes */<size>``.
    """
    size = path.stat().st_size if size is None else size
    headers = {"Accept-Ranges": "bytes", "Content-Type": media_type}
    if method == "HEAD":
        return Response(status_code=200, headers={**headers, "Content-Length": str(size)})
    wanted = parse_range(range_header, size)
    if wanted == "unsatisfiable":
        return JSONResponse(
            {"detail": "Range not satisfiable"},
            status_code=416,
            headers={"Content-Range": f"bytes */{size}"},
        )
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

"""Building checkpoint archives once, sharing concurrent builds, and serving byte ranges.

``GET …/checkpoints/{kind}/{name}/archive`` calls :meth:`ArchiveBuilder.request`: a built archive
is answered at once; otherwise one build starts (or the running one is joined) and the request
waits a short while for it. A build that is still running then answers 503 with ``Retry-After``.
Builds write an uncompressed tar to a temporary name and rename it into place, so a crash never
leaves a half archive that looks finished.

``GET``/``HEAD /api/v1/storage/archives/{archive_id}`` serves the file with Starlette's
``FileResponse`` (``RangeFileResponse`` in ``api/routes/storage.py``, which also serves
checkpoint files and traces), which does HEAD and ``Range``.
"""

from __future__ import annotations

import logging
import os
import secrets
import tarfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from tinker_rest.server.store import CheckpointFiles, Store

log = logging.getLogger("tinker_rest.server")


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

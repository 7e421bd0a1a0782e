"""Downloading a checkpoint's archive: streamed, resumable, checked and safely extracted.

The steps, each of which cleans up after itself when it fails:

1. fetch: stream the archive from its signed URL into ``<target>.part``, writing each piece as
   it arrives from the socket, so memory stays flat however large the archive is. After a
   broken connection, ask again from where the file stopped (``Range: bytes=<n>-``); give up
   after a bounded number of failures in a row. The file must end up exactly as long as the
   server said.
2. extract: read the tar (plain or gzip-compressed) as a stream and write its regular files and
   directories into a fresh directory beside the target. Absolute names, ``..``, symbolic and
   hard links, device files and FIFOs are refused by this module's own checks, whatever the
   Python version's ``tarfile`` filters do.
3. put in place: rename the result to the target; an existing target is an error unless
   ``force``, which replaces it only once the new files are complete.

Progress is reported to a plain callable, ``progress(bytes_done, bytes_total_or_None)``, so this
module needs no terminal library; the command line passes one that drives a rich progress bar.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO, Protocol

import httpx

from tinker_rest._errors import (
    ArchiveIncompleteError,
    TargetExistsError,
    UnsafeArchiveError,
    status_error,
)
from tinker_rest._paths import TinkerPath

__all__ = [
    "DownloadProgress",
    "download_archive",
    "extract_archive",
    "fetch_archive",
    "target_name",
]

logger = logging.getLogger("tinker_rest")

CHUNK_SIZE = 1024 * 1024
DEFAULT_MAX_RETRIES = 5
# The credentials of the API never go to the storage host behind a signed URL.
_CREDENTIAL_HEADERS = ("x-api-key", "authorization", "cookie")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")


class DownloadProgress(Protocol):
    """Told how far a download has come: bytes written so far, and the total when known."""

    def __call__(self, done: int, total: int | None, /) -> None: ...


def target_name(tinker_path: TinkerPath) -> str:
    """The name a checkpoint's files are saved under: ``<run id>_<kind>_<name>``, made safe.

    Characters other than letters, digits, ``.``, ``_`` and ``-`` (the ``:`` of run ids, say)
    become ``-`` so the name works on every file system.
    """
    raw = f"{tinker_path.training_run_id}_{tinker_path.kind}_{tinker_path.name}"
    return _UNSAFE_NAME_CHARS.sub("-", raw).lstrip(".") or "checkpoint"


def download_archive(
    http: httpx.Client,
    get_url: Callable[[], str],
    target: Path,
    *,
    extract: bool = True,
    force: bool = False,
    progress: DownloadProgress | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    chunk_size: int = CHUNK_SIZE,
) -> Path:
    """Download an archive to ``target``: a directory of its files, or the archive itself.

    Args:
        http: the client to send the download requests with; credential headers it carries
            are removed from them.
        get_url: returns a signed URL of the archive; called again when one has expired.
        target: the directory to extract into, or with ``extract=False`` the archive's path.
        extract: extract the files (True) or keep the tar file as it came (False).
        force: replace an existing ``target``; otherwise it is an error.
        progress: called with ``(bytes_done, bytes_total)`` as the bytes arrive.
        max_retries: failed attempts in a row, without any byte gained, before giving up.
        chunk_size: bytes copied at a time while extracting.

    Returns:
        ``target``.

    Raises:
        TargetExistsError: ``target`` exists and ``force`` is false.
        ArchiveIncompleteError: the download kept failing or came out the wrong length.
        UnsafeArchiveError: the archive holds a member that is refused.
        APIStatusError: the storage server refused the download.
    """
    if (target.exists() or target.is_symlink()) and not force:
        raise TargetExistsError(f"{target} already exists (use force=True / --force to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        fetch_archive(http, get_url, part, progress=progress, max_retries=max_retries)
        if extract:
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
            staging.chmod(0o755)  # mkdtemp's 0o700 would otherwise become the target's
            try:
                extract_archive(part, staging, chunk_size=chunk_size)
                _put_in_place(staging, target)
            finally:
                _remove(staging)
        else:
            _put_in_place(part, target)
    finally:
        part.unlink(missing_ok=True)
    return target


def fetch_archive(
    http: httpx.Client,
    get_url: Callable[[], str],
    part: Path,
    *,
    progress: DownloadProgress | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
) -> int:
    """Stream an archive into ``part``, resuming after broken connections; return its size.

    Starts a fresh file. A failed attempt (a broken connection, a timeout or a 5xx) is retried
    from the byte it stopped at, with ``Range``; a server that ignores ``Range`` and answers 200
    is read again from the start. A 403 fetches a fresh URL once per attempt, as signed URLs
    expire. ``part`` is left in place either way; the caller removes it.

    Progress means holding more bytes than ever before, so a server that keeps breaking off at
    the same place, or keeps sending the start again, fails after ``max_retries`` retries.

    Raises:
        ArchiveIncompleteError: ``max_retries`` attempts in a row gained nothing, or the file's
            length differs from the length the server announced.
        APIStatusError: the server answered with an error that retrying will not fix.
    """
    url = get_url()
    failures = 0
    best = 0  # the most bytes ever held: only going past it counts as progress
    refreshed = False
    total: int | None = None
    with part.open("wb") as out:
        while True:
            done = out.tell()
            request = http.build_request("GET", url)
            for name in _CREDENTIAL_HEADERS:
                request.headers.pop(name, None)
            # Range counts stored bytes; a compressed transfer would count others.
            request.headers["Accept-Encoding"] = "identity"
            if done:
                request.headers["Range"] = f"bytes={done}-"
            try:
                response = http.send(request, stream=True, follow_redirects=True)
                try:
                    start, total, complete = _accept(response, done, total)
                    if complete:
                        break
                    if start != done:
                        out.seek(start)
                        out.truncate()
                        done = start
                    if progress is not None:
                        progress(done, total)
                    # Each piece as it arrives (no chunk_size): a buffered partial chunk would
                    # be lost at a break and fetched again.
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
                finally:
                    response.close()
            except httpx.TransportError as exc:
                failure: str = f"{type(exc).__name__}: {exc}"
            except _Retry as exc:
                failure = str(exc)
            except _Expired as exc:
                if refreshed:
                    raise exc.error from None
                url, refreshed = get_url(), True
                continue
            else:
                if total is None or done == total:
                    break
                failure = f"the body ended at byte {done} of {total}"
            failures = 0 if out.tell() > best else failures + 1
            best = max(best, out.tell())
            if failures > max_retries:
                raise ArchiveIncompleteError(
                    f"the download failed {failures} times in a row, at byte {out.tell()}"
                    f"{'' if total is None else f' of {total}'}: {failure}"
                )
            delay = min(0.25 * 2 ** max(failures - 1, 0), 5.0)
            logger.info("download interrupted at byte %d (%s); resuming", out.tell(), failure)
            time.sleep(delay)
            refreshed = False
        out.flush()
        size = out.tell()
    if total is not None and size != total:
        raise ArchiveIncompleteError(f"the archive is {size} bytes; the server announced {total}")
    return size


class _Retry(Exception):
    """An answer worth asking again for (a 5xx, or a range that does not fit)."""


class _Expired(Exception):
    """A 403 from the storage server: the signed URL has probably expired."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _accept(response: httpx.Response, done: int, total: int | None) -> tuple[int, int | None, bool]:
    """Check a download response: where its body starts, the archive's size, whether done."""
    status = response.status_code
    if status == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
        if match is None:
            raise _Retry("a 206 without a usable Content-Range")
        first, size = int(match[1]), None if match[3] == "*" else int(match[3])
        if first > done:
            raise _Retry(f"the server resumed at byte {first}, not {done}")
        return first, size if size is not None else total, False
    if status == 200:
        length = response.headers.get("content-length")
        return 0, int(length) if length and length.isdigit() else None, False
    if status == 416 and total is not None and done == total:
        return done, total, True
    if status == 403:
        response.read()
        raise _Expired(status_error(response))
    if status >= 500 or status in (408, 429):
        raise _Retry(f"HTTP {status}")
    response.read()
    raise status_error(response)


def extract_archive(archive: Path, into: Path, *, chunk_size: int = CHUNK_SIZE) -> list[str]:
    """Extract a tar (plain or gzip-compressed) into the existing directory ``into``.

    Reads the archive once, as a stream. Only regular files and directories are written, each
    strictly under ``into``; the first member that is anything else stops the extraction.

    Returns:
        The names of the files written, relative to ``into``.

    Raises:
        UnsafeArchiveError: a member has an absolute name or ``..``, or is a link, a device
            or a FIFO; or a name repeats. What was written so far stays for the caller to
            remove.
    """
    root = into.resolve()
    written: list[str] = []
    try:
        with archive.open("rb") as raw, tarfile.open(fileobj=raw, mode="r|*") as tar:
            for member in tar:
                relative = _safe_name(member)
                if relative is None:
                    continue  # the archive's root, "." or "./"
                destination = root.joinpath(*relative.parts)
                if not destination.resolve().is_relative_to(root):
                    raise UnsafeArchiveError(f"{member.name!r} would be written outside the target")
                if member.isdir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:  # pragma: no cover - a regular member always has a body
                    raise UnsafeArchiveError(f"{member.name!r} has no contents")
                _write_file(source, destination, member, chunk_size)
                written.append(str(relative))
    except tarfile.TarError as exc:
        raise UnsafeArchiveError(f"not a readable tar archive: {exc}") from exc
    return written


def _safe_name(member: tarfile.TarInfo) -> PurePosixPath | None:
    """The member's path relative to the target, after refusing every unsafe kind of member."""
    name = member.name
    if member.issym() or member.islnk():
        raise UnsafeArchiveError(f"{name!r} is a link (to {member.linkname!r}); links are refused")
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        raise UnsafeArchiveError(f"{name!r} is a device or FIFO; only files are extracted")
    if not (member.isreg() or member.isdir()):
        raise UnsafeArchiveError(f"{name!r} is not a regular file or directory")
    if "\x00" in name or "\\" in name:
        raise UnsafeArchiveError(f"{name!r} has a character not allowed in a member name")
    if name.startswith("/") or PurePosixPath(name).is_absolute() or re.match(r"[A-Za-z]:", name):
        raise UnsafeArchiveError(f"{name!r} is an absolute path")
    parts = [part for part in PurePosixPath(name).parts if part != "."]
    if ".." in parts:
        raise UnsafeArchiveError(f"{name!r} contains '..'")
    if not parts:
        if member.isdir():
            return None
        raise UnsafeArchiveError(f"{name!r} is not a file name")
    return PurePosixPath(*parts)


def _write_file(source: IO[bytes], destination: Path, member: tarfile.TarInfo, chunk: int) -> None:
    # "x": a name that repeats, or that an earlier member made a directory, is an error, never
    # an overwrite; and no special bits: setuid and the like are never carried over.
    try:
        with destination.open("xb") as out:
            shutil.copyfileobj(source, out, chunk)
    except FileExistsError:
        raise UnsafeArchiveError(f"{member.name!r} appears twice in the archive") from None
    except IsADirectoryError:
        raise UnsafeArchiveError(f"{member.name!r} is both a directory and a file") from None
    destination.chmod(0o755 if member.mode & 0o100 else 0o644)


def _put_in_place(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; an existing target goes only once the rename is done."""
    old: Path | None = None
    if target.exists() or target.is_symlink():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        target.rename(old)
    try:
        source.rename(target)
    except OSError:
        if old is not None:
            old.rename(target)
        raise
    if old is not None:
        _remove(old)


def _remove(path: Path) -> None:
    """Remove a file or a directory tree, if there."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()

"""Downloading a checkpoint's archive: streamed, resumable across runs, checked, safely extracted.

The steps, each of which cleans up after itself when it fails:

1. fetch: stream the archive from its signed URL into ``<target>.part``, writing each piece as
   it arrives from the socket, so memory stays flat however large the archive is. Beside it,
   ``<target>.part.json`` records which archive the bytes belong to (:class:`ArchiveIdentity`:
   the server's ``ETag`` or ``Last-Modified``, the URL without its signature, the size).
   After a broken connection or a stall, and in a later run after Ctrl-C or any other failure,
   the download asks for the rest (``Range: bytes=<n>-``, with ``If-Range`` when the server
   gave a validator) and appends only when the answer is the same archive; anything else (a
   refreshed URL serving other bytes, say) starts again from zero: bytes of two archives are
   never spliced. Retries follow :class:`~tinker_rest._retry.RetryPolicy`; the policy's
   ``max_retries`` bounds the failures in a row that gain no byte. The ``.part`` is locked
   (``flock``) while in use, so a second run of the same download is refused, not spliced.
2. extract: read the tar (plain or gzip-compressed) as a stream and write its regular files and
   directories into a fresh directory beside the target. Refused, with
   :class:`UnsafeArchiveError` and nothing left behind: absolute names, ``..``, links,
   devices, FIFOs, sparse members, names too long for a file system, names that collide (a
   file then ``a/b`` under it, a name twice), more than ``max_members`` members, and more than
   ``max_unpacked_bytes`` in all (by default :func:`unpacked_limit` of the archive's size).
   The size limit is checked against each member's header before a byte of it is written.
3. put in place: rename the result to the target; an existing target is an error unless
   ``force``, which replaces it only once the new files are complete.

Progress goes to two plain callables, so this module needs no terminal library:
``progress(done, total_or_None)`` with bytes, and ``on_event(DownloadEvent)`` when a phase
starts (waiting for the archive, downloading, extracting) or a retry is coming.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import gzip
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO, Literal, Protocol

import httpx

from tinker_rest._errors import (
    ArchiveIncompleteError,
    DownloadError,
    TargetExistsError,
    UnsafeArchiveError,
    status_error,
)
from tinker_rest._paths import TinkerPath
from tinker_rest._retry import RetryPolicy

__all__ = [
    "DOWNLOAD_RETRY_POLICY",
    "ArchiveIdentity",
    "DownloadEvent",
    "DownloadProgress",
    "download_archive",
    "extract_archive",
    "fetch_archive",
    "target_name",
    "unpacked_limit",
]

logger = logging.getLogger("tinker_rest")

CHUNK_SIZE = 1024 * 1024
# Failures in a row without a byte gained; the waits come from RetryPolicy.delay.
DOWNLOAD_RETRY_POLICY = RetryPolicy(max_retries=5, initial_delay=0.25, max_delay=5.0)
# A read that brings no byte for this long is a stall: the connection is dropped and the
# download resumes on a new one, saying so.
DEFAULT_STALL_TIMEOUT = 30.0
# Unpacked size: a checkpoint's weights barely compress (about 1.1x under gzip), so 4x the
# archive is generous; the floor keeps tiny archives of small text files working.
UNPACK_RATIO = 4
UNPACK_FLOOR = 16 * 1024 * 1024
# A checkpoint holds a handful of files; ten thousand is far beyond any real one.
MAX_MEMBERS = 10_000
# File systems refuse longer names (NAME_MAX, in bytes) and paths (a safe PATH_MAX share).
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024
# The credentials of the API never go to the storage host behind a signed URL.
_CREDENTIAL_HEADERS = ("x-api-key", "authorization", "cookie")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")

Phase = Literal["waiting", "downloading", "retrying", "extracting"]


class DownloadProgress(Protocol):
    """Told how far the current phase has come: bytes so far, and the total when known."""

    def __call__(self, done: int, total: int | None, /) -> None: ...


@dataclasses.dataclass(frozen=True)
class DownloadEvent:
    """A phase of a download starting, or a retry coming.

    Attributes:
        phase: ``waiting`` (for the service to build the archive), ``downloading``,
            ``retrying`` (after a stall or a broken connection), ``extracting``.
        message: one line for a person, e.g. ``stalled for 30 s at byte 1048576; retrying``.
        total: the bytes the phase will count up to, when known.
    """

    phase: Phase
    message: str
    total: int | None = None


EventSink = Callable[[DownloadEvent], None]


@dataclasses.dataclass(frozen=True)
class ArchiveIdentity:
    """What tells one archive from another, so bytes of two are never joined.

    Attributes:
        location: the URL without its query (the signature changes when a URL is refreshed;
            the object it names does not).
        size: the archive's length in bytes, when the server said it.
        etag: the server's ``ETag``, when it sends one.
        last_modified: the server's ``Last-Modified``, when it sends one.
    """

    location: str
    size: int | None
    etag: str | None = None
    last_modified: str | None = None

    @classmethod
    def of(cls, response: httpx.Response, size: int | None) -> ArchiveIdentity:
        """The identity of the archive a response serves."""
        url = response.request.url
        return cls(
            location=str(url.copy_with(query=None, fragment=None)),
            size=size,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
        )

    def same_archive(self, other: ArchiveIdentity) -> bool:
        """Whether both name the same bytes: equal ETags when either has one, else the same
        location, size and (when both have one) Last-Modified."""
        if self.size != other.size:
            return False
        if self.etag is not None or other.etag is not None:
            return self.etag == other.etag
        if self.last_modified and other.last_modified and self.last_modified != other.last_modified:
            return False
        return self.location == other.location

    def if_range(self) -> str | None:
        """The validator to send in ``If-Range``: a strong ETag, else Last-Modified."""
        if self.etag is not None and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified


def target_name(tinker_path: TinkerPath) -> str:
    """The name a checkpoint's files are saved under: ``<run id>_<kind>_<name>``, made safe.

    Characters other than letters, digits, ``.``, ``_`` and ``-`` (the ``:`` of run ids, say)
    become ``-`` so the name works on every file system.
    """
    raw = f"{tinker_path.training_run_id}_{tinker_path.kind}_{tinker_path.name}"
    return _UNSAFE_NAME_CHARS.sub("-", raw).lstrip(".") or "checkpoint"


def unpacked_limit(archive_size: int) -> int:
    """The default cap on the bytes an archive of this size may unpack to."""
    return max(UNPACK_RATIO * archive_size, UNPACK_FLOOR)


def download_archive(
    http: httpx.Client,
    get_url: Callable[[], str],
    target: Path,
    *,
    extract: bool = True,
    force: bool = False,
    progress: DownloadProgress | None = None,
    on_event: EventSink | None = None,
    retry: RetryPolicy = DOWNLOAD_RETRY_POLICY,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT,
    max_unpacked_bytes: int | None = None,
    max_members: int = MAX_MEMBERS,
    chunk_size: int = CHUNK_SIZE,
) -> Path:
    """Download an archive to ``target``: a directory of its files, or the archive itself.

    A ``<target>.part`` left by an earlier run (Ctrl-C, a lost connection) is resumed when the
    server still serves the same archive, and started afresh otherwise.

    Args:
        http: the client to send the download requests with; credential headers it carries
            are removed from them.
        get_url: returns a signed URL of the archive; called again when one has expired.
        target: the directory to extract into, or with ``extract=False`` the archive's path.
        extract: extract the files (True) or keep the tar file as it came (False).
        force: replace an existing ``target``; otherwise it is an error.
        progress: called with ``(done, total)`` bytes as the current phase advances.
        on_event: called as each phase starts and before each retry.
        retry: which answers are retried, the waits, and the failures in a row allowed.
        stall_timeout: seconds without a byte before the connection counts as stalled.
        max_unpacked_bytes: the most bytes extraction may write; by default
            :func:`unpacked_limit` of the archive's size.
        max_members: the most members the archive may hold.
        chunk_size: bytes copied at a time while extracting.

    Returns:
        ``target``.

    Raises:
        TargetExistsError: ``target`` exists and ``force`` is false.
        ArchiveIncompleteError: the download kept failing (the ``.part`` stays, to resume)
            or came out the wrong length (it does not).
        UnsafeArchiveError: the archive is refused; nothing of it is left behind.
        APIStatusError: the storage server refused the download.
    """
    if (target.exists() or target.is_symlink()) and not force:
        raise TargetExistsError(f"{target} already exists (use force=True / --force to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    emit = on_event or (lambda event: None)
    emit(DownloadEvent("waiting", "Waiting for the archive to be built"))
    size = fetch_archive(
        http,
        get_url,
        part,
        progress=progress,
        on_event=emit,
        retry=retry,
        stall_timeout=stall_timeout,
    )
    if not extract:
        _put_in_place(part, target)
        _discard(part)
        return target
    limit = unpacked_limit(size) if max_unpacked_bytes is None else max_unpacked_bytes
    emit(DownloadEvent("extracting", f"Extracting into {target}", size))
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp's 0o700 would otherwise become the target's
    try:
        extract_archive(
            part,
            staging,
            chunk_size=chunk_size,
            max_unpacked_bytes=limit,
            max_members=max_members,
            progress=progress,
        )
        _put_in_place(staging, target)
    except UnsafeArchiveError:
        _discard(part)  # an unsafe archive is not worth resuming: nothing stays
        raise
    finally:
        _remove(staging)
    _discard(part)
    return target


def fetch_archive(
    http: httpx.Client,
    get_url: Callable[[], str],
    part: Path,
    *,
    progress: DownloadProgress | None = None,
    on_event: EventSink | None = None,
    retry: RetryPolicy = DOWNLOAD_RETRY_POLICY,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT,
) -> int:
    """Stream an archive into ``part``, resuming what is there when it is the same archive.

    A failed attempt (a broken connection, a stall, an answer ``retry`` says is worth another)
    is retried from the byte it stopped at. A 403 fetches a fresh URL once per attempt, as
    signed URLs expire. An answer from another archive (another ETag, location or size), or a
    200 to a ranged request, truncates ``part`` and starts from zero.

    Only going past the most bytes ever held counts as progress, so a server that keeps
    breaking off at the same place, or keeps sending the start again, fails after
    ``retry.max_retries`` retries. On any failure ``part`` and its record stay for the next
    run, unless they hold nothing, or the archive came out the wrong length.

    Returns:
        The archive's size in bytes.

    Raises:
        ArchiveIncompleteError: ``retry.max_retries`` retries in a row gained nothing, or the
            file's length differs from the length the server announced.
        DownloadError: another process is downloading into ``part`` right now.
        APIStatusError: the server answered with an error that retrying will not fix.
    """
    emit = on_event or (lambda event: None)
    record = _record_of(part)
    known = _read_record(record) if part.exists() else None
    failures = 0
    best = 0  # the most bytes ever held: only going past it counts as progress
    refreshed = False
    started = False
    timeout = httpx.Timeout(stall_timeout, connect=min(stall_timeout, 10.0))
    out = _open_exclusively(part)
    try:
        if known is None:
            out.truncate(0)
        out.seek(0, os.SEEK_END)
        url = get_url()
        while True:
            done = out.tell()
            request = _request(http, url, timeout, done, known)
            response: httpx.Response | None = None
            try:
                response = http.send(request, stream=True, follow_redirects=True)
                try:
                    start, identity, complete = _accept(response, done, known, retry)
                    if known is None or not identity.same_archive(known):
                        if start != 0:
                            # Another archive answered a ranged request: never join the two.
                            logger.info("%s serves another archive; starting again", url)
                            _truncate(out, 0)
                            known = None
                            _remove(record)
                            continue
                        known = identity
                        _write_record(record, identity)
                    if complete:
                        break
                    if start != done:
                        _truncate(out, start)
                        done = start
                    if not started:
                        resuming = f" (resuming at byte {done})" if done else ""
                        emit(DownloadEvent("downloading", f"Downloading{resuming}", known.size))
                        started = True
                    if progress is not None:
                        progress(done, known.size)
                    # Each piece as it arrives (no chunk_size): a buffered partial chunk would
                    # be lost at a break and fetched again.
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, known.size)
                finally:
                    response.close()
            except httpx.TimeoutException:
                failure = f"stalled for {stall_timeout:g} s without a byte"
            except httpx.TransportError as exc:
                failure = f"the connection broke ({type(exc).__name__}: {exc})"
            except _Retry as exc:
                failure = str(exc)
            except _Expired as exc:
                if refreshed:
                    raise exc.error from None
                url, refreshed = get_url(), True
                continue
            else:
                if known.size is None or done == known.size:
                    break
                failure = f"the body ended at byte {done} of {known.size}"
            held = out.tell()
            failures = 0 if held > best else failures + 1
            best = max(best, held)
            total = known.size if known is not None else None
            where = f"at byte {held}" + ("" if total is None else f" of {total}")
            if failures > retry.max_retries:
                raise ArchiveIncompleteError(
                    f"the download failed {failures} times in a row, {where}: {failure}"
                )
            wait = retry.delay(max(failures - 1, 0), response)
            message = f"{failure} {where}; retrying in {wait:.1f} s"
            logger.info("download: %s", message)
            emit(DownloadEvent("retrying", message, total))
            time.sleep(wait)
            refreshed = False
        out.flush()
        size = out.tell()
    except BaseException:
        out.close()
        if part.stat().st_size == 0:
            _discard(part)  # nothing worth resuming
        raise
    out.close()
    if known is not None and known.size is not None and size != known.size:
        _discard(part)
        raise ArchiveIncompleteError(
            f"the archive is {size} bytes; the server announced {known.size}"
        )
    return size


def _open_exclusively(part: Path) -> IO[bytes]:
    """Open ``part`` for reading and writing, without truncating it, and lock it.

    Two runs of the same download would otherwise append to one file. The lock is the
    operating system's (``flock``), so it goes when the process ends, however it ends;
    where ``fcntl`` does not exist (Windows) the file is not locked.

    Raises:
        DownloadError: another process is downloading into ``part``.
    """
    out = os.fdopen(os.open(part, os.O_RDWR | os.O_CREAT, 0o644), "r+b")
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return out
    try:
        fcntl.flock(out.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        out.close()
        raise DownloadError(
            f"another download into {part} is running; wait for it to finish"
        ) from None
    return out


def _request(
    http: httpx.Client,
    url: str,
    timeout: httpx.Timeout,
    done: int,
    known: ArchiveIdentity | None,
) -> httpx.Request:
    """A GET of the archive: from byte ``done`` when resuming, never with the API's keys."""
    request = http.build_request("GET", url, timeout=timeout)
    for name in _CREDENTIAL_HEADERS:
        request.headers.pop(name, None)
    # Range counts stored bytes; a compressed transfer would count others.
    request.headers["Accept-Encoding"] = "identity"
    if done and known is not None:
        request.headers["Range"] = f"bytes={done}-"
        validator = known.if_range()
        if validator is not None:
            request.headers["If-Range"] = validator
    return request


class _Retry(Exception):
    """An answer worth asking again for (a 5xx, or a range that does not fit)."""


class _Expired(Exception):
    """A 403 from the storage server: the signed URL has probably expired."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _accept(
    response: httpx.Response, done: int, known: ArchiveIdentity | None, retry: RetryPolicy
) -> tuple[int, ArchiveIdentity, bool]:
    """Check a download response: where its body starts, what it is, whether all is here."""
    status = response.status_code
    if status == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
        if match is None:
            raise _Retry("a 206 without a usable Content-Range")
        first = int(match[1])
        size = None if match[3] == "*" else int(match[3])
        if first > done:
            raise _Retry(f"the server resumed at byte {first}, not {done}")
        return first, ArchiveIdentity.of(response, size), False
    if status == 200:
        length = response.headers.get("content-length")
        size = int(length) if length and length.isdigit() else None
        return 0, ArchiveIdentity.of(response, size), False
    if status == 416 and done:
        # Nothing after byte `done`: complete when the part is exactly this archive (a run
        # stopped after the last byte); otherwise it is another archive, to start again.
        # Content-Range says the size, to check it is still this archive.
        unsatisfied = response.headers.get("content-range", "").rpartition("/")[2]
        size = int(unsatisfied) if unsatisfied.isdigit() else None
        identity = ArchiveIdentity.of(response, size)
        complete = known is not None and done == size and identity.same_archive(known)
        if not complete:
            identity = dataclasses.replace(identity, size=-1)  # a size no archive has
        return done, identity, complete
    if status == 403:
        response.read()
        raise _Expired(status_error(response))
    if retry.should_retry(response):
        raise _Retry(f"HTTP {status}")
    response.read()
    raise status_error(response)


def _truncate(out: IO[bytes], at: int) -> None:
    out.seek(at)
    out.truncate()


def keep_as_file(part: Path) -> None:
    """Keep a complete ``part`` as a plain file: forget the record of which archive it holds."""
    _remove(_record_of(part))


def _record_of(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _read_record(record: Path) -> ArchiveIdentity | None:
    """The identity saved beside a ``.part``; None when missing or unreadable (start afresh)."""
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        return ArchiveIdentity(
            location=str(data["location"]),
            size=None if data["size"] is None else int(data["size"]),
            etag=data.get("etag"),
            last_modified=data.get("last_modified"),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_record(record: Path, identity: ArchiveIdentity) -> None:
    temporary = record.with_name(record.name + ".tmp")
    temporary.write_text(json.dumps(dataclasses.asdict(identity)), encoding="utf-8")
    os.replace(temporary, record)


def _discard(part: Path) -> None:
    """Remove a ``.part`` and its record."""
    _remove(part)
    _remove(_record_of(part))


def extract_archive(
    archive: Path,
    into: Path,
    *,
    chunk_size: int = CHUNK_SIZE,
    max_unpacked_bytes: int | None = None,
    max_members: int = MAX_MEMBERS,
    progress: DownloadProgress | None = None,
) -> list[str]:
    """Extract a tar (plain or gzip-compressed) into the existing directory ``into``.

    Reads the archive once, as a stream. Only regular files and directories are written, each
    strictly under ``into``; the first member that is anything else stops the extraction.

    Args:
        archive: the tar file.
        into: an existing, empty directory.
        chunk_size: bytes copied at a time.
        max_unpacked_bytes: the most bytes all files together may hold; by default
            :func:`unpacked_limit` of the archive's size.
        max_members: the most members the archive may hold.
        progress: called with ``(archive bytes read, archive size)``.

    Returns:
        The names of the files written, relative to ``into``.

    Raises:
        UnsafeArchiveError: a member is refused (see the module docstring), or the archive is
            too big when unpacked or not a tar at all. What was written so far stays for the
            caller to remove.
    """
    root = into.resolve()
    archive_size = archive.stat().st_size
    limit = unpacked_limit(archive_size) if max_unpacked_bytes is None else max_unpacked_bytes
    written: list[str] = []
    unpacked = 0
    try:
        with archive.open("rb") as raw, tarfile.open(fileobj=raw, mode="r|*") as tar:
            for count, member in enumerate(tar, start=1):
                if count > max_members:
                    raise UnsafeArchiveError(f"the archive holds more than {max_members} members")
                relative = _safe_name(member)
                if relative is None:
                    continue  # the archive's root, "." or "./"
                unpacked += member.size if member.isreg() else 0
                if unpacked > limit:
                    raise UnsafeArchiveError(
                        f"the archive unpacks to more than {limit} bytes (at {member.name!r}); "
                        "raise the limit if it is expected"
                    )
                _extract_member(tar, member, root, relative, chunk_size)
                if member.isreg():
                    written.append(str(relative))
                if progress is not None:
                    progress(min(raw.tell(), archive_size), archive_size)
    except tarfile.TarError as exc:
        raise UnsafeArchiveError(f"not a readable tar archive: {exc}") from exc
    except (EOFError, gzip.BadGzipFile) as exc:
        raise UnsafeArchiveError(f"not a readable tar archive: {exc}") from exc
    return written


def _extract_member(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    root: Path,
    relative: PurePosixPath,
    chunk_size: int,
) -> None:
    """Write one member under ``root``; a collision or an unwritable name is unsafe."""
    destination = root.joinpath(*relative.parts)
    try:
        if not destination.resolve().is_relative_to(root):
            raise UnsafeArchiveError(f"{member.name!r} would be written outside the target")
        if member.isdir():
            destination.mkdir(parents=True, exist_ok=True)
            return
        destination.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        if source is None:  # pragma: no cover - a regular member always has a body
            raise UnsafeArchiveError(f"{member.name!r} has no contents")
        # "x": a name that repeats, or that an earlier member made a directory, is an error,
        # never an overwrite; and no special bits: setuid and the like are never carried over.
        with destination.open("xb") as out:
            shutil.copyfileobj(source, out, chunk_size)
        destination.chmod(0o755 if member.mode & 0o100 else 0o644)
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        raise UnsafeArchiveError(
            f"{member.name!r} collides with an earlier member (a name twice, or a file "
            "where a directory should be)"
        ) from None
    except OSError as exc:
        if exc.errno in (errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL):
            raise UnsafeArchiveError(
                f"{member.name!r} cannot be a file name here: {exc.strerror}"
            ) from None
        raise


def _safe_name(member: tarfile.TarInfo) -> PurePosixPath | None:
    """The member's path relative to the target, after refusing every unsafe kind of member."""
    name = member.name
    if member.issym() or member.islnk():
        raise UnsafeArchiveError(f"{name!r} is a link (to {member.linkname!r}); links are refused")
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        raise UnsafeArchiveError(f"{name!r} is a device or FIFO; only files are extracted")
    if member.issparse() or member.type == tarfile.GNUTYPE_SPARSE:
        raise UnsafeArchiveError(f"{name!r} is a sparse file; sparse members are refused")
    if not (member.isreg() or member.isdir()):
        raise UnsafeArchiveError(f"{name!r} is not a regular file or directory")
    if "\x00" in name or "\\" in name:
        raise UnsafeArchiveError(f"{name!r} has a character not allowed in a member name")
    if name.startswith("/") or PurePosixPath(name).is_absolute() or re.match(r"[A-Za-z]:", name):
        raise UnsafeArchiveError(f"{name!r} is an absolute path")
    parts = [part for part in PurePosixPath(name).parts if part != "."]
    if ".." in parts:
        raise UnsafeArchiveError(f"{name!r} contains '..'")
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for part in parts):
        raise UnsafeArchiveError(f"{name[:80]!r}... has a name longer than {MAX_NAME_BYTES} bytes")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise UnsafeArchiveError(f"{name[:80]!r}... is longer than {MAX_PATH_BYTES} bytes")
    if not parts:
        if member.isdir():
            return None
        raise UnsafeArchiveError(f"{name!r} is not a file name")
    return PurePosixPath(*parts)


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

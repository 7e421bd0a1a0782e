"""Downloading an ``external_weights`` checkpoint file by file from its signed URLs.

``get_external_weights_urls`` gives one signed URL per relative file path. Each file streams
into a staging directory beside the target with :func:`tinker_rest._download.fetch_archive`
(resumed with ``Range`` after a broken connection, its length checked against what the server
announced); the set of URLs is asked for again when it is within :data:`RESIGN_MARGIN` of
``expires``. A relative path that is absolute, has ``..`` or ``.`` or empty segments, a
backslash, a drive or a NUL is refused before anything is written. The directory appears at
the target only once every file is complete.
"""

from __future__ import annotations

import datetime
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import httpx

from tinker_rest._download import (
    DOWNLOAD_RETRY_POLICY,
    DownloadProgress,
    _put_in_place,
    _remove,
    fetch_archive,
    keep_as_file,
)
from tinker_rest._errors import ArchiveIncompleteError, TargetExistsError, UnsafeArchiveError
from tinker_rest._retry import RetryPolicy
from tinker_rest.types import ExternalWeightsUrlsResponse

__all__ = ["RESIGN_MARGIN", "download_external_weights", "safe_relative_path"]

# As the official CLI: URLs this close to expiring are signed again before use.
RESIGN_MARGIN = datetime.timedelta(minutes=5)
# The most files one checkpoint may hold (a PEFT adapter has two or three).
MAX_FILES = 1000


def safe_relative_path(relative: str) -> PurePosixPath:
    """``relative`` as a path that stays inside the directory it is joined to, else raise.

    Raises:
        UnsafeArchiveError: the path could leave the checkpoint's directory, or is empty.
    """
    path = PurePosixPath(relative)
    segments = relative.split("/")
    if (
        not relative
        or path.is_absolute()
        or "\\" in relative
        or "\x00" in relative
        or ":" in segments[0]
        or any(segment in ("", ".", "..") for segment in segments)
    ):
        raise UnsafeArchiveError(f"refusing the file path {relative!r}: it could leave the target")
    return path


def download_external_weights(
    http: httpx.Client,
    get_urls: Callable[[], ExternalWeightsUrlsResponse],
    target: Path,
    *,
    force: bool = False,
    progress: DownloadProgress | None = None,
    retry: RetryPolicy = DOWNLOAD_RETRY_POLICY,
    now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
) -> Path:
    """Download every file of an external checkpoint into the directory ``target``.

    Args:
        http: the client for the downloads; credential headers it carries are not sent.
        get_urls: returns fresh signed URLs (``get_external_weights_urls``).
        target: the directory to create.
        force: replace an existing ``target``; otherwise it is an error.
        progress: called with ``(bytes_done, None)`` across all files as bytes arrive.
        retry: the retry policy per file (failed attempts in a row without a byte gained).
        now: the clock, for deciding when URLs need signing again.

    Returns:
        ``target``.

    Raises:
        TargetExistsError: ``target`` exists and ``force`` is false.
        UnsafeArchiveError: a relative path could leave ``target``.
        ArchiveIncompleteError: a file kept failing, came out the wrong length, or vanished
            from the listing.
        APIStatusError: the storage server refused a download.
    """
    if (target.exists() or target.is_symlink()) and not force:
        raise TargetExistsError(f"{target} already exists (use force=True / --force to replace it)")
    signed = get_urls()
    if len(signed.urls.additional_properties) > MAX_FILES:
        raise ArchiveIncompleteError(f"the checkpoint lists more than {MAX_FILES} files")
    files = {
        relative: safe_relative_path(relative) for relative in sorted(signed.urls.additional_keys)
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp's 0o700 would otherwise become the target's
    done_before = 0
    try:
        for relative, path in files.items():

            def url(relative: str = relative) -> str:
                nonlocal signed
                if signed.expires - now() < RESIGN_MARGIN:
                    signed = get_urls()
                if relative not in signed.urls:
                    raise ArchiveIncompleteError(f"{relative} is no longer in the checkpoint")
                return signed.urls[relative]

            def file_progress(done: int, total: int | None, base: int = done_before) -> None:
                if progress is not None:
                    progress(base + done, None)

            destination = staging.joinpath(*path.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            done_before += fetch_archive(
                http, url, destination, progress=file_progress, retry=retry
            )
            keep_as_file(destination)
        _put_in_place(staging, target)
    finally:
        _remove(staging)
    return target

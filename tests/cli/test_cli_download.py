"""Downloads that survive anything: cut connections, stalls, Ctrl-C and a resume in a later run,
refreshed URLs serving other bytes, and hostile archives.

A real server cannot be made to drop a connection, stall, switch archives behind a refreshed
URL or serve a hostile tar on demand, so these tests serve archives from tiny HTTP servers of
their own on 127.0.0.1 (which really do cut the TCP connection) or through
``httpx.MockTransport``. The SIGINT test downloads from the reference server, in a second
process, through a relay that only slows the bytes down; a third process resumes it.
"""

from __future__ import annotations

import dataclasses
import datetime
import gzip
import http.server
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tinker_rest import (
    APIStatusError,
    ArchiveIncompleteError,
    DownloadError,
    RestClient,
    TargetExistsError,
    UnsafeArchiveError,
)
from tinker_rest._download import DownloadEvent, download_archive, extract_archive
from tinker_rest._retry import RetryPolicy

PAYLOAD = {
    "adapter_model.safetensors": os.urandom(300_000),
    "config/adapter_config.json": b'{"r": 32}',
}


def make_tar(files: dict[str, bytes], *, gz: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# -- a tiny archive server that can cut connections -----------------------------------------


@dataclasses.dataclass
class Plan:
    """What the archive server does: its bytes, where to cut each answer, whether Range works."""

    data: bytes
    cuts: list[int | None] = dataclasses.field(default_factory=list)
    honour_range: bool = True
    requests: list[dict[str, str]] = dataclasses.field(default_factory=list)


class ArchiveHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ArchiveServer

    def do_GET(self) -> None:
        plan = self.server.plan
        plan.requests.append({k.lower(): v for k, v in self.headers.items()})
        data, start = plan.data, 0
        wanted = self.headers.get("Range")
        if wanted and plan.honour_range:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/x-tar")
        self.end_headers()
        cut = plan.cuts.pop(0) if plan.cuts else None
        if cut is None:
            self.wfile.write(body)
            return
        # Send part of the body, then drop the connection mid-response.
        self.wfile.write(body[:cut])
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: object) -> None:
        pass


class ArchiveServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, plan: Plan) -> None:
        super().__init__(("127.0.0.1", 0), ArchiveHandler)
        self.plan = plan

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/archive.tar?signature=abc"


@pytest.fixture
def serve() -> Iterator[list[ArchiveServer]]:
    servers: list[ArchiveServer] = []
    threads: list[threading.Thread] = []
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()
    for thread in threads:
        thread.join()


def start(servers: list[ArchiveServer], plan: Plan) -> ArchiveServer:
    server = ArchiveServer(plan)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)
    return server


# -- resuming --------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["tar", "tar.gz"])
def test_cut_connection_resumes_with_range(
    serve: list[ArchiveServer], tmp_path: Path, gz: bool
) -> None:
    data = make_tar(PAYLOAD, gz=gz)
    half = len(data) // 2
    server = start(serve, Plan(data, cuts=[half]))
    seen: list[tuple[int, int | None]] = []
    target = tmp_path / "out" / "ckpt"
    with httpx.Client() as http:
        where = download_archive(
            http,
            lambda: server.url,
            target,
            progress=lambda done, total: seen.append((done, total)),
            chunk_size=16 * 1024,
        )
    assert where == target
    assert tree(target) == PAYLOAD
    assert target.stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in target.parent.iterdir()) == ["ckpt"]  # no .part, no staging
    first, second = server.plan.requests
    assert "range" not in first
    resumed_at = int(second["range"].removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_at <= half
    assert seen[-1] == (len(data), len(data))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_cut_connection_without_extracting_keeps_identical_bytes(
    serve: list[ArchiveServer], tmp_path: Path
) -> None:
    data = make_tar(PAYLOAD)
    cuts: list[int | None] = [1000, 50_000, 7]  # three cuts, each after some progress
    server = start(serve, Plan(data, cuts=cuts))
    with httpx.Client() as http:
        where = download_archive(http, lambda: server.url, tmp_path / "a.tar", extract=False)
    assert where.read_bytes() == data
    assert len(server.plan.requests) == 4


def test_server_ignoring_range_restarts_from_zero(
    serve: list[ArchiveServer], tmp_path: Path
) -> None:
    data = make_tar(PAYLOAD)
    server = start(serve, Plan(data, cuts=[len(data) // 3], honour_range=False))
    with httpx.Client() as http:
        where = download_archive(http, lambda: server.url, tmp_path / "a.tar", extract=False)
    assert where.read_bytes() == data


def test_gives_up_after_bounded_failures_and_removes_an_empty_part(
    serve: list[ArchiveServer], tmp_path: Path
) -> None:
    data = make_tar(PAYLOAD)
    # Every answer is cut before its first byte: no progress, ever.
    server = start(serve, Plan(data, cuts=[0] * 10))
    policy = RetryPolicy(max_retries=2, initial_delay=0.01)
    with httpx.Client() as http, pytest.raises(ArchiveIncompleteError, match="failed 3 times"):
        download_archive(http, lambda: server.url, tmp_path / "ckpt", retry=policy)
    assert len(server.plan.requests) == 3
    assert list(tmp_path.iterdir()) == []  # a .part holding nothing is not worth keeping


def test_existing_target_is_an_error_unless_forced(
    serve: list[ArchiveServer], tmp_path: Path
) -> None:
    server = start(serve, Plan(make_tar(PAYLOAD)))
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "old.bin").write_bytes(b"old")
    with httpx.Client() as http:
        with pytest.raises(TargetExistsError):
            download_archive(http, lambda: server.url, target)
        assert tree(target) == {"old.bin": b"old"}
        assert server.plan.requests == []  # refused before any byte was fetched
        download_archive(http, lambda: server.url, target, force=True)
    assert tree(target) == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


# -- through RestClient, with httpx.MockTransport -------------------------------------------


class CutStream(httpx.SyncByteStream):
    """A body that breaks off with a read error after some bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self.data
        raise httpx.ReadError("connection reset by peer")


def test_rest_client_download_resumes_and_never_sends_the_key(tmp_path: Path) -> None:
    data = make_tar(PAYLOAD, gz=True)
    half = len(data) // 2
    storage: list[httpx.Request] = []
    expires = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=15)).isoformat()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/archive"):
            assert request.headers["x-api-key"] == "tml-test"
            url = "https://storage.test/archives/a1?signature=abc"
            return httpx.Response(200, json={"url": url, "expires": expires})
        storage.append(request)
        if "range" not in request.headers:
            return httpx.Response(
                200, headers={"Content-Length": str(len(data))}, stream=CutStream(data[:half])
            )
        start = int(request.headers["range"].removeprefix("bytes=").split("-")[0])
        return httpx.Response(
            206,
            headers={"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"},
            content=data[start:],
        )

    client = RestClient("http://tinker.test", "tml-test", transport=httpx.MockTransport(handler))
    with client:
        where = client.download_checkpoint("tinker://sess-1:train:0/weights/0001", tmp_path)
    assert where == tmp_path / "sess-1-train-0_weights_0001"
    assert tree(where) == PAYLOAD
    assert len(storage) == 2 and storage[1].headers["range"] == f"bytes={half}-"
    for request in storage:
        assert "x-api-key" not in request.headers and "authorization" not in request.headers


def test_rest_client_download_async_and_no_extract(tmp_path: Path) -> None:
    import asyncio

    data = make_tar(PAYLOAD)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/archive"):
            return httpx.Response(
                302,
                headers={"Location": "/storage/a1?signature=abc"},
            )
        return httpx.Response(200, content=data)

    client = RestClient("http://tinker.test", "tml-test", transport=httpx.MockTransport(handler))

    async def go() -> Path:
        async with client:
            return await client.download_checkpoint_async(
                "tinker://run/sampler_weights/final", tmp_path, extract=False
            )

    where = asyncio.run(go())
    assert where == tmp_path / "run_sampler_weights_final.tar"
    assert where.read_bytes() == data


def test_expired_url_is_fetched_again_once(tmp_path: Path) -> None:
    data = make_tar(PAYLOAD)
    urls = iter(["https://storage.test/old", "https://storage.test/new"])
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path == "/old":
            return httpx.Response(403, json={"detail": "The download URL has expired"})
        return httpx.Response(200, content=data)

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        where = download_archive(http, lambda: next(urls), tmp_path / "a.tar", extract=False)
    assert where.read_bytes() == data and asked == ["/old", "/new"]


def test_refused_download_raises_the_status_error(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": "Archive not found"})

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as http,
        pytest.raises(APIStatusError) as raised,
    ):
        download_archive(http, lambda: "https://storage.test/x", tmp_path / "ckpt")
    assert raised.value.status_code == 404
    assert list(tmp_path.iterdir()) == []


def test_short_body_is_refused_and_the_part_kept_to_resume(tmp_path: Path) -> None:
    data = make_tar(PAYLOAD)

    def handler(request: httpx.Request) -> httpx.Response:
        # Announces the whole archive in Content-Range but the range ends early, every time.
        return httpx.Response(
            206,
            headers={"Content-Range": f"bytes 0-99/{len(data)}"},
            content=data[:100] if "range" not in request.headers else b"",
        )

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as http,
        pytest.raises(ArchiveIncompleteError),
    ):
        policy = RetryPolicy(max_retries=1, initial_delay=0.01)
        download_archive(http, lambda: "https://storage.test/x", tmp_path / "ckpt", retry=policy)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.part", "ckpt.part.json"]
    assert (tmp_path / "ckpt.part").read_bytes() == data[:100]


# -- unsafe archives ------------------------------------------------------------------------


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def unsafe_tar(member: tarfile.TarInfo, then: tuple[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        good = tarfile.TarInfo("good.txt")
        good.size = 4
        tar.addfile(good, io.BytesIO(b"good"))
        if member.isreg():
            member.size = 4
            tar.addfile(member, io.BytesIO(b"evil"))
        else:
            tar.addfile(member)
        if then is not None:
            after = tarfile.TarInfo(then[0])
            after.size = len(then[1])
            tar.addfile(after, io.BytesIO(then[1]))
    return buffer.getvalue()


def unsafe_cases(tmp: Path) -> dict[str, bytes]:
    return {
        "absolute": unsafe_tar(_member(str(tmp / "abs-evil.txt"))),
        "dotdot": unsafe_tar(_member("../evil.txt")),
        "deep-dotdot": unsafe_tar(_member("a/b/../../../../evil.txt")),
        "symlink": unsafe_tar(
            _member("link", tarfile.SYMTYPE, link=str(tmp)), then=("link/evil.txt", b"evil")
        ),
        "relative-symlink": unsafe_tar(
            _member("up", tarfile.SYMTYPE, link=".."), then=("up/evil.txt", b"evil")
        ),
        "hardlink": unsafe_tar(_member("hard", tarfile.LNKTYPE, link="../../evil.txt")),
        "char-device": unsafe_tar(_member("null", tarfile.CHRTYPE)),
        "block-device": unsafe_tar(_member("disk", tarfile.BLKTYPE)),
        "fifo": unsafe_tar(_member("pipe", tarfile.FIFOTYPE)),
    }


CASES = [
    "absolute",
    "dotdot",
    "deep-dotdot",
    "symlink",
    "relative-symlink",
    "hardlink",
    "char-device",
    "block-device",
    "fifo",
]


@pytest.mark.parametrize("case", CASES)
def test_unsafe_archive_is_refused_and_nothing_is_written(tmp_path: Path, case: str) -> None:
    sandbox = tmp_path / "sandbox"
    dest = sandbox / "a" / "b"
    dest.mkdir(parents=True)
    data = unsafe_cases(sandbox)[case]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=data)

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as http,
        pytest.raises(UnsafeArchiveError),
    ):
        download_archive(http, lambda: "https://storage.test/x", dest / "ckpt")
    # Nothing anywhere: not the target, not its good file, not the .part, not the evil file.
    leftovers = [p for p in sandbox.rglob("*") if p not in (sandbox / "a", dest)]
    assert leftovers == []
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("case", CASES)
def test_extract_archive_refuses_each_unsafe_member(tmp_path: Path, case: str) -> None:
    archive = tmp_path / "x.tar"
    archive.write_bytes(unsafe_cases(tmp_path)[case])
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(UnsafeArchiveError):
        extract_archive(archive, into)
    assert not (tmp_path / "abs-evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not any(p.is_symlink() for p in into.rglob("*"))


def test_unsafe_archive_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from tinker_rest.cli import cli

    data = unsafe_tar(_member("../evil.txt"))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/archive"):
            return httpx.Response(302, headers={"Location": "https://storage.test/a"})
        return httpx.Response(200, content=data)

    original = RestClient.__init__

    def with_mock(self: RestClient, *args: object, **kwargs: object) -> None:
        kwargs["transport"] = httpx.MockTransport(handler)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(RestClient, "__init__", with_mock)
    dest = tmp_path / "dest"
    argv = ["--base-url", "http://tinker.test", "--api-key", "tml-x", "-f", "json"]
    argv += ["checkpoint", "download", "tinker://run/weights/1", "-o", str(dest)]
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[:3] == [
        "Waiting for the archive to be built: tinker://run/weights/1",
        "Downloading: tinker://run/weights/1",
        "Extracting: tinker://run/weights/1",
    ]  # each phase labelled, one line each when stderr is not a terminal
    assert lines[3].startswith("Error: refused to extract the archive")
    assert lines[4].startswith("Hint: nothing was kept")
    assert "'../evil.txt'" in result.stderr and "Traceback" not in result.output
    assert result.stdout == ""
    assert list(dest.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_gzip_and_dot_prefixed_names_extract(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in (".", "./sub"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        info = tarfile.TarInfo("./sub/weights.bin")
        info.size = 3
        info.mode = 0o4755  # setuid: never carried over
        tar.addfile(info, io.BytesIO(b"abc"))
    archive = tmp_path / "x.tar.gz"
    archive.write_bytes(gzip.compress(buffer.getvalue()))
    into = tmp_path / "into"
    into.mkdir()
    assert extract_archive(archive, into) == ["sub/weights.bin"]
    written = into / "sub" / "weights.bin"
    assert written.read_bytes() == b"abc"
    assert written.stat().st_mode & 0o7777 == 0o755


def test_not_a_tar_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "x.tar"
    archive.write_bytes(json.dumps({"not": "a tar"}).encode() * 100)
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(UnsafeArchiveError, match="not a readable tar"):
        extract_archive(archive, into)


# -- refreshed URLs, Ctrl-C and resumes, stalls ----------------------------------------------


def ranged(request: httpx.Request, data: bytes, headers: dict[str, str]) -> httpx.Response:
    """Answer a GET of ``data`` as a storage server does: whole, or from the Range's start."""
    wanted = request.headers.get("range")
    if wanted is None:
        return httpx.Response(200, headers=headers, content=data)
    start = int(wanted.removeprefix("bytes=").split("-")[0])
    content_range = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
    return httpx.Response(206, headers={**headers, **content_range}, content=data[start:])


# -- a refreshed URL that serves another archive: never spliced ------------------------------

FIRST = {"adapter_model.safetensors": os.urandom(200_000)}
SECOND = {"adapter_model.safetensors": os.urandom(200_000)}


@pytest.mark.parametrize("case", ["other location", "same location, other ETag"])
def test_refreshed_url_serving_other_bytes_restarts_from_zero(tmp_path: Path, case: str) -> None:
    first, second = make_tar(FIRST), make_tar(SECOND)
    assert len(first) == len(second)  # the same size: only the identity can tell them apart
    half = len(first) // 2
    if case == "other location":
        urls = iter(["https://storage.test/a1?sig=1", "https://storage.test/a2?sig=2"])
    else:
        urls = iter(["https://storage.test/a?sig=1", "https://storage.test/a?sig=2"])
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:  # the first URL: half of the first archive, then a broken connection
            headers = {"Content-Length": str(len(first))}
            if case != "other location":
                headers["ETag"] = '"first"'
            return httpx.Response(200, headers=headers, stream=CutStream(first[:half]))
        if request.url.params["sig"] == "1":  # that URL has expired meanwhile
            return httpx.Response(403, json={"detail": "The download URL has expired"})
        headers = {} if case == "other location" else {"ETag": '"second"'}
        return ranged(request, second, headers)

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        where = download_archive(http, lambda: next(urls), tmp_path / "ckpt")
    assert tree(where) == SECOND  # all of the second archive, not half of each
    assert "range" not in seen[-1].headers  # it started again from zero
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_same_archive_resumes_with_if_range(tmp_path: Path) -> None:
    data = make_tar(FIRST)
    half = len(data) // 2
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        headers = {"ETag": '"v1"', "Last-Modified": "Wed, 02 Dec 2026 05:00:00 GMT"}
        if len(seen) == 1:
            headers["Content-Length"] = str(len(data))
            return httpx.Response(200, headers=headers, stream=CutStream(data[:half]))
        return ranged(request, data, headers)

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        where = download_archive(
            http, lambda: "https://storage.test/a?sig=1", tmp_path / "a.tar", extract=False
        )
    assert where.read_bytes() == data
    assert seen[1].headers["range"] == f"bytes={half}-"
    assert seen[1].headers["if-range"] == '"v1"'


# -- Ctrl-C keeps the .part, and the next run resumes it --------------------------------------


class SlowArchive(http.server.BaseHTTPRequestHandler):
    """Serves one archive with Range, in small pieces, recording each request's Range; the
    first answer may stall (stop sending, connection open) after ``stall_after`` bytes."""

    protocol_version = "HTTP/1.1"
    server: SlowServer

    def do_GET(self) -> None:
        server, data = self.server, self.server.data
        server.ranges.append(self.headers.get("Range"))
        start = 0
        if wanted := self.headers.get("Range"):
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        for offset in range(start, len(data), 16_384):
            if server.stall_after is not None and offset >= server.stall_after:
                server.stall_after = None
                time.sleep(server.stall_for)
                return
            self.wfile.write(data[offset : offset + 16_384])
            self.wfile.flush()
            time.sleep(server.pause)

    def log_message(self, format: str, *args: object) -> None:
        pass


class SlowServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, data: bytes, pause: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), SlowArchive)
        self.data = data
        self.pause = pause
        self.stall_after: int | None = None
        self.stall_for = 0.0
        self.ranges: list[str | None] = []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/archive?sig=1"


@pytest.fixture
def slow_server() -> Iterator[SlowServer]:
    server = SlowServer(make_tar(FIRST), pause=0.001)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_ctrl_c_keeps_the_part_and_the_next_run_resumes_it(
    slow_server: SlowServer, tmp_path: Path
) -> None:
    target = tmp_path / "ckpt"
    total = len(slow_server.data)

    def interrupt(done: int, _total: int | None) -> None:
        if done >= total // 3:
            raise KeyboardInterrupt

    with httpx.Client() as http, pytest.raises(KeyboardInterrupt):
        download_archive(http, lambda: slow_server.url, target, progress=interrupt)
    part = tmp_path / "ckpt.part"
    kept = part.stat().st_size
    assert total // 3 <= kept < total
    assert not target.exists()

    with httpx.Client() as http:
        download_archive(http, lambda: slow_server.url, target)
    assert tree(target) == FIRST
    assert slow_server.ranges == [None, f"bytes={kept}-"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_a_part_of_another_archive_is_not_resumed(slow_server: SlowServer, tmp_path: Path) -> None:
    part = tmp_path / "ckpt.part"
    part.write_bytes(make_tar(SECOND)[:50_000])
    record = tmp_path / "ckpt.part.json"
    record.write_text(
        json.dumps({"location": "http://elsewhere.test/archive", "size": len(slow_server.data)})
    )
    with httpx.Client() as http:
        download_archive(http, lambda: slow_server.url, tmp_path / "ckpt")
    assert tree(tmp_path / "ckpt") == FIRST
    assert slow_server.ranges == ["bytes=50000-", None]  # refused the 206, then from zero


@pytest.mark.parametrize("extra", [0, 50], ids=["complete", "longer than the archive"])
def test_a_part_the_server_has_nothing_after(tmp_path: Path, extra: int) -> None:
    data = make_tar(FIRST)
    url = "https://storage.test/a?sig=1"
    part = tmp_path / "a.tar.part"
    part.write_bytes(data + b"x" * extra)
    record = {"location": "https://storage.test/a", "size": len(data) + extra}
    (tmp_path / "a.tar.part.json").write_text(json.dumps(record))
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "range" in request.headers:  # from the end of the part: nothing left there
            return httpx.Response(416, headers={"Content-Range": f"bytes */{len(data)}"})
        return httpx.Response(200, content=data)

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        where = download_archive(http, lambda: url, tmp_path / "a.tar", extract=False)
    assert where.read_bytes() == data
    # A part of exactly this archive needs no more bytes; a longer one starts again.
    assert ["range" in r.headers for r in seen] == ([True] if extra == 0 else [True, False])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar"]


def test_a_second_download_into_the_same_part_is_refused(
    slow_server: SlowServer, tmp_path: Path
) -> None:
    import fcntl

    part = tmp_path / "ckpt.part"
    part.write_bytes(b"held by another run")
    with part.open("r+b") as other:  # another process's download, as flock sees it
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with httpx.Client() as http, pytest.raises(DownloadError, match="another download"):
            download_archive(http, lambda: slow_server.url, tmp_path / "ckpt")
        assert part.read_bytes() == b"held by another run"  # untouched
    assert slow_server.ranges == []  # refused before any request


def test_a_stall_is_retried_and_said(slow_server: SlowServer, tmp_path: Path) -> None:
    slow_server.stall_after = len(slow_server.data) // 2
    slow_server.stall_for = 2.0  # far longer than the stall timeout below
    events: list[DownloadEvent] = []
    with httpx.Client() as client:
        download_archive(
            client,
            lambda: slow_server.url,
            tmp_path / "ckpt",
            on_event=events.append,
            stall_timeout=0.3,
        )
    assert tree(tmp_path / "ckpt") == FIRST
    assert [e.phase for e in events] == ["waiting", "downloading", "retrying", "extracting"]
    retry = events[2].message
    assert retry.startswith("stalled for 0.3 s without a byte at byte ") and "retrying in" in retry
    assert slow_server.ranges[0] is None and slow_server.ranges[1] is not None


# -- hostile archives: each refused with UnsafeArchiveError and nothing left behind ----------


def sparse_tar(real_size: int) -> bytes:
    """A PAX 1.0 sparse member: 512 bytes of data that unpack to ``real_size`` bytes."""
    sparse_map = b"1\n0\n512\n".ljust(512, b"\0")
    payload = sparse_map + b"x" * 512
    info = tarfile.TarInfo("weights.bin")
    info.size = len(payload)
    info.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": "weights.bin",
        "GNU.sparse.realsize": str(real_size),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def gzip_bomb(unpacked: int) -> bytes:
    """A tar.gz of one file of zeros: a few KB that unpack to ``unpacked`` bytes."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as gz:
        info = tarfile.TarInfo("weights.bin")
        info.size = unpacked
        gz.write(info.tobuf(format=tarfile.PAX_FORMAT))
        zeros = bytes(1 << 20)
        for _ in range(unpacked >> 20):
            gz.write(zeros)
        gz.write(bytes(1024))  # the end-of-archive blocks
    return buffer.getvalue()


def tar_of(*members: tuple[str, bytes | None]) -> bytes:
    """A tar of files (bytes) and directories (None), in this order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


HOSTILE = {
    "sparse": lambda: sparse_tar(64 << 20),
    "gzip-bomb": lambda: gzip_bomb(64 << 20),
    "file-then-child": lambda: tar_of(("a", b"file"), ("a/b", b"child")),
    "file-then-dir": lambda: tar_of(("a", b"file"), ("a", None)),
    "name-twice": lambda: tar_of(("a", b"one"), ("a", b"two")),
    "256-char-name": lambda: tar_of(("x" * 256, b"long")),
    "too-many-members": lambda: tar_of(*((f"f{i}", b"") for i in range(10_001))),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_is_refused_and_nothing_is_left(tmp_path: Path, case: str) -> None:
    data = HOSTILE[case]()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=data)

    dest = tmp_path / "dest"
    dest.mkdir()
    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as http,
        pytest.raises(UnsafeArchiveError),
    ):
        download_archive(http, lambda: "https://storage.test/x", dest / "ckpt")
    assert list(dest.iterdir()) == []  # no target, no staging directory, no .part


def test_the_unpacked_limit_can_be_raised(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(gzip_bomb(20 << 20))
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(UnsafeArchiveError, match="unpacks to more than"):
        extract_archive(archive, into)
    for leftover in into.iterdir():
        leftover.unlink()
    assert extract_archive(archive, into, max_unpacked_bytes=21 << 20) == ["weights.bin"]
    assert (into / "weights.bin").stat().st_size == 20 << 20


def test_rest_client_download_refuses_a_hostile_archive(tmp_path: Path) -> None:
    data = sparse_tar(64 << 20)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/archive"):
            return httpx.Response(302, headers={"Location": "https://storage.test/a?sig=1"})
        return httpx.Response(200, content=data)

    client = RestClient("http://tinker.test", "tml-x", transport=httpx.MockTransport(handler))
    with client, pytest.raises(UnsafeArchiveError, match="sparse"):
        client.download_checkpoint("tinker://run/weights/1", tmp_path)
    assert list(tmp_path.iterdir()) == []


# -- SIGINT to a real download in a second process, then a resume in a third ------------------


class SlowRelay:
    """A TCP relay to the reference server that passes its answers on in small, slow pieces.

    The reference server sends an archive of a few MB in milliseconds on loopback; the relay
    slows it down (it changes no byte) so that a signal can arrive mid-transfer. It records
    the ``Range`` header of each request it passes on.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.ranges: list[str] = []
        self.requests = 0
        self.closing = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket) -> None:
        with client, upstream:
            try:
                while data := client.recv(65536):
                    text = data.decode("latin-1")
                    if text.startswith("GET "):
                        self.requests += 1
                        for line in text.split("\r\n"):
                            if line.lower().startswith("range:"):
                                self.ranges.append(line.split(":", 1)[1].strip())
                    upstream.sendall(data)
            except OSError:
                pass

    def _down(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while data := upstream.recv(8192):
                client.sendall(data)
                time.sleep(0.005)
        except OSError:
            pass

    def close(self) -> None:
        self.closing = True
        self.listener.close()


def test_sigint_keeps_the_part_and_a_second_process_resumes_it(tmp_path: Path) -> None:
    from tinker_rest.server import TinkerServer

    # A server of its own whose signed URLs point at the relay too (they name the configured
    # public URL, never the Host header), so the archive's bytes go through it.
    relay = SlowRelay(0)
    server = TinkerServer(str(tmp_path / "tinker.db"), public_url=f"http://127.0.0.1:{relay.port}")
    org = server.add_organization("acme")
    user = server.add_user("alice@example.com", organization_id=org)
    key = server.add_api_key(user)
    run_id = server.add_training_run(server.add_session(user), base_model="Qwen/Qwen3-8B")
    files = {"adapter_model.safetensors": os.urandom(3 << 20), "adapter_config.json": b"{}"}
    path = server.add_checkpoint(run_id, "weights", "big", files=files)
    running = server.run_in_background(host="127.0.0.1", port=0)
    relay.upstream = int(running.base_url.rsplit(":", 1)[1])
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "tinker_rest.cli",
        "--base-url",
        f"http://127.0.0.1:{relay.port}",
        "--api-key",
        key,
        "checkpoint",
        "download",
        path,
        "-o",
        str(out),
    ]
    try:
        first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        part = next(out.glob("*.part"), None)
        deadline = time.monotonic() + 60
        while (part is None or part.stat().st_size < (1 << 20)) and time.monotonic() < deadline:
            time.sleep(0.05)
            part = next(out.glob("*.part"), None)
        assert part is not None, "the download never started"
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=30)
        assert first.returncode == 130, err
        assert "Interrupted" in err and "Traceback" not in err
        kept = part.stat().st_size
        assert (1 << 20) <= kept < (3 << 20)

        second = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        assert "resuming at byte" in second.stderr
    finally:
        relay.close()
        running.stop()
        server.close()
    target = out / part.name.removesuffix(".part")
    assert tree(target) == files
    assert relay.ranges == [f"bytes={kept}-"]  # the second process asked only for the rest
    assert sorted(p.name for p in out.iterdir()) == [target.name]

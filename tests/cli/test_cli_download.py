"""Downloads: resuming after a cut connection, checking lengths, and refusing unsafe archives.

A real server cannot be made to drop a connection on demand, so these tests serve archives
from a tiny HTTP server of their own on 127.0.0.1 (which really does cut the TCP connection),
or through ``httpx.MockTransport``.
"""

from __future__ import annotations

import dataclasses
import datetime
import gzip
import http.server
import io
import json
import os
import socket
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tinker_rest import (
    APIStatusError,
    ArchiveIncompleteError,
    RestClient,
    TargetExistsError,
    UnsafeArchiveError,
)
from tinker_rest._download import download_archive, extract_archive
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

"""Downloads that survive anything: Ctrl-C and resume, refreshed URLs, stalls, hostile archives.

Archives are served by the reference server where it can produce the case (the SIGINT test, in
a second process, through a slow relay that only delays bytes), and otherwise by
``httpx.MockTransport`` or a tiny HTTP server of the test's own, for what a real server cannot
be made to do: switch archives behind a refreshed URL, stall, or serve a hostile tar.
"""

from __future__ import annotations

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

from tinker_rest import RestClient, UnsafeArchiveError
from tinker_rest._download import DownloadEvent, download_archive, extract_archive


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


class CutStream(httpx.SyncByteStream):
    """A body that breaks off with a read error after some bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self.data
        raise httpx.ReadError("connection reset by peer")


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
    """Serves one archive with Range, in small pieces, recording each request's Range."""

    protocol_version = "HTTP/1.1"
    server: SlowServer

    def do_GET(self) -> None:
        data = self.server.data
        self.server.ranges.append(self.headers.get("Range"))
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
            self.wfile.write(data[offset : offset + 16_384])
            self.wfile.flush()
            time.sleep(self.server.pause)

    def log_message(self, format: str, *args: object) -> None:
        pass


class SlowServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, data: bytes, pause: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), SlowArchive)
        self.data = data
        self.pause = pause
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


def test_a_stall_is_retried_and_said(tmp_path: Path) -> None:
    data = make_tar(FIRST)
    stalled = threading.Event()

    class Stalling(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            start = 0
            if wanted := self.headers.get("Range"):
                start = int(wanted.removeprefix("bytes=").split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            if not stalled.is_set():
                stalled.set()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                time.sleep(2)  # far longer than the stall timeout below
                return
            self.wfile.write(data[start:])

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    events: list[DownloadEvent] = []
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/a"
        with httpx.Client() as client:
            download_archive(
                client, lambda: url, tmp_path / "ckpt", on_event=events.append, stall_timeout=0.3
            )
    finally:
        server.shutdown()
        server.server_close()
    assert tree(tmp_path / "ckpt") == FIRST
    phases = [e.phase for e in events]
    assert phases == ["waiting", "downloading", "retrying", "extracting"]
    retry = events[2].message
    assert retry.startswith("stalled for 0.3 s without a byte at byte ") and "retrying in" in retry


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


def test_sigint_keeps_the_part_and_a_second_process_resumes_it(env: object, tmp_path: Path) -> None:
    from tinker_rest.server import TinkerServer

    server: TinkerServer = env.server  # type: ignore[attr-defined]
    run_id: str = env.run_a  # type: ignore[attr-defined]
    files = {"adapter_model.safetensors": os.urandom(3 << 20), "adapter_config.json": b"{}"}
    path = server.add_checkpoint(run_id, "weights", "big", files=files)
    port = int(env.base_url.rsplit(":", 1)[1])  # type: ignore[attr-defined]
    relay = SlowRelay(port)
    command = [
        sys.executable,
        "-m",
        "tinker_rest.cli",
        "--base-url",
        f"http://127.0.0.1:{relay.port}",
        "--api-key",
        env.alice_key,  # type: ignore[attr-defined]
        "checkpoint",
        "download",
        path,
        "-o",
        str(tmp_path),
    ]
    try:
        first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        part = next(tmp_path.glob("*.part"), None)
        deadline = time.monotonic() + 60
        while (part is None or part.stat().st_size < (1 << 20)) and time.monotonic() < deadline:
            time.sleep(0.05)
            part = next(tmp_path.glob("*.part"), None)
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
    target = tmp_path / part.name.removesuffix(".part")
    assert tree(target) == files
    assert relay.ranges == [f"bytes={kept}-"]  # the second process asked only for the rest
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]

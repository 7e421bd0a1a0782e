"""The engine through the facade: what libcurl and its glue must do against servers that
misbehave, proxies, TLS trust, HTTP/2, forks and many calls in flight.

Faults a real server cannot produce come from a scripted socket server on 127.0.0.1: each
accepted connection runs a script that reads requests and writes raw bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import select
import selectors
import socket
import ssl
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator

import httpx
import pytest

from tinker_rest import (
    APIConnectionError,
    APITimeoutError,
    ResponseTooLargeError,
    RestClient,
)

RUN = {
    "training_run_id": "sess-1:train:0",
    "base_model": "Qwen/Qwen3-8B",
    "model_owner": "alice",
    "is_lora": True,
    "last_request_time": "2026-01-15T10:00:00Z",
}
RUN_BODY = json.dumps(RUN).encode()


def ok(body: bytes = RUN_BODY, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + extra
        + b"content-length: %d\r\n\r\n" % len(body)
        + body
    )


class Conn:
    """One accepted connection, as a script sees it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def request(self) -> bytes | None:
        """The next request's head (its body, by Content-Length, is read and dropped)."""
        while b"\r\n\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buffer += data
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
                while len(self.buffer) < length:
                    self.buffer += self.sock.recv(65536)
                self.buffer = self.buffer[length:]
        return head

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)


Script = Callable[[Conn, int], None]


class ScriptedServer:
    """A listening socket whose connections each run the script in a thread of their own."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.tls = tls
        self.heads: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        scheme = "https" if tls else "http"
        self.base_url = f"{scheme}://{'localhost' if tls else '127.0.0.1'}:{self.port}"
        self.stopping = False
        self.threads: list[threading.Thread] = []
        self.socks: list[socket.socket] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.socks.append(sock)
            n = self.connections
            self.connections += 1
            thread = threading.Thread(target=self._run, args=(sock, n), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _run(self, sock: socket.socket, n: int) -> None:
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
            self.script(Conn(sock), n)
        except (OSError, ssl.SSLError):
            pass  # the client went away: that is what many of these scripts wait for
        finally:
            sock.close()

    def close(self) -> None:
        self.stopping = True
        self.listener.close()
        for sock in self.socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self.threads:
            thread.join(10)


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Script, tls: ssl.SSLContext | None = None) -> ScriptedServer:
        server = ScriptedServer(script, tls)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def answer_each(respond: Callable[[Conn, bytes], bool]) -> Script:
    """A script that reads requests and answers each with ``respond`` until it says stop."""

    def script(conn: Conn, n: int) -> None:
        while (head := conn.request()) is not None:
            if not respond(conn, head):
                return

    return script


# -- framing and limits --------------------------------------------------------------------


POLLERS = ["epoll", "poll", "selectors", "select"]


@pytest.fixture(params=POLLERS)
def poller(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each way the engine can wait on sockets: epoll on Linux, poll on macOS and the BSDs,
    selectors on Windows; all three exist on Linux, so each is tested here."""
    from tinker_rest import _engine

    make = {
        "epoll": select.epoll,
        "poll": _engine._Poll,
        "selectors": _engine._Selector,
        # Windows' DefaultSelector: select(), which fails when a watched socket was closed
        "select": lambda: _engine._Selector(selectors.SelectSelector()),
    }
    monkeypatch.setattr(_engine, "_poller", make[request.param])
    return str(request.param)


def test_a_late_unsolicited_response_is_not_taken_as_the_next_answer(serve, poller) -> None:
    """A 204 sent after a complete response must not answer the next call."""
    second = dict(RUN, training_run_id="sess-2:train:0")

    def respond(conn: Conn, head: bytes) -> bool:
        if b"sess-1" in head:
            conn.send(ok())
            time.sleep(0.1)  # the answer is complete and read; then, unasked:
            conn.send(b"HTTP/1.1 204 No Content\r\n\r\n")
        else:
            conn.send(ok(json.dumps(second).encode()))
        return True

    server = serve(answer_each(respond))
    with RestClient(server.base_url, "tml-x", max_retries=0) as client:
        assert client.get_training_run("sess-1:train:0").result(10).training_run_id == (
            "sess-1:train:0"
        )
        time.sleep(0.3)  # the stray 204 has arrived before the next call
        run = client.get_training_run("sess-2:train:0").result(10)
    assert run.training_run_id == "sess-2:train:0"


def test_a_server_closing_every_connection_leaves_no_closed_socket_watched(serve, poller):
    """A server that closes the connection after each answer (``Connection: close``): libcurl
    closes the socket after it stopped watching it, while the engine kept it registered (set
    aside); select() then failed for every socket with EBADF and the engine's thread died,
    so the second call never ended."""

    def respond(conn: Conn, head: bytes) -> bool:
        conn.send(ok(extra=b"connection: close\r\n"))
        return False

    server = serve(answer_each(respond))
    with RestClient(server.base_url, "tml-x", max_retries=0) as client:
        for _ in range(5):
            assert client.get_training_run("sess-1:train:0").result(10).is_lora
    assert server.connections == 5


def test_an_endless_chunked_body_is_cut_at_max_response_bytes(serve) -> None:
    def respond(conn: Conn, head: bytes) -> bool:
        conn.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # bounded: stops when the client hangs up
            conn.send(chunk)
        return False

    server = serve(answer_each(respond))
    limit = 1 << 20
    with (
        RestClient(server.base_url, "tml-x", max_retries=0, max_response_bytes=limit) as c,
        pytest.raises(ResponseTooLargeError, match=f"larger than {limit} bytes"),
    ):
        c.get_training_run("sess-1:train:0").result(15)


def test_a_gzip_bomb_is_cut_at_max_response_bytes_decompressed(serve) -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    zeros = bytes(1 << 20)
    bomb = b"".join(packer.compress(zeros) for _ in range(256)) + packer.flush()
    assert len(bomb) < 1 << 20  # under 1 MiB on the wire, 256 MiB unpacked

    def respond(conn: Conn, head: bytes) -> bool:
        assert b"gzip" in head.lower()  # the client asks for it
        conn.send(ok(bomb, extra=b"content-encoding: gzip\r\n"))
        return True

    server = serve(answer_each(respond))
    limit = 8 << 20
    with (
        RestClient(server.base_url, "tml-x", max_retries=0, max_response_bytes=limit) as c,
        pytest.raises(ResponseTooLargeError, match="decompressed"),
    ):
        c.get_training_run("sess-1:train:0").result(30)


def test_a_gzip_body_within_the_cap_is_decoded_once(serve) -> None:
    def respond(conn: Conn, head: bytes) -> bool:
        conn.send(ok(gzip.compress(RUN_BODY), extra=b"content-encoding: gzip\r\n"))
        return True

    server = serve(answer_each(respond))
    with RestClient(server.base_url, "tml-x", max_retries=0) as client:
        assert client.get_training_run("sess-1:train:0").result(10).base_model == "Qwen/Qwen3-8B"


def test_a_body_trickling_a_byte_a_second_ends_at_the_attempt_deadline(serve) -> None:
    def respond(conn: Conn, head: bytes) -> bool:
        conn.send(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
        for _ in range(60):  # a minute at most
            conn.send(b"{")
            time.sleep(1)
        return False

    server = serve(answer_each(respond))
    with RestClient(server.base_url, "tml-x", timeout=2, max_retries=0) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            client.get_training_run("sess-1:train:0").result(30)
        # Each read came within a second: only a deadline over the whole exchange ends it.
        assert time.monotonic() - started < 10


def test_endless_interim_responses_are_bounded(serve) -> None:
    def respond(conn: Conn, head: bytes) -> bool:
        for _ in range(10_000):
            conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        return False

    server = serve(answer_each(respond))
    with RestClient(server.base_url, "tml-x", timeout=30, max_retries=0) as client:
        started = time.monotonic()
        with pytest.raises(APIConnectionError, match=r"interim \(1xx\) responses"):
            client.get_training_run("sess-1:train:0").result(40)
        assert time.monotonic() - started < 10  # not the 30 s deadline


@pytest.mark.parametrize(
    ("name", "response", "said"),
    [
        (
            "0x chunk size",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0x%x\r\n%s\r\n0\r\n\r\n"
            % (len(RUN_BODY), RUN_BODY),
            "Header without colon",  # "0" ends the body; "x1f" is then no trailer
        ),
        ("NUL in a header value", ok(extra=b"x-note: a\0b\r\n"), "NUL byte in header"),
        (
            "duplicate Transfer-Encoding",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: identity\r\n"
            b"\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(RUN_BODY), RUN_BODY),
            "more than one Transfer-Encoding header",
        ),
    ],
)
def test_framing_h11_refuses_is_refused(serve, name: str, response: bytes, said: str) -> None:
    def respond(conn: Conn, head: bytes) -> bool:
        conn.send(response)
        return False

    server = serve(answer_each(respond))
    with (
        RestClient(server.base_url, "tml-x", max_retries=0) as client,
        pytest.raises(APIConnectionError, match=said),
    ):
        client.get_training_run("sess-1:train:0").result(10)


def test_a_kept_alive_connection_the_server_closed_is_replaced(serve, poller) -> None:
    def script(conn: Conn, n: int) -> None:
        if conn.request() is not None:
            conn.send(ok())  # keep-alive, then closed without a word

    server = serve(script)
    with RestClient(server.base_url, "tml-x", max_retries=0) as client:
        for _ in range(3):
            assert client.get_training_run("sess-1:train:0").result(10).is_lora
    assert server.connections == 3


# -- the environment -----------------------------------------------------------------------


def test_a_proxy_from_the_environment_carries_the_calls(serve, monkeypatch) -> None:
    seen: list[bytes] = []

    def respond(conn: Conn, head: bytes) -> bool:
        seen.append(head.split(b"\r\n")[0])
        conn.send(ok())
        return True

    proxy = serve(answer_each(respond))
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", proxy.base_url)
    with RestClient("http://tinker.test", "tml-x", max_retries=0) as client:
        assert client.get_training_run("sess-1:train:0").result(10).is_lora
    # The proxy got the absolute URL of a host it alone can reach.
    assert seen == [
        b"GET http://tinker.test/api/v1/training_runs/sess-1%3Atrain%3A0"
        b"?access_scope=owned HTTP/1.1"
    ]


@pytest.fixture(scope="module")
def ca() -> object:
    import trustme

    return trustme.CA()


def _tls_server_context(ca: object) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)  # type: ignore[attr-defined]
    return context


def test_tls_trust_comes_from_ssl_cert_file_else_certifi(serve, ca, tmp_path, monkeypatch):
    server = serve(answer_each(lambda conn, head: conn.send(ok()) or True), _tls_server_context(ca))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with (
        RestClient(server.base_url, "tml-x", max_retries=0) as client,
        pytest.raises(APIConnectionError, match="certificate"),
    ):
        client.get_training_run("sess-1:train:0").result(10)  # certifi: not trusted
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))  # type: ignore[attr-defined]
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    with RestClient(server.base_url, "tml-x", max_retries=0) as client:
        assert client.get_training_run("sess-1:train:0").result(10).is_lora


def test_http2_calls_share_few_connections(ca, tmp_path, monkeypatch) -> None:
    """Against a TLS server offering h2 (hypercorn), 200 calls at once use one or two
    connections, where HTTP/1.1 would open one per call in flight."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    clients: set[tuple[str, int]] = set()
    versions: set[str] = set()

    async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        clients.add(tuple(scope["client"]))
        versions.add(scope["http_version"])
        await asyncio.sleep(0.2)  # so that the calls overlap
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": RUN_BODY})

    cert = ca.issue_cert("localhost")  # type: ignore[attr-defined]
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))  # type: ignore[attr-defined]
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{listener.detach()}"]  # hypercorn owns and closes it
    config.certfile, config.keyfile = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    config.loglevel = "ERROR"
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(
        target=loop.run_until_complete,
        args=(hypercorn_serve(app, config, shutdown_trigger=stop.wait),),  # type: ignore[arg-type]
    )
    thread.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    try:
        with RestClient(f"https://localhost:{port}", "tml-x", max_retries=0) as client:
            client.get_training_run("sess-1:train:0").result(20)  # one connection, settled
            futures = [client.get_training_run("sess-1:train:0") for _ in range(200)]
            assert all(f.result(30).is_lora for f in futures)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(20)
        loop.close()
    assert versions == {"2"}
    assert len(clients) <= 2


def test_a_forked_child_makes_calls_of_its_own(serve) -> None:
    server = serve(answer_each(lambda conn, head: conn.send(ok()) or True))
    with RestClient(server.base_url, "tml-x", max_retries=0) as client:
        assert client.get_training_run("sess-1:train:0").result(10).is_lora
        pid = os.fork()
        if pid == 0:  # the child: its own engine thread and connections, or it hangs
            code = 1
            try:
                code = 0 if client.get_training_run("sess-1:train:0").result(10).is_lora else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert client.get_training_run("sess-1:train:0").result(10).is_lora
    assert server.connections >= 2  # the child did not reuse the parent's connection


# -- concurrency -----------------------------------------------------------------------------


def test_a_thousand_calls_are_in_flight_together_on_two_threads() -> None:
    """The server answers no call until 1,000 are waiting: only a client that has them all in
    flight at once gets answers (else each waits out the 503 after 20 s)."""
    n = 1000
    waiting: list[asyncio.Future[bytes]] = []
    threads_seen: list[int] = []
    transports: list[asyncio.BaseTransport] = []

    class Held(asyncio.Protocol):
        def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
            transports.append(transport)
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while b"\r\n\r\n" in self.buffer:
                _, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
                release = asyncio.get_running_loop().create_future()
                waiting.append(release)
                release.add_done_callback(lambda f: self.transport.write(f.result()))
                if len(waiting) == n:
                    threads_seen.append(threading.active_count())
                    for f in waiting:
                        f.set_result(ok())

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(Held, "127.0.0.1", 0, backlog=2048))
    port = server.sockets[0].getsockname()[1]

    def give_up() -> None:
        for f in waiting:
            if not f.done():
                f.set_result(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")

    loop.call_later(20, give_up)
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    before = threading.active_count()
    try:
        with RestClient(
            f"http://127.0.0.1:{port}", "tml-x", max_retries=0, max_connections=n
        ) as client:
            futures = [client.get_training_run("sess-1:train:0") for _ in range(n)]
            assert all(f.result(60).is_lora for f in futures)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(20)
        for transport in transports:
            transport.close()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()
    assert threads_seen and threads_seen[0] <= before + 1  # the engine's one thread


def test_max_in_flight_bounds_the_calls_in_flight(serve) -> None:
    in_flight, peak = [0], [0]
    lock = threading.Lock()

    def respond(conn: Conn, head: bytes) -> bool:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.05)
        with lock:
            in_flight[0] -= 1
        conn.send(ok())
        return True

    server = serve(answer_each(respond))
    with RestClient(server.base_url, "tml-x", max_retries=0, max_in_flight=3) as client:
        futures = [client.get_training_run("sess-1:train:0") for _ in range(12)]
        assert all(f.result(30).is_lora for f in futures)
    assert peak[0] == 3


def test_max_workers_is_still_accepted_as_max_in_flight() -> None:
    client = RestClient("http://127.0.0.1:9", "tml-x", max_workers=5)
    assert client._engine.max_in_flight == 5
    client.close()


def test_calls_waiting_for_a_connection_do_not_spend_their_connect_timeout(serve) -> None:
    """More calls than connections: the extra ones wait in the engine, not in libcurl, where
    the wait for a free connection counts against the connect timeout (with 256 connections
    and 1,500 deletes in flight against the reference server, 220 failed that way)."""

    def respond(conn: Conn, head: bytes) -> bool:
        time.sleep(0.4)  # each answer takes longer than the whole connect timeout
        conn.send(ok())
        return True

    server = serve(answer_each(respond))
    with RestClient(
        server.base_url,
        "tml-x",
        max_retries=0,
        max_connections=2,
        max_in_flight=8,
        timeout=httpx.Timeout(30.0, connect=0.3),
    ) as client:
        futures = [client.get_training_run("sess-1:train:0") for _ in range(8)]
        assert all(f.result(30).is_lora for f in futures)


def test_calls_started_from_done_callbacks_never_wait_unseen(serve, poller) -> None:
    """Calls started as others end (a window of 8, released by done-callbacks on the engine
    thread) all finish. A wake-up sent while the engine emptied its wake socket was swallowed
    and every later call waited unseen in the inbox: about one run in two hung this way."""
    server = serve(answer_each(lambda conn, head: conn.send(ok()) or True))
    window = threading.BoundedSemaphore(8)
    futures = []
    with RestClient(server.base_url, "tml-x", max_retries=0) as client:
        for _ in range(3000):
            assert window.acquire(timeout=10), "a call never ended"
            future = client.get_training_run("sess-1:train:0")
            future.add_done_callback(lambda _: window.release())
            futures.append(future)
        assert all(f.result(10).is_lora for f in futures)


# -- handles kept from one call to the next ------------------------------------------------


def test_a_handle_reused_for_another_method_sends_exactly_that_request(serve) -> None:
    """Handles keep their options between calls (they are reset only when the kind of request
    changes, and an empty body is not set again after an empty one): each request must still
    go out with its own method and body, no more, and an empty POST says its length is 0."""
    seen: list[tuple[bytes, int | None]] = []  # (method, Content-Length, None when absent)

    def script(conn: Conn, n: int) -> None:
        while (head := conn.request()) is not None:
            lines = head.split(b"\r\n")
            lengths = [
                int(line.split(b":")[1])
                for line in lines[1:]
                if line.lower().startswith(b"content-length:")
            ]
            seen.append((lines[0].split(b" ")[0], lengths[0] if lengths else None))
            if head.startswith(b"GET"):
                conn.send(ok())
            elif head.startswith(b"POST /api/v1/weights_info"):
                body = json.dumps({"base_model": "m", "is_lora": True, "lora_rank": 8}).encode()
                conn.send(ok(body))
            else:
                conn.send(b"HTTP/1.1 204 No Content\r\n\r\n")

    server = serve(script)
    path = "tinker://sess-1:train:0/weights/0001"
    with RestClient(server.base_url, "k", max_in_flight=1, max_retries=0) as client:
        client.get_training_run("sess-1:train:0").result()
        client.delete_checkpoint_from_tinker_path(path).result()
        client.publish_checkpoint_from_tinker_path(path).result()  # empty after empty
        client.get_weights_info_by_tinker_path(path).result()
        client.publish_checkpoint_from_tinker_path(path).result()  # empty after a body
        client.delete_checkpoint_from_tinker_path(path).result()
        client.get_training_run("sess-1:train:0").result()
        client.unpublish_checkpoint_from_tinker_path(path).result()  # after a reset (GET)
        engine = client._engine
        assert len(engine._free) == 1  # one handle carried every call
        idle = engine._free[0]
        # and an idle handle holds nothing of its last call
        assert (idle.request, idle.task, idle.body, idle.lines) == (None, None, [], [])
    methods = [method for method, _ in seen]
    assert methods == [b"GET", b"DELETE", b"POST", b"POST", b"POST", b"DELETE", b"GET", b"DELETE"]
    lengths = [length for _, length in seen]
    assert lengths[3] is not None and lengths[3] > 0  # the weights-info body
    assert lengths[2] == lengths[4] == 0  # an empty POST says so, after a body too
    assert not lengths[0] and not lengths[1] and not lengths[5] and not lengths[6]
    assert not lengths[7]


def test_an_idle_handle_does_not_keep_the_body_of_its_last_request(serve) -> None:
    """libcurl copies a request body (COPYPOSTFIELDS); a handle kept with its options for the
    next call kept that copy too: two calls of 40 MiB each left 80 MiB held by idle handles
    until the client closed."""
    statm = "/proc/self/statm"
    if not os.path.exists(statm):
        pytest.skip("reads the resident set from /proc")

    def drain(conn: Conn, n: int) -> None:
        buffer = bytearray()
        while True:
            while b"\r\n\r\n" not in buffer:
                if not (data := conn.sock.recv(1 << 20)):
                    return
                buffer += data
            end = buffer.index(b"\r\n\r\n") + 4
            length = next(
                int(line.split(b":")[1])
                for line in bytes(buffer[:end]).split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            del buffer[:end]
            while len(buffer) < length:
                if not (data := conn.sock.recv(1 << 20)):
                    return
                buffer += data
            del buffer[:length]
            conn.send(b"HTTP/1.1 204 No Content\r\n\r\n")

    server = serve(drain)
    # The client runs in a process of its own, so that its resident set is all it holds (this
    # process also holds the scripted server's buffers). 40 MiB is above glibc's largest mmap
    # threshold (32 MiB): each copy is mapped and unmapped alone.
    size = 40 * 2**20
    client = f"""
import os
from tinker_rest._engine import Engine, Outgoing

def resident():
    with open({statm!r}) as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

def call(n):
    response = yield Outgoing("POST", {server.base_url!r} + "/upload", {{}}, b"x" * n)
    return response.status_code

engine = Engine(max_in_flight=2, max_connections=2, timeout=30, connect_timeout=5)
assert engine.run(call(10)).result(10) == 204
before = resident()
futures = [engine.run(call({size})), engine.run(call({size}))]
assert [f.result(30) for f in futures] == [204, 204]
del futures
held = resident() - before
assert len(engine._free) == 2
assert engine.run(call(10)).result(10) == 204  # a released handle still sends a body
engine.close()
print(held)
"""
    out = subprocess.run(
        [sys.executable, "-c", client], capture_output=True, text=True, timeout=60, check=True
    )
    held = int(out.stdout.split()[-1])
    assert held < size, f"{held / 2**20:.0f} MiB held after the calls"


@pytest.mark.parametrize("name", ["Accept-Encoding", "X-Custom", "Bad\nName"])
def test_the_engine_refuses_any_header_that_would_change_the_framing(serve, name: str) -> None:
    """The engine is the one place every request passes: a request built on it directly (not
    through RestClient, which checks a call's extra headers first) with CR or LF in any header,
    Accept-Encoding included (libcurl sends that one itself), is refused before a byte goes."""
    from tinker_rest._engine import Engine, Outgoing

    server = serve(answer_each(lambda conn, head: conn.send(ok()) is None))
    engine = Engine(max_in_flight=1, max_connections=1, timeout=10, connect_timeout=5)
    value = "gzip\r\nX-Smuggled: 1" if "\n" not in name else "gzip"

    def call() -> Iterator[Outgoing]:
        yield Outgoing("GET", server.base_url + "/x", {"User-Agent": "t", name: value}, b"")

    try:
        with pytest.raises(httpx.LocalProtocolError, match="cannot carry"):
            engine.run(call()).result(10)  # type: ignore[arg-type]
        assert server.connections == 0
    finally:
        engine.close()

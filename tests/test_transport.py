"""The default transport (`tinker_rest._transport`) against real sockets.

A scripted server on 127.0.0.1 reads each request and answers with the next reply of its script,
byte for byte: the framings, interim responses, stale keep-alive connections, truncation and bad
bytes that a real server sends only now and then. The ordinary path (every operation on the
reference server) runs through this transport in `test_client_e2e.py`.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import trustme

import tinker_rest._transport
from tinker_rest import APIConnectionError, NotFoundError, RestClient
from tinker_rest._transport import Transport

TIMEOUTS = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}


@dataclass
class Reply:
    """What the server does on reading a request: send ``data`` (None: nothing, ever), then
    close the connection if ``close``."""

    data: bytes | None
    close: bool = False
    unsolicited: bytes | None = None  # sent a moment after ``data``, before the connection closes
    early: bool = False  # sent once the request's head is read, without reading its body; closes
    reset: bool = False  # close with a TCP reset (SO_LINGER 0) right after ``data``


def not_found() -> Reply:
    body = b'{"detail":"no such training run"}'
    return Reply(
        b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def ok(body: bytes = b'{"ok":true}', *headers: str) -> Reply:
    head = "".join(h + "\r\n" for h in headers)
    return Reply(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n{head}\r\n".encode()
        + body
    )


class ScriptedServer:
    """Answers the requests it reads, in order, with ``replies``; records each request's bytes."""

    def __init__(self, replies: list[Reply], tls: ssl.SSLContext | None = None) -> None:
        self.replies = list(replies)
        self.requests: list[bytes] = []
        self.connections = 0
        self.closed_by_client = threading.Event()
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._sockets: list[socket.socket] = []
        self._stopping = False
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            sock, _ = self._listener.accept()
            if self._stopping:
                sock.close()
                self._listener.close()
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        if self._tls is not None:
            try:
                sock = self._tls.wrap_socket(sock, server_side=True)
            except (OSError, ssl.SSLError):
                sock.close()
                return
        self._sockets.append(sock)
        buffer = b""
        with sock:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = sock.recv(65536)
                    if not data:
                        self.closed_by_client.set()
                        return
                    buffer += data
                end = buffer.index(b"\r\n\r\n") + 4
                head = buffer[:end].lower()
                if self.replies[0].early:
                    self.requests.append(buffer[:end])
                    sock.sendall(self.replies.pop(0).data or b"")
                    time.sleep(0.2)
                    return  # the unread body makes the close a reset
                if b"transfer-encoding: chunked" in head:
                    while b"0\r\n\r\n" not in buffer[end:]:
                        buffer += sock.recv(65536)
                    end = buffer.index(b"0\r\n\r\n", end) + 5
                elif b"content-length:" in head:
                    length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
                    while len(buffer) < end + length:
                        buffer += sock.recv(65536)
                    end += length
                self.requests.append(buffer[:end])
                buffer = buffer[end:]
                reply = self.replies.pop(0)
                if reply.data is None:
                    sock.recv(1)  # silent until the client goes
                    return
                sock.sendall(reply.data)
                if reply.reset:
                    time.sleep(0.1)  # for the answer to be read: a reset discards unread bytes
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if reply.unsolicited is not None:
                    time.sleep(0.05)
                    sock.sendall(reply.unsolicited)
                    return
                if reply.close:
                    return

    def stop(self) -> None:
        self._stopping = True
        socket.create_connection(self._listener.getsockname()).close()  # wakes the accept
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(5)


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(*replies: Reply, tls: ssl.SSLContext | None = None) -> ScriptedServer:
        server = ScriptedServer(list(replies), tls)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def transport() -> Iterator[Transport]:
    with Transport() as t:
        yield t


def send(transport: httpx.BaseTransport, method: str, url: str, **kwargs: object) -> httpx.Response:
    timeout = kwargs.pop("timeout", TIMEOUTS)
    request = httpx.Request(method, url, extensions={"timeout": timeout}, **kwargs)  # type: ignore[arg-type]
    response = transport.handle_request(request)
    response.read()
    return response


# -- framing -----------------------------------------------------------------------------------


def test_content_length_body_and_keep_alive(scripted, transport):
    server = scripted(ok(b'{"n":1}'), ok(b'{"n":2}', "X-Extra:  padded  "))
    first = send(transport, "GET", server.url + "/a?q=1")
    second = send(transport, "GET", server.url + "/b")
    assert first.status_code == 200 and first.json() == {"n": 1}
    assert second.json() == {"n": 2}
    assert second.headers["x-extra"] == "padded"
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /a?q=1 HTTP/1.1\r\n")
    assert b"\r\nhost: 127.0.0.1:" in server.requests[0].lower()


def test_chunked_body_with_extensions_and_trailers(scripted, transport):
    server = scripted(
        Reply(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\nB\r\n, chunked!!\r\n0\r\nX-Trailer: t\r\n\r\n"
        ),
        ok(),
    )
    assert send(transport, "GET", server.url).content == b"hello, chunked!!"
    assert send(transport, "GET", server.url).json() == {"ok": True}
    assert server.connections == 1  # the connection was left clean for the next response


def test_body_until_close_and_connection_close(scripted, transport):
    server = scripted(
        Reply(b"HTTP/1.1 200 OK\r\n\r\nno length given", close=True),
        ok(),
    )
    assert send(transport, "GET", server.url).content == b"no length given"
    assert send(transport, "GET", server.url).json() == {"ok": True}
    assert server.connections == 2

    server = scripted(ok(b"{}", "Connection: close"), ok())
    send(transport, "GET", server.url)
    send(transport, "GET", server.url)
    assert server.connections == 2


def test_no_body_for_head_204_and_interim_responses(scripted, transport):
    server = scripted(
        Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),  # HEAD: the length, no body
        Reply(b"HTTP/1.1 204 No Content\r\n\r\n"),
        Reply(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
            + ok(b'{"after":"interim"}').data
        ),
    )
    head = send(transport, "HEAD", server.url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == "1000"
    assert send(transport, "DELETE", server.url).status_code == 204
    assert send(transport, "GET", server.url).json() == {"after": "interim"}
    assert server.connections == 1


def test_gzip_body_is_decoded(scripted, transport):
    body = gzip.compress(json.dumps({"big": "x" * 1000}).encode())
    server = scripted(ok(body, "Content-Encoding: gzip"))
    assert send(transport, "GET", server.url).json() == {"big": "x" * 1000}


def test_request_bodies_fixed_and_streamed(scripted, transport):
    server = scripted(ok(), ok())
    send(transport, "POST", server.url + "/p", json={"a": 1})
    send(transport, "POST", server.url + "/s", content=iter([b"part1-", b"part2"]))
    fixed, streamed = server.requests
    assert fixed.endswith(b'\r\n\r\n{"a":1}') and b"content-length: 7" in fixed.lower()
    assert streamed.endswith(b"\r\n\r\nb\r\npart1-part2\r\n0\r\n\r\n")


def test_large_response_over_many_reads(scripted, transport):
    body = json.dumps({"items": ["y" * 100] * 5000}).encode()  # about 500 KiB
    server = scripted(ok(body))
    assert send(transport, "GET", server.url).content == body


# -- stale connections and failures --------------------------------------------------------------


@pytest.mark.parametrize("how", ["close", "reset"])
def test_idle_connection_closed_by_server_is_replaced(scripted, transport, how):
    # The server closes (or resets) after its answer without saying so, as after an idle
    # timeout; the client finds out on reuse, under a second idle, so with no poll before it.
    server = scripted(Reply(ok().data, **{how: True}), ok(b'{"second":true}'))
    send(transport, "GET", server.url)
    time.sleep(0.3)
    assert send(transport, "GET", server.url).json() == {"second": True}
    assert server.connections == 2


def test_a_request_on_a_connection_closed_under_it_goes_again(scripted, transport):
    # The close lands after the request was sent: no poll before reuse could have seen it.
    server = scripted(ok(), Reply(b"", close=True), ok(b'{"replayed":true}'))
    send(transport, "GET", server.url)
    assert send(transport, "GET", server.url).json() == {"replayed": True}
    assert server.connections == 2 and len(server.requests) == 3


def test_only_a_request_safe_to_send_twice_goes_again(scripted, transport):
    server = scripted(ok(), Reply(b"", close=True), ok(), Reply(b"", close=True), ok())
    send(transport, "GET", server.url)
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        send(transport, "POST", server.url, json={"a": 1})  # not idempotent, no key
    send(transport, "GET", server.url)
    keyed = send(transport, "POST", server.url, json={}, headers={"X-Idempotency-Key": "k1"})
    assert keyed.status_code == 200
    assert [r.split(b" ")[0] for r in server.requests] == [
        b"GET",
        b"POST",
        b"GET",
        b"POST",
        b"POST",
    ]


def test_a_connection_idle_a_while_is_checked_before_reuse(scripted, transport, monkeypatch):
    monkeypatch.setattr(tinker_rest._transport, "STALE_CHECK_AFTER", 0.1)
    timeout = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    server = scripted(Reply(ok().data, unsolicited=timeout), ok(b'{"fresh":true}'))
    send(transport, "GET", server.url)
    time.sleep(0.3)
    # Read off the old connection, the 408 would pass for this request's answer.
    assert send(transport, "GET", server.url).json() == {"fresh": True}
    assert server.connections == 2


def test_new_connection_closed_without_answer(scripted, transport):
    server = scripted(Reply(b"", close=True))
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        send(transport, "GET", server.url)


def test_truncated_bodies(scripted, transport):
    server = scripted(
        Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b", close=True)
    )
    with pytest.raises(httpx.RemoteProtocolError, match="before the response was complete"):
        send(transport, "GET", server.url)
    server = scripted(
        Reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", close=True)
    )
    with pytest.raises(httpx.RemoteProtocolError, match="before the response was complete"):
        send(transport, "GET", server.url)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"ICY 200 OK\r\n\r\n", "not an HTTP/1.1 status line"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "not an HTTP/1.1 status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", "invalid Content-Length"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
            "conflicting Content-Length",
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", "not followed"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", "headers too large"),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "switched protocols"),
    ],
)
def test_malformed_responses(scripted, transport, reply, message):
    server = scripted(Reply(reply, close=True))
    with pytest.raises(httpx.RemoteProtocolError, match=message):
        send(transport, "GET", server.url)


def test_header_injection_is_refused_before_sending(scripted, transport):
    server = scripted(ok())
    with pytest.raises(httpx.LocalProtocolError, match="invalid header"):
        send(transport, "GET", server.url, headers={"X-API-Key": "key\r\nX-Evil: 1"})
    assert server.connections == 0


def test_read_timeout_on_a_silent_server(scripted, transport):
    server = scripted(Reply(None))
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        send(transport, "GET", server.url, timeout={**TIMEOUTS, "read": 0.2})
    assert time.monotonic() - started < 3


def test_connect_refused():
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    with Transport() as transport, pytest.raises(httpx.ConnectError, match="connecting to"):
        send(transport, "GET", f"http://127.0.0.1:{port}/")


def test_pool_limit_waits_then_times_out(scripted):
    server = scripted(Reply(None))
    outcome: list[BaseException] = []

    def hold_the_only_connection() -> None:
        try:
            send(transport, "GET", server.url, timeout={**TIMEOUTS, "read": 1.0})
        except httpx.ReadTimeout as exc:
            outcome.append(exc)

    with Transport(max_connections=1) as transport:
        holder = threading.Thread(target=hold_the_only_connection)
        holder.start()
        time.sleep(0.2)
        with pytest.raises(httpx.PoolTimeout):
            send(transport, "GET", server.url, timeout={**TIMEOUTS, "pool": 0.1})
        holder.join()
    assert len(outcome) == 1 and server.connections == 1


def test_close_closes_idle_connections(scripted):
    server = scripted(ok())
    transport = Transport()
    send(transport, "GET", server.url)
    transport.close()
    assert server.closed_by_client.wait(5)
    with pytest.raises(RuntimeError, match="closed"):
        send(transport, "GET", server.url)


def test_unsupported_scheme(transport):
    with pytest.raises(httpx.UnsupportedProtocol):
        send(transport, "GET", "ftp://127.0.0.1/x")


def test_an_answer_sent_before_the_body_was_read_is_returned(scripted, transport):
    too_large = b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 9\r\n\r\ntoo large"
    server = scripted(Reply(too_large, early=True))
    response = send(transport, "PUT", server.url, content=b"x" * (8 << 20))
    assert (response.status_code, response.content) == (413, b"too large")


@pytest.mark.parametrize(
    ("response_head", "request_headers"),
    [
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked", {}),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", {"Connection": "close"}),
    ],
    ids=["http/1.0 with transfer-encoding", "request said close"],
)
def test_connections_not_kept_after(scripted, transport, response_head, request_headers):
    server = scripted(Reply(response_head + b"\r\n\r\n2\r\n{}\r\n0\r\n\r\n"), ok())
    assert send(transport, "GET", server.url, headers=request_headers).content == b"{}"
    send(transport, "POST", server.url, json={})  # not replayable: needs a fresh connection
    assert server.connections == 2


@pytest.mark.parametrize("method", ["GÉT", "GET / HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET", ""])
def test_invalid_methods_are_refused_before_sending(scripted, transport, method):
    server = scripted(ok())
    with pytest.raises(httpx.LocalProtocolError, match="invalid method"):
        send(transport, method, server.url)
    assert server.connections == 0


def test_content_length_too_long_for_an_int(scripted, transport):
    server = scripted(Reply(b"HTTP/1.1 200 OK\r\nContent-Length: " + b"1" * 5000 + b"\r\n\r\n"))
    with pytest.raises(httpx.RemoteProtocolError, match="invalid Content-Length"):
        send(transport, "GET", server.url)


def test_host_names_go_out_in_their_ascii_form():
    with Transport() as transport, pytest.raises(httpx.ConnectError) as failure:
        send(transport, "GET", "http://straße.invalid/", timeout={**TIMEOUTS, "connect": 2.0})
    assert "xn--strae-oqa.invalid" in str(failure.value)  # not IDNA 2003's "strasse"
    with Transport() as transport, pytest.raises(httpx.ConnectError):
        send(transport, "GET", f"http://{'a' * 64}.invalid/")  # a label IDNA cannot encode


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_tls(ca: trustme.CA, name: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    return context


def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_tls_round_trip(scripted, ca):
    server = scripted(ok(b'{"tls":true}'), ok(), tls=server_tls(ca, "127.0.0.1"))
    with Transport(ssl_context=client_tls(ca)) as transport:
        assert send(transport, "GET", server.url).json() == {"tls": True}
        send(transport, "GET", server.url)
    assert server.connections == 1


def test_tls_connection_reset_while_idle_is_replaced(scripted, ca):
    server = scripted(
        Reply(ok().data, reset=True), ok(b'{"tls":"again"}'), tls=server_tls(ca, "127.0.0.1")
    )
    with Transport(ssl_context=client_tls(ca)) as transport:
        send(transport, "GET", server.url)
        time.sleep(0.05)
        assert send(transport, "GET", server.url).json() == {"tls": "again"}
    assert server.connections == 2


def test_tls_refuses_a_certificate_for_another_name(scripted, ca):
    server = scripted(ok(), tls=server_tls(ca, "elsewhere.example"))
    with (
        Transport(ssl_context=client_tls(ca)) as transport,
        pytest.raises(httpx.ConnectError, match="TLS handshake"),
    ):
        send(transport, "GET", server.url)


def test_tls_refuses_an_untrusted_certificate(scripted, ca):
    server = scripted(ok(), tls=server_tls(ca, "127.0.0.1"))
    with Transport() as transport, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY"):
        send(transport, "GET", server.url)


# -- proxies from the environment and the client on top ------------------------------------------

PROXY_VARS = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"]


@pytest.fixture
def no_proxy_env(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def test_proxy_from_the_environment(scripted, no_proxy_env):
    proxy = scripted(not_found())
    no_proxy_env.setenv("HTTP_PROXY", proxy.url)
    with (
        RestClient("http://api.invalid:8000", "key", max_retries=0) as client,
        pytest.raises(NotFoundError),
    ):
        client.get_training_run("run-1").result()
    assert proxy.requests[0].startswith(
        b"GET http://api.invalid:8000/api/v1/training_runs/run-1?access_scope=owned HTTP/1.1\r\n"
    )


def test_no_proxy_is_honoured(scripted, no_proxy_env):
    server = scripted(not_found())
    no_proxy_env.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    no_proxy_env.setenv("NO_PROXY", "127.0.0.1")
    with RestClient(server.url, "key", max_retries=0) as client, pytest.raises(NotFoundError):
        client.get_training_run("run-1").result()
    assert server.requests[0].startswith(
        b"GET /api/v1/training_runs/run-1?access_scope=owned HTTP/1.1\r\n"
    )


def test_client_reports_a_transport_failure_as_connection_error(scripted):
    server = scripted(Reply(b"garbage\r\n\r\n", close=True))
    with (
        RestClient(server.url, "key", max_retries=0) as client,
        pytest.raises(APIConnectionError, match="status line"),
    ):
        client.get_training_run("run-1").result()

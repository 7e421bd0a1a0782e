"""The default transport for API calls: HTTP/1.1 over a small pool of keep-alive connections.

API calls are small JSON requests and responses, and on them ``httpx.HTTPTransport`` spends most
of a call's CPU in httpcore's pool and h11's state machine: about 400 µs of the 550 µs a call
costs the client on a loopback server, against about 130 µs for the same bytes read straight from
the socket (``make bench``; the figures are in the README). This transport does the same job for
what the API needs, in a few functions: it writes the request, reads the status line and headers,
frames the body by the rules of RFC 9112 section 6 (no body, ``Transfer-Encoding: chunked``,
``Content-Length``, or up to the close) and hands back an ``httpx.Response`` with the whole body
read, so the rest of the client sees httpx's types either way.

What it does not do, it leaves to httpx: a proxy (the client then uses ``httpx.HTTPTransport``),
HTTP/2, and streaming bodies (downloads go through ``httpx``). Errors are httpx's own
(``ConnectError``, ``ReadTimeout``, ``RemoteProtocolError``...), so callers handle one family.
"""

from __future__ import annotations

import os
import re
import select
import socket
import ssl
import threading
import time
import weakref

import httpx

__all__ = ["Transport", "api_transport"]

MAX_HEAD_BYTES = 64 * 1024  # status line and headers together
RECV_BYTES = 64 * 1024
NO_BODY_STATUSES = frozenset({204, 304})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an HTTP method (RFC 9110 token)
# A request that finds its kept-alive connection closed goes again on another if it is safe to
# send twice: an idempotent method, or a request with an idempotency key (as every non-GET call
# of RestClient has).
REPLAYABLE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
IDEMPOTENCY_HEADER = "X-Idempotency-Key"
# A connection idle for longer than this is checked (one poll) before reuse, for a close or an
# unsolicited response (servers send "408 Request Timeout" on idle connections). Sooner than
# that, a close is found on use and the request replayed: a poll per call is a system call that
# hands the GIL to another thread, and under load those handoffs cost more than the call's own
# work (`make bench`, no collapse under load).
STALE_CHECK_AFTER = 1.0

Origin = tuple[str, str, int]


def api_transport(base_url: str, limits: httpx.Limits) -> httpx.BaseTransport:
    """The transport for API calls to ``base_url``: a :class:`Transport`, or, when the
    environment names a proxy for it (``HTTPS_PROXY``, ``ALL_PROXY``... less ``NO_PROXY``, as
    ``httpx.Client`` reads them), ``httpx.HTTPTransport`` through that proxy."""
    import urllib.parse
    import urllib.request

    url = urllib.parse.urlsplit(base_url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if proxy and not urllib.request.proxy_bypass(url.hostname or ""):
        return httpx.HTTPTransport(limits=limits, proxy=proxy)
    return Transport(
        max_connections=limits.max_connections or 16,
        keepalive_expiry=5.0 if limits.keepalive_expiry is None else limits.keepalive_expiry,
    )


class _Connection:
    """One socket to one origin. It goes back to the pool only with nothing left unread."""

    __slots__ = ("idle_since", "origin", "sock", "timeout")

    def __init__(self, origin: Origin, sock: socket.socket) -> None:
        self.origin = origin
        self.sock = sock
        self.timeout: float | None = sock.gettimeout()
        self.idle_since = 0.0

    @classmethod
    def open(
        cls,
        origin: Origin,
        timeout: float | None,
        tls: ssl.SSLContext | None,
        request: httpx.Request,
    ) -> _Connection:
        """Connect to ``origin``, with TLS when ``tls`` is given."""
        _, host, port = origin
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(
                f"connecting to {host}:{port}: {exc}", request=request
            ) from exc
        except (OSError, ValueError) as exc:  # ValueError: a host name IDNA cannot encode
            raise httpx.ConnectError(
                f"connecting to {host}:{port}: {exc}", request=request
            ) from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=host)
        except TimeoutError as exc:
            sock.close()
            raise httpx.ConnectTimeout(
                f"TLS handshake with {host}: {exc}", request=request
            ) from exc
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            sock.close()
            raise httpx.ConnectError(f"TLS handshake with {host}: {exc}", request=request) from exc
        return cls(origin, sock)

    def set_timeout(self, timeout: float | None) -> None:
        if timeout != self.timeout:
            self.sock.settimeout(timeout)
            self.timeout = timeout

    def is_stale(self) -> bool:
        """Whether an idle connection was closed (or spoke out of turn) since its last use."""
        try:
            if hasattr(select, "poll"):
                poller = select.poll()
                poller.register(self.sock, select.POLLIN)
                return bool(poller.poll(0))
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        self.sock.close()


# Every transport, so that a forked child drops the connections it shares with its parent.
_TRANSPORTS: weakref.WeakSet[Transport] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for transport in list(_TRANSPORTS):
        transport._forget_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Transport(httpx.BaseTransport):
    """An ``httpx`` transport for API calls: HTTP/1.1, keep-alive, whole bodies.

    Args:
        max_connections: the most connections open at once; a request waits for one to come
            free for up to the request's ``pool`` timeout.
        keepalive_expiry: seconds an idle connection is kept for reuse.
        ssl_context: the TLS settings for ``https`` origins; by default httpx's (certifi, and
            ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set).
    """

    def __init__(
        self,
        max_connections: int = 16,
        keepalive_expiry: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._idle: list[_Connection] = []  # the most recently used last
        self._open = 0
        self._closed = False
        self._lock = threading.Condition()
        _TRANSPORTS.add(self)

    def _forget_connections(self) -> None:
        """In a forked child: a response on a socket shared with the parent could be read by
        either, so the child starts with no connections (and a lock no parent thread holds)."""
        idle, self._idle = self._idle, []
        self._lock = threading.Condition()
        self._open = 0
        for connection in idle:
            connection.close()  # this process's copy of the descriptor only

    # -- httpx.BaseTransport -------------------------------------------------------------

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
        # The ASCII (IDNA 2008) form of the host, the one httpx puts in the Host header.
        host = url.raw_host.decode("ascii")
        origin: Origin = (scheme, host, url.port or (443 if scheme == "https" else 80))
        timeouts = request.extensions.get("timeout", {})
        head, chunked = _request_head(request)
        body = request.read()
        if chunked:  # a streamed body of unknown length: the whole of it, as one chunk
            body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
        replayable = request.method in REPLAYABLE_METHODS or IDEMPOTENCY_HEADER in request.headers
        for _ in range(self._max_connections + 1):  # each stale connection is one fewer
            connection = self._acquire(origin, timeouts.get("pool"), request)
            reused = connection is not None
            if connection is None:
                try:
                    tls = self._tls_context() if scheme == "https" else None
                    connection = _Connection.open(origin, timeouts.get("connect"), tls, request)
                except BaseException:
                    self._release(None, reusable=False)
                    raise
            try:
                response, reusable = _exchange(connection, request, head, body, timeouts)
            except _StaleConnection:
                self._release(connection, reusable=False)
                if reused and replayable:
                    # A kept-alive connection the server had closed: the request goes again, on
                    # the next connection. (Had the server read it after all, a second attempt
                    # is still safe: the method is idempotent, or the request carries a key.)
                    continue
                raise httpx.RemoteProtocolError(
                    "the server closed the connection without sending a response",
                    request=request,
                ) from None
            except BaseException:
                self._release(connection, reusable=False)
                raise
            self._release(connection, reusable)
            return response
        raise httpx.RemoteProtocolError(
            "every kept-alive connection had been closed by the server", request=request
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._lock.notify_all()
        for connection in idle:
            connection.close()

    # -- the pool ------------------------------------------------------------------------

    def _acquire(
        self, origin: Origin, timeout: float | None, request: httpx.Request
    ) -> _Connection | None:
        """An idle connection to ``origin``, or None: a slot is held for a new one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        stale: list[_Connection] = []
        try:
            with self._lock:
                while True:
                    if self._closed:
                        raise RuntimeError("this transport is closed")
                    now = time.monotonic()
                    for i in range(len(self._idle) - 1, -1, -1):
                        connection = self._idle[i]
                        if connection.origin != origin:
                            continue
                        del self._idle[i]
                        idle = now - connection.idle_since
                        if idle > self._keepalive_expiry or (
                            idle > STALE_CHECK_AFTER and connection.is_stale()
                        ):
                            stale.append(connection)
                            self._open -= 1
                            continue
                        return connection
                    if self._open >= self._max_connections and self._idle:
                        stale.append(self._idle.pop(0))  # the longest idle, to another origin
                        self._open -= 1
                    if self._open < self._max_connections:
                        self._open += 1
                        return None
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise httpx.PoolTimeout(
                            f"no connection came free within {timeout} s", request=request
                        )
                    self._lock.wait(remaining)
        finally:
            for connection in stale:
                connection.close()

    def _release(self, connection: _Connection | None, reusable: bool) -> None:
        """Put a connection back for reuse, or close it and free its slot."""
        with self._lock:
            if connection is not None and reusable and not self._closed:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            else:
                self._open -= 1
                reusable = False
            self._lock.notify()
        if connection is not None and not reusable:
            connection.close()

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context


class _StaleConnection(Exception):
    """A reused connection turned out closed before any byte of a response came back."""


# -- one exchange on one connection ------------------------------------------------------------


def _request_head(request: httpx.Request) -> tuple[bytes, bool]:
    """The request line and headers, refusing what would break the message's framing; and
    whether the body goes chunked."""
    target = request.url.raw_path
    if not _TOKEN.fullmatch(request.method):
        raise httpx.LocalProtocolError(f"invalid method {request.method!r}", request=request)
    lines = [request.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    for name, value in request.headers.raw:
        if b"\n" in value or b"\r" in value or b"\n" in name or b"\r" in name or b":" in name:
            raise httpx.LocalProtocolError(f"invalid header {name!r}", request=request)
        lines += [name, b": ", value, b"\r\n"]
    lines.append(b"\r\n")
    return b"".join(lines), "transfer-encoding" in request.headers


def _asks_to_close(request: httpx.Request) -> bool:
    value = request.headers.get("connection")
    return value is not None and "close" in {t.strip().lower() for t in value.split(",")}


def _exchange(
    connection: _Connection,
    request: httpx.Request,
    head: bytes,
    body: bytes,
    timeouts: dict[str, float | None],
) -> tuple[httpx.Response, bool]:
    """Send one request and read its response: the response, and whether the connection can
    carry another."""
    sock = connection.sock
    connection.set_timeout(timeouts.get("write"))
    write_failed = False
    try:
        sock.sendall(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            sock.sendall(body)
    except TimeoutError as exc:
        raise httpx.WriteTimeout(f"sending the request: {exc}", request=request) from exc
    except OSError:  # a closed or reset connection (ssl.SSLEOFError over TLS)
        # A server may answer before it has read the whole request (a 413, say) and close:
        # that answer is read below. With none, the connection was dead: _StaleConnection.
        write_failed = True

    connection.set_timeout(timeouts.get("read"))
    reader = _Reader(connection, request)
    while True:
        status, reason, version, headers = reader.head()
        if not 100 <= status < 200 or status == 101:
            break  # an interim response (100 Continue, 103 Early Hints) is skipped
    if status == 101:
        raise httpx.RemoteProtocolError("the server switched protocols", request=request)

    closing = write_failed or _asks_to_close(request)
    keep_alive = version == b"HTTP/1.1" and not closing
    framing: bytes | None = None
    length: int | None = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"connection":
            tokens = {t.strip().lower() for t in value.split(b",")}
            if b"close" in tokens:
                keep_alive = False
            elif b"keep-alive" in tokens and not closing:
                keep_alive = True
        elif lowered == b"transfer-encoding":
            framing = value.strip().lower()
        elif lowered == b"content-length":
            length = _content_length(value, length, request)

    if request.method == "HEAD" or status in NO_BODY_STATUSES:
        content = b""
    elif framing is not None:
        if version == b"HTTP/1.0":  # Transfer-Encoding in HTTP/1.0 is faulty framing
            keep_alive = False
        if framing.rsplit(b",", 1)[-1].strip() == b"chunked":
            content = reader.chunked()
        else:
            content, keep_alive = reader.until_close(), False
    elif length is not None:
        content = reader.exactly(length)
    else:
        content, keep_alive = reader.until_close(), False

    response = httpx.Response(
        status,
        headers=headers,
        stream=httpx.ByteStream(content),
        request=request,
        extensions={"http_version": version, "reason_phrase": reason},
    )
    return response, keep_alive and not reader.buffer


def _content_length(value: bytes, previous: int | None, request: httpx.Request) -> int:
    values = {v.strip() for v in value.split(b",")}
    if len(values) != 1 or not (digits := values.pop()).isdigit() or len(digits) > 18:
        raise httpx.RemoteProtocolError(f"invalid Content-Length {value!r}", request=request)
    length = int(digits)
    if previous is not None and previous != length:
        raise httpx.RemoteProtocolError("conflicting Content-Length headers", request=request)
    return length


class _Reader:
    """Reads one response off a connection's socket."""

    def __init__(self, connection: _Connection, request: httpx.Request) -> None:
        self.sock = connection.sock
        self.request = request
        # A bytearray: appending to it is amortised O(1), where a growing bytes would be copied
        # whole on every read of a large body.
        self.buffer = bytearray()
        self.received_any = False

    def _more(self) -> bool:
        """Read what the socket has into the buffer; False at the end of the stream."""
        try:
            data = self.sock.recv(RECV_BYTES)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(f"reading the response: {exc}", request=self.request) from exc
        except OSError as exc:  # reset, or ssl.SSLEOFError: the connection is gone
            if not self.received_any:
                raise _StaleConnection from exc
            raise httpx.ReadError(f"reading the response: {exc}", request=self.request) from exc
        if not data:
            if not self.received_any:
                raise _StaleConnection
            return False
        self.received_any = True
        self.buffer += data
        return True

    def _cut_short(self) -> httpx.RemoteProtocolError:
        return httpx.RemoteProtocolError(
            "the server closed the connection before the response was complete",
            request=self.request,
        )

    def head(self) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
        """The status code, reason, version and headers of the next response."""
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise httpx.RemoteProtocolError("response headers too large", request=self.request)
            if not self._more():
                raise self._cut_short()
        if end > MAX_HEAD_BYTES:
            raise httpx.RemoteProtocolError("response headers too large", request=self.request)
        lines = bytes(self.buffer[:end]).split(b"\r\n")
        del self.buffer[: end + 4]
        version, _, rest = lines[0].partition(b" ")
        code, _, reason = rest.partition(b" ")
        if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
            raise httpx.RemoteProtocolError(
                f"not an HTTP/1.1 status line: {lines[0][:80]!r}", request=self.request
            )
        headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
                raise httpx.RemoteProtocolError(
                    f"malformed header line {line[:80]!r}", request=self.request
                )
            headers.append((name, value.strip(b" \t")))
        return int(code), reason, version, headers

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._more():
                raise self._cut_short()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise httpx.RemoteProtocolError("chunk line too long", request=self.request)
            if not self._more():
                raise self._cut_short()
        data = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return data

    def chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size_field = self.line().split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                size = -1
            if size < 0 or not size_field.isalnum():
                raise httpx.RemoteProtocolError(
                    f"invalid chunk size {size_field[:20]!r}", request=self.request
                )
            if size == 0:
                while self.line():  # trailer fields, ignored, up to the empty line
                    pass
                return b"".join(chunks)
            chunks.append(self.exactly(size))
            if self.exactly(2) != b"\r\n":
                raise httpx.RemoteProtocolError("chunk not followed by CRLF", request=self.request)

    def until_close(self) -> bytes:
        while self._more():
            pass
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

"""The engine every API call goes through: libcurl's multi interface (pycurl), on one thread.

Why libcurl, measured by ``scripts/bench.py`` (the README has the table): against the canned
loopback server it made a sequential call for about a fifth of the client CPU of ``httpx``,
httpcore and pyqwest, and with 256 calls in flight against a server 50 ms away one thread driving
a ``CurlMulti`` carried the most calls a second. libcurl does the HTTP: framing, keep-alive and
the pool, HTTP/2 over TLS where the server offers it (ALPN, one connection carrying many
streams), TLS, proxies from the environment (``http_proxy``, ``https_proxy``, ``no_proxy``...),
gzip, and it replaces a kept-alive connection the server closed.

What this module adds is glue: one thread runs the multi handle's event loop (``socket_action``
over ``epoll``/``poll``), so that any number of calls are in flight without a thread each; calls
are generators (see :meth:`Engine.run`) that yield a request to send or seconds to wait, which is
how the retry policy and archive polling wait without holding a thread; and the limits that
make every call end: a deadline per attempt over the whole exchange, a cap on the decompressed
response body, a bound on interim (1xx) responses, and refusal of the framing h11 refuses.

With many calls in flight against a far service the client is bound by CPU, not the network,
and the engine's thread is the busier one; its per-call work is kept small, each step measured
with the far-service bench (``scripts/bench.py --only far``; py-spy, cProfile, ``strace -c``):
futures are completed together once per turn of the loop (:meth:`Engine._settle`), handles keep
their options between calls (:class:`_Transfer`), sockets are polled directly
(:class:`_Sockets`), and header lines are read once at the end of a transfer.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import heapq
import itertools
import logging
import math
import os
import re
import select
import selectors
import socket
import threading
import time
import weakref
from collections.abc import Callable, Generator
from typing import Any, TypeVar

import httpx

from tinker_rest._errors import ResponseTooLargeError
from tinker_rest._futures import APIFuture, mark_engine_thread

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "UNSENDABLE", "Call", "Engine", "Outgoing"]

T = TypeVar("T")
logger = logging.getLogger("tinker_rest")

# A call is a generator: it yields an Outgoing request to send (and is resumed with the response,
# or has the transport error thrown into it) or a float of seconds to wait; its return value
# completes its future.
Call = Generator["Outgoing | float", "httpx.Response | None", T]

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# A server may send interim responses (100 Continue, 103 Early Hints) before the answer; more
# than this many is a server that will never answer.
MAX_INTERIM_RESPONSES = 8
# What a header can not carry: it would change the request's framing.
UNSENDABLE = re.compile("[\r\n\0]")
_HTTP_VERSIONS = {1: b"HTTP/1.0", 2: b"HTTP/1.1", 3: b"HTTP/2", 30: b"HTTP/3"}
# A handle keeps libcurl's copy of a request body smaller than this until its next call; a
# larger one is freed when the call's transfer is finished.
_KEPT_BODY = 64 * 1024


class Outgoing:
    """A request to send: what libcurl needs, and the ``httpx.Request`` built only when
    something asks for it (an error message, a redirect's base URL). Building an
    ``httpx.Request`` for every call cost more client CPU than libcurl's whole exchange
    (``make bench``, far-service figure)."""

    __slots__ = ("_request", "body", "headers", "method", "url")

    def __init__(self, method: str, url: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self._request: httpx.Request | None = None

    def httpx_request(self) -> httpx.Request:
        """The same request as an ``httpx.Request``."""
        if self._request is None:
            self._request = httpx.Request(
                self.method, self.url, headers=self.headers, content=self.body
            )
        return self._request


class _Response(httpx.Response):
    """An ``httpx.Response`` holding a body already read, whose ``request`` is built on first
    use (see :class:`Outgoing`).

    The body is set as read rather than passed as ``content=``, which httpx copies through its
    stream and decoder machinery: that was a fifth of the engine thread's CPU per call.
    """

    def __init__(
        self,
        outgoing: Outgoing,
        status: int,
        headers: list[tuple[bytes, bytes]],
        content: bytes,
        extensions: dict[str, Any],
    ) -> None:
        # A stream given, httpx does not read it: the body is set as read below.
        super().__init__(
            status, headers=headers, stream=httpx.ByteStream(content), extensions=extensions
        )
        self._content = content
        self.is_closed = self.is_stream_consumed = True  # as after read()
        self._outgoing = outgoing

    @property
    def request(self) -> httpx.Request:
        if self._request is None:
            self._request = self._outgoing.httpx_request()
        return self._request

    @request.setter
    def request(self, value: httpx.Request) -> None:
        self._request = value


def _ca_options() -> dict[int, str]:
    """The trust store: ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set, else certifi's bundle
    (as httpx does), set explicitly so that the bundled libcurl does not guess."""
    import pycurl

    options: dict[int, str] = {}
    cert_file, cert_dir = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cert_file:
        options[pycurl.CAINFO] = cert_file
    elif not cert_dir:
        import certifi

        options[pycurl.CAINFO] = certifi.where()
    if cert_dir:
        options[pycurl.CAPATH] = cert_dir
    return options


class _Transfer:
    """An easy handle and the attempt it carries, with what the attempt collects as it runs.

    One per handle, kept with it from one attempt to the next: its callbacks and the options
    that do not change are set once, not per call (see ``Engine._prepare``).
    """

    __slots__ = (
        "body",
        "curl",
        "empty_set",
        "failure",
        "interim",
        "limit",
        "lines",
        "received",
        "request",
        "shape",
        "task",
    )

    def __init__(self, curl: Any, limit: int) -> None:
        self.curl = curl
        self.limit = limit
        self.shape: tuple[str, str | None, bool] | None = None  # what the options are set for
        self.empty_set = False  # whether the handle holds an empty request body
        self.start(None, None)

    def start(self, request: Outgoing | None, task: _Task | None) -> None:
        """Begin an attempt (or, with None, forget the last one and what it collected)."""
        self.request = request
        self.task = task
        self.body: list[bytes] = []
        self.received = 0
        self.lines: list[bytes] = []  # the final response's header lines, read at the end
        self.interim = 0
        self.failure: Exception | None = None

    def on_body(self, data: bytes) -> int | None:
        self.received += len(data)
        if self.received > self.limit:
            assert self.request is not None
            self.failure = ResponseTooLargeError(self.request.httpx_request(), self.limit)
            return 0  # aborts the transfer
        self.body.append(data)
        return None

    def on_header(self, line: bytes) -> int | None:
        # Kept to the least per line (a call per header line, on the engine's thread); the
        # lines are checked once, in Engine._finish.
        if line[:5] == b"HTTP/":
            self.lines = []
            status = line.split(b" ", 2)
            if len(status) > 1 and status[1][:1] == b"1":  # an interim (1xx) response
                self.interim += 1
                if self.interim > MAX_INTERIM_RESPONSES:
                    assert self.request is not None
                    self.failure = httpx.RemoteProtocolError(
                        f"more than {MAX_INTERIM_RESPONSES} interim (1xx) responses",
                        request=self.request.httpx_request(),
                    )
                    return 0  # aborts the transfer
        else:
            self.lines.append(line)
        return None


class _Task:
    """A call in progress: its generator and the future its result completes."""

    __slots__ = ("call", "future")

    def __init__(self, call: Call[Any], future: APIFuture[Any]) -> None:
        self.call = call
        self.future = future


# Every engine, so that a forked child forgets the ones it inherited.
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()
# A forked child keeps its parent's curl handles here, never cleaned up: cleaning up would close
# (and over TLS or HTTP/2, write to) connections the parent is still using.
_INHERITED: list[object] = []


def _after_fork_in_child() -> None:
    for engine in list(_ENGINES):
        engine._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _at_exit() -> None:
    """The program is ending without close(): let each engine's thread finish every call it
    was given (waiting ones included), then stop, so the interpreter can exit."""
    for engine in list(_ENGINES):
        engine._stop_when_idle()


# Runs before the interpreter joins its threads, as concurrent.futures' own exit hook does.
threading._register_atexit(_at_exit)  # type: ignore[attr-defined]


class Engine:
    """Runs calls to completion on one thread driving a libcurl multi handle.

    Args:
        max_in_flight: the most calls running at once; more wait in order, not started.
        max_connections: the most connections to one host (HTTP/1.1 carries one call at a time
            on each; HTTP/2 many). It bounds the calls running too: libcurl counts the time a
            transfer waits for a free connection against its connect timeout, so with more
            running than connections the ones queued inside libcurl failed as timeouts (220 of
            1,500 deletes against the reference server with 256 connections; none with the
            extra calls waiting here instead).
        timeout: seconds for one attempt, from the first byte sent to the last byte read.
        connect_timeout: seconds to connect, TLS included.
        max_response_bytes: the most bytes of a response body, after decompression.
        transport: an ``httpx`` transport to send through instead of libcurl (tests, custom
            routing); its ``handle_request`` runs on the engine's thread, one at a time.
    """

    def __init__(
        self,
        *,
        max_in_flight: int,
        max_connections: int,
        timeout: float,
        connect_timeout: float,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
        if max_response_bytes < 1:
            raise ValueError(f"max_response_bytes must be at least 1, not {max_response_bytes}")
        self.max_in_flight = max_in_flight
        self.max_connections = max_connections
        self._admit = min(max_in_flight, max_connections)  # see max_connections above
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_response_bytes = max_response_bytes
        self.transport = transport
        self._lock = threading.Lock()
        self._closed = False
        self._exiting = False
        self._running = 0  # calls admitted (started, not yet ended)
        self._waiting: collections.deque[_Task] = collections.deque()  # beyond max_in_flight
        self._inbox: collections.deque[Callable[[], None]] = collections.deque()
        self._thread: threading.Thread | None = None
        self._wake_w: socket.socket | None = None
        self._wake_pending = False
        _ENGINES.add(self)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def concurrency(self) -> int:
        """The most calls running at once: ``max_in_flight``, or ``max_connections`` if fewer."""
        return self._admit

    # -- any thread ------------------------------------------------------------------------

    def run(self, call: Call[T]) -> APIFuture[T]:
        """Start a call (at once, or when one of ``max_in_flight`` comes free); its future.

        Raises:
            RuntimeError: the engine is closed.
        """
        future: APIFuture[T] = APIFuture()
        task = _Task(call, future)
        with self._lock:
            if self._closed:
                raise RuntimeError("this RestClient is closed; create a new one")
            # Admitted here, under the lock, not when the thread gets to it: close() then
            # cancels exactly the calls beyond the limit, whatever the thread is doing.
            if self._running < self._admit:
                self._running += 1
                future.set_running_or_notify_cancel()
                self._post(lambda: self._step(task, None, None))
            else:
                self._waiting.append(task)
        return future

    def close(self) -> None:
        """Let running calls finish (each within its deadlines), cancel the waiting ones, and
        stop the thread; a call waiting to retry ends with the error of its last attempt."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            waiting, self._waiting = list(self._waiting), collections.deque()
            thread = self._thread
            if thread is not None:
                self._inbox.append(lambda: None)
                self._wake()
        for task in waiting:
            task.future.cancel()
            task.call.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _post(self, job: Callable[[], None]) -> None:
        """Hand a job to the engine's thread, starting the thread on first use. Holds _lock."""
        self._inbox.append(job)
        if self._thread is None:
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._thread = threading.Thread(target=self._loop, name="tinker-rest-engine")
            self._thread.start()
        else:
            self._wake()

    def _wake(self) -> None:
        """Wake the thread, unless a wake-up is pending already (one system call, and one
        switch of threads, per burst of calls rather than per call). Holds _lock."""
        if self._wake_pending:
            return
        self._wake_pending = True
        assert self._wake_w is not None
        with contextlib.suppress(BlockingIOError):  # wake-ups pending already: enough
            self._wake_w.send(b"\0")

    def _stop_when_idle(self) -> None:
        with self._lock:
            self._exiting = True
            if self._thread is not None and not self._closed:
                self._post(lambda: None)

    def _forget_after_fork(self) -> None:
        """In a forked child: the parent's thread, multi handle and connections are not ours."""
        _INHERITED.append(self.__dict__.copy())
        self._lock = threading.Lock()
        self._thread = None
        self._wake_w = None
        self._wake_pending = False
        self._inbox = collections.deque()
        self._waiting = collections.deque()
        self._running = 0

    # -- the engine's thread ---------------------------------------------------------------

    def _loop(self) -> None:
        import pycurl

        mark_engine_thread()
        self._sockets = _Sockets()
        self._sockets.watch(self._wake_r.fileno(), _IN, _WAKE)
        self._timers: list[tuple[float, int, _Task]] = []
        self._outcomes: list[tuple[APIFuture[Any], Any, BaseException | None]] = []
        self._sequence = itertools.count()
        self._curl_deadline: float | None = None
        self._free: list[_Transfer] = []  # idle handles, each with its transfer
        self._active: dict[Any, _Transfer] = {}
        self._transfers = 0
        self._ca = _ca_options()
        multi = self._multi = pycurl.CurlMulti()
        multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, self.max_connections)
        multi.setopt(pycurl.M_MAXCONNECTS, self.max_connections)
        try:
            while True:
                self._drain_inbox()
                self._settle()
                if self._stopped():
                    return
                now = time.monotonic()
                wait = 60.0
                if self._curl_deadline is not None:
                    wait = min(wait, self._curl_deadline - now)
                if self._timers:
                    wait = min(wait, self._timers[0][0] - now)
                for fd, events in self._sockets.wait(max(wait, 0.0)):
                    kind = self._sockets.kind(fd)
                    if kind is _CURL:
                        multi.socket_action(
                            fd,
                            (pycurl.CSELECT_IN if events & ~_OUT else 0)
                            | (pycurl.CSELECT_OUT if events & ~_IN else 0),
                        )
                    elif kind is _WAKE:
                        # Empty the socket first, then clear the flag: cleared first, a wake-up
                        # sent in between was swallowed while the flag stayed set, so every
                        # later call waited unseen in the inbox (a hang found by the bench).
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except BlockingIOError:
                            pass
                        with self._lock:
                            self._wake_pending = False
                    elif kind is _IDLE:
                        self._sockets.forget(fd)
                        _shut_down(fd)
                    else:  # set aside (curl no longer watches it), or unknown
                        self._sockets.forget(fd)
                now = time.monotonic()
                if self._curl_deadline is not None and self._curl_deadline <= now:
                    self._curl_deadline = None
                    multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
                self._finish_transfers()
                while self._timers and self._timers[0][0] <= time.monotonic():
                    _, _, task = heapq.heappop(self._timers)
                    self._step(task, None, None)
        finally:
            for idle in self._free:
                idle.curl.close()
            multi.close()  # before the selector: closing connections calls _on_socket
            self._sockets.close()
            self._wake_r.close()

    def _stopped(self) -> bool:
        """Whether the thread may end now (closing, or the program ending, and nothing to
        do); if so, it is forgotten at once, so that a later call starts a new one."""
        with self._lock:
            if not (self._closed or self._exiting) or self._running or self._transfers:
                return False
            if self._inbox:
                return False
            self._thread = None
            self._wake_w, wake_w = None, self._wake_w
        if wake_w is not None:
            wake_w.close()
        return True

    def _settle(self) -> None:
        """Complete the futures of the calls that ended since the last turn, all together,
        just before the thread waits for sockets again.

        Completed one by one as each call ended, every completion woke a waiting thread
        (a ``result()``, a done-callback's semaphore), which then took the GIL from this
        thread in the middle of its next libcurl call; with 256 calls in flight the engine
        spent most of its time waiting for the GIL (7.4 futex system calls per call, measured
        with ``strace -c``). Together, the woken threads run while this one waits on sockets.
        """
        outcomes, self._outcomes = self._outcomes, []
        for future, value, exc in outcomes:
            try:
                if exc is None:
                    future.set_result(value)
                else:
                    future.set_exception(exc)
            except BaseException:  # a done-callback raised past concurrent.futures' own guard
                # (SystemExit, say): the other futures of the batch, and the thread, go on.
                logger.exception("a done-callback of a tinker-rest call raised")

    def _drain_inbox(self) -> None:
        while self._inbox:
            self._inbox.popleft()()

    def _on_socket(self, what: int, fd: int, multi: object, data: object) -> None:
        if what == 4:  # CURL_POLL_REMOVE
            self._sockets.set_aside(fd)
        else:  # CURL_POLL_IN 1, _OUT 2, _INOUT 3
            self._sockets.watch(fd, (_IN if what & 1 else 0) | (_OUT if what & 2 else 0), _CURL)

    def _on_timer(self, timeout_ms: int) -> None:
        self._curl_deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000

    def _step(
        self, task: _Task, response: httpx.Response | None, failure: BaseException | None
    ) -> None:
        """Resume a call with the outcome of what it last asked for; act on what it asks next."""
        try:
            asked = task.call.send(response) if failure is None else task.call.throw(failure)
        except StopIteration as stop:
            self._outcomes.append((task.future, stop.value, None))
            self._ended()
            return
        except BaseException as exc:  # handed to whoever waits on the future
            self._outcomes.append((task.future, None, exc))
            self._ended()
            return
        if isinstance(asked, Outgoing):
            self._send(task, asked)
        elif self._closed:
            # Waiting to retry while the client closes: end now, with the last outcome.
            self._step(task, None, RuntimeError("the RestClient was closed before a retry"))
        else:
            heapq.heappush(self._timers, (time.monotonic() + asked, next(self._sequence), task))

    def _ended(self) -> None:
        """A call ended: start the next waiting one, if any."""
        with self._lock:
            while self._waiting:
                task = self._waiting.popleft()
                if task.future.set_running_or_notify_cancel():
                    self._inbox.append(functools.partial(self._step, task, None, None))
                    return
            self._running -= 1

    def _send(self, task: _Task, request: Outgoing) -> None:
        if self.transport is not None:
            self._send_through_transport(task, request)
            return
        try:
            transfer = self._prepare(task, request)
        except (httpx.LocalProtocolError, ValueError) as exc:
            self._step(task, None, exc)
            return
        self._transfers += 1
        self._multi.add_handle(transfer.curl)

    def _send_through_transport(self, task: _Task, outgoing: Outgoing) -> None:
        assert self.transport is not None
        request = outgoing.httpx_request()
        try:
            response = self.transport.handle_request(request)
            try:
                content = response.read()
            finally:
                response.close()
            if len(content) > self.max_response_bytes:
                raise ResponseTooLargeError(request, self.max_response_bytes)
        except Exception as exc:
            self._step(task, None, exc)
            return
        response.request = request
        self._step(task, response, None)

    def _prepare(self, task: _Task, request: Outgoing) -> _Transfer:
        import pycurl

        method = request.method
        body = request.body
        encoding = None
        lines = ["Expect:"]  # no 100-continue round trip for a large body
        for name, value in request.headers.items():
            lowered = name.lower()
            if lowered == "accept-encoding":
                encoding = value  # libcurl asks for it and decodes the body
            elif lowered not in ("host", "content-length", "transfer-encoding"):
                lines.append(f"{name}: {value}" if value else f"{name};")
        # One search over every header sent (a header per search cost two regex calls each);
        # the header at fault is found only when there is one.
        if UNSENDABLE.search("".join(request.headers) + "".join(request.headers.values())):
            for name, value in request.headers.items():
                _check_header(request, name, value)
        if self._free:
            transfer = self._free.pop()
        else:
            transfer = _Transfer(pycurl.Curl(), self.max_response_bytes)
        curl = transfer.curl
        limit = self.max_response_bytes
        setopt = curl.setopt
        kind = method if method in ("GET", "HEAD") else "body"
        shape = (kind, encoding, request.url.startswith("https:"))
        if transfer.shape != shape:
            # A handle keeps its options from one attempt to the next; it is reset only when
            # these would differ, which saves a reset and a dozen options a call.
            if transfer.shape is not None:
                curl.reset()
            transfer.shape = shape
            transfer.empty_set = False
            if kind == "GET":
                setopt(pycurl.HTTPGET, 1)
            elif kind == "HEAD":
                setopt(pycurl.NOBODY, 1)
            if encoding is not None:
                setopt(pycurl.ACCEPT_ENCODING, encoding)
            if shape[2]:
                setopt(pycurl.PIPEWAIT, 1)  # wait for an HTTP/2 connection, not open another
            setopt(pycurl.WRITEFUNCTION, transfer.on_body)
            setopt(pycurl.HEADERFUNCTION, transfer.on_header)
            setopt(pycurl.NOSIGNAL, 1)
            setopt(pycurl.TIMEOUT_MS, max(1, int(self.timeout * 1000)))
            setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(self.connect_timeout * 1000)))
            setopt(pycurl.MAXFILESIZE_LARGE, limit)
            setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
            setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2TLS)
            for option, value in self._ca.items():
                setopt(option, value)
        if kind == "body":
            setopt(pycurl.CUSTOMREQUEST, method)
            if body or not transfer.empty_set:  # an empty body after an empty one: nothing to set
                setopt(pycurl.POSTFIELDSIZE, len(body))
                setopt(pycurl.COPYPOSTFIELDS, body)
                transfer.empty_set = not body
        setopt(pycurl.URL, request.url)
        setopt(pycurl.HTTPHEADER, lines)
        transfer.start(request, task)
        self._active[curl] = transfer
        return transfer

    @staticmethod
    def _headers(lines: list[bytes]) -> tuple[list[tuple[bytes, bytes]], bool, str | None]:
        """The final response's header lines as (name, value) pairs, whether the body came
        encoded (libcurl decoded it), and what is wrong with them, or None: libcurl frames the
        message (and refuses NUL bytes and a bad chunk size itself); these are the cases h11
        refuses that it lets through."""
        headers: list[tuple[bytes, bytes]] = []
        encoded = chunked = False
        for line in lines:
            stripped = line.rstrip(b"\r\n")
            if not stripped:
                continue
            name, colon, value = stripped.partition(b":")
            if not colon or not name or name != name.strip():
                return headers, encoded, f"malformed response header line {stripped[:80]!r}"
            lowered = name.lower()
            if lowered == b"transfer-encoding":
                if chunked:
                    return headers, encoded, "more than one Transfer-Encoding header"
                chunked = True
            elif lowered == b"content-encoding":
                encoded = True
            headers.append((name, value.strip(b" \t")))
        return headers, encoded, None

    def _finish_transfers(self) -> None:

        multi = self._multi
        while True:
            queued, ok, failed = multi.info_read()
            for curl in ok:
                self._finish(curl, None, "")
            for curl, code, message in failed:
                self._finish(curl, code, message)
            if not queued:
                return

    def _finish(self, curl: Any, code: int | None, message: str) -> None:
        import pycurl

        fd = curl.getinfo(pycurl.ACTIVESOCKET)  # before removal, which detaches it
        self._multi.remove_handle(curl)
        self._transfers -= 1
        transfer = self._active.pop(curl)
        request, task = transfer.request, transfer.task
        assert request is not None and task is not None
        failure: BaseException | None = transfer.failure
        response: httpx.Response | None = None
        if failure is None and code is not None:
            failure = _curl_error(curl, code, message, request, self.max_response_bytes)
        if failure is None:
            headers, encoded, problem = self._headers(transfer.lines)
            if problem is not None:
                failure = httpx.RemoteProtocolError(problem, request=request.httpx_request())
            else:
                if encoded:
                    # libcurl decoded the body: the headers must not make httpx decode it again.
                    drop = (b"content-encoding", b"content-length")
                    headers = [(n, v) for n, v in headers if n.lower() not in drop]
                version = curl.getinfo(pycurl.INFO_HTTP_VERSION)
                response = _Response(
                    request,
                    curl.getinfo(pycurl.RESPONSE_CODE),
                    headers=headers,
                    content=b"".join(transfer.body),
                    extensions={"http_version": _HTTP_VERSIONS.get(version, b"HTTP/1.1")},
                )
        if fd >= 0:
            # libcurl checks an idle HTTP/1.1 connection for unread bytes only after a second
            # idle; sooner, a response the server sent unasked (a late 204) would be read as
            # the next call's answer. Watched here, such a connection is shut down as soon as
            # it speaks, and libcurl, finding it dead, sends the next request on a new one.
            http1 = response is not None and response.http_version.startswith("HTTP/1")
            self._sockets.finished(fd, idle_http1=http1)
        if len(request.body) > _KEPT_BODY and transfer.shape and transfer.shape[0] == "body":
            # libcurl's copy of the body (COPYPOSTFIELDS) would stay with the idle handle.
            curl.setopt(pycurl.POSTFIELDSIZE, 0)
            curl.setopt(pycurl.COPYPOSTFIELDS, b"")
            transfer.empty_set = True
        transfer.start(None, None)  # an idle handle holds nothing of its last call
        if len(self._free) < self.max_in_flight:
            self._free.append(transfer)
        else:
            curl.close()
        self._step(task, response, failure)


# What a watched file descriptor is: curl's (for socket_action), an idle kept-alive connection,
# one curl stopped watching (set aside until its transfer is finished), the wake-up socket.
_CURL, _IDLE, _ASIDE, _WAKE = "curl", "idle", "aside", "wake"
_IN, _OUT = 1, 4  # POLLIN and POLLOUT, which are EPOLLIN and EPOLLOUT too


class _Sockets:
    """The file descriptors the engine's thread waits on, and what each one is.

    ``select.epoll`` (Linux) or ``select.poll``, called directly, and asked to change only
    when something changes: a connection curl stops watching at the end of a transfer stays
    registered, set aside, and becomes an idle one or is forgotten when the transfer is
    finished. Through ``selectors``, with a register and an unregister per call, the watching
    was about a fifth of the Python calls the engine's thread made per API call (cProfile of
    the far-service bench, 2026-12-02), and each system call let the calling thread take the
    GIL in the middle.
    """

    def __init__(self) -> None:
        self._poller = _poller()
        self._watched: dict[int, tuple[int, str]] = {}  # fd: (events, what it is)

    def kind(self, fd: int) -> str | None:
        entry = self._watched.get(fd)
        return None if entry is None else entry[1]

    def watch(self, fd: int, events: int, kind: str) -> None:
        """Wait for ``events`` on ``fd``, which is a ``kind``."""
        entry = self._watched.get(fd)
        if entry is not None:
            if entry == (events, kind):
                return
            if entry[0] == events and entry[1] not in (_IDLE, _ASIDE):
                self._watched[fd] = (events, kind)
                return
            # Out of idle or set aside, the kernel is asked even for the same events: curl may
            # have closed that connection and opened a new socket under the same number, which
            # the poller no longer watches (the modify fails, and it is registered again).
            try:
                self._poller.modify(fd, events)
                self._watched[fd] = (events, kind)
                return
            except OSError:
                self.forget(fd)
        try:
            self._poller.register(fd, events)
        except OSError:  # closed already
            return
        self._watched[fd] = (events, kind)

    def set_aside(self, fd: int) -> None:
        """curl stopped watching ``fd`` (``CURL_POLL_REMOVE``): keep it registered until
        :meth:`finished` says what it is now."""
        entry = self._watched.get(fd)
        if entry is not None:
            self._watched[fd] = (entry[0], _ASIDE)

    def finished(self, fd: int, idle_http1: bool) -> None:
        """A transfer on ``fd`` is finished: watch it as an idle HTTP/1.1 connection, or (when
        curl has not taken it up again) stop watching it."""
        kind = self.kind(fd)
        if kind is _CURL:
            return  # in use again
        if not idle_http1:
            if kind is not None:
                self.forget(fd)
            return
        self.watch(fd, _IN, _IDLE)

    def forget(self, fd: int) -> None:
        if self._watched.pop(fd, None) is not None:
            with contextlib.suppress(OSError):
                self._poller.unregister(fd)

    def wait(self, seconds: float) -> list[tuple[int, int]]:
        """The (fd, events) that are ready, after at most ``seconds``."""
        return self._poller.poll(seconds)  # type: ignore[no-any-return]

    def close(self) -> None:
        self._poller.close()


def _poller() -> Any:
    """``select.epoll`` (Linux), else ``select.poll`` (macOS, the BSDs), else ``selectors``
    (Windows): each with ``register``, ``modify``, ``unregister``, ``poll(seconds)``, ``close``."""
    if hasattr(select, "epoll"):
        return select.epoll()
    if hasattr(select, "poll"):
        return _Poll()
    return _Selector()


class _Poll:
    """``select.poll``, taking seconds."""

    def __init__(self) -> None:
        self._poll = select.poll()
        self.register, self.modify, self.unregister = (
            self._poll.register,
            self._poll.modify,
            self._poll.unregister,
        )

    def poll(self, seconds: float) -> list[tuple[int, int]]:
        return self._poll.poll(math.ceil(seconds * 1000))

    def close(self) -> None:
        pass


class _Selector:
    """``selectors`` where there is neither ``epoll`` nor ``poll`` (Windows)."""

    def __init__(self, selector: selectors.BaseSelector | None = None) -> None:
        self._selector = selectors.DefaultSelector() if selector is None else selector

    @staticmethod
    def _mask(events: int) -> int:
        return (selectors.EVENT_READ if events & _IN else 0) | (
            selectors.EVENT_WRITE if events & _OUT else 0
        )

    def register(self, fd: int, events: int) -> None:
        try:
            self._selector.register(fd, self._mask(events))
        except (KeyError, ValueError) as exc:
            raise OSError(str(exc)) from None

    def modify(self, fd: int, events: int) -> None:
        # Registered again, not modified: selectors skips the kernel when the events are the
        # same, and an epoll-backed selector would then keep a closed socket's entry for the
        # new socket curl opened under the same number, which would never be watched (a
        # connect that timed out in test_a_server_closing_every_connection_..., 3 runs of 8).
        self.unregister(fd)  # not registered: an OSError, as epoll's ENOENT
        self.register(fd, events)

    def unregister(self, fd: int) -> None:
        try:
            self._selector.unregister(fd)
        except (KeyError, ValueError) as exc:
            raise OSError(str(exc)) from None

    def poll(self, seconds: float) -> list[tuple[int, int]]:
        try:
            ready = self._selector.select(seconds)
        except OSError:
            # select() (Windows) fails for all when one socket was closed while registered (a
            # connection curl closed after it stopped watching it, set aside or idle): those
            # are reported ready, and the engine forgets them.
            closed = [key.fd for key in self._selector.get_map().values() if not _is_open(key.fd)]
            if not closed:
                raise
            return [(fd, _IN) for fd in closed]
        return [
            (
                key.fd,
                (_IN if mask & selectors.EVENT_READ else 0)
                | (_OUT if mask & selectors.EVENT_WRITE else 0),
            )
            for key, mask in ready
        ]

    def close(self) -> None:
        self._selector.close()


def _is_open(fd: int) -> bool:
    try:
        select.select([fd], [], [], 0)
    except (OSError, ValueError):
        return False
    return True


def _shut_down(fd: int) -> None:
    """Shut down an idle connection that spoke (unasked bytes, or the server's close), so that
    libcurl never reads those bytes as an answer. It stays curl's to close."""
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=os.dup(fd))
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()


def _check_header(request: Outgoing, name: str, value: str) -> None:
    """Refuse a header that cannot be sent as it is: it would change the request's framing."""
    if UNSENDABLE.search(name) or UNSENDABLE.search(value):
        bad = next(c for c in "\r\n\0" if c in name or c in value)
        raise httpx.LocalProtocolError(
            f"the {name} header contains {bad!r}, which a header cannot carry",
            request=request.httpx_request(),
        )


def _curl_error(
    curl: Any, code: int, message: str, outgoing: Outgoing, limit: int
) -> BaseException:
    """The httpx exception for a libcurl error, so the retry layer sees one family."""
    import pycurl

    request = outgoing.httpx_request()
    text = f"{message} (libcurl error {code})"
    if code == pycurl.E_FILESIZE_EXCEEDED:
        return ResponseTooLargeError(request, limit)
    if code == pycurl.E_OPERATION_TIMEDOUT:
        if curl.getinfo(pycurl.CONNECT_TIME) == 0:
            return httpx.ConnectTimeout(text, request=request)
        return httpx.ReadTimeout(text, request=request)
    connect_errors = {
        pycurl.E_COULDNT_RESOLVE_PROXY,
        pycurl.E_COULDNT_RESOLVE_HOST,
        pycurl.E_COULDNT_CONNECT,
        pycurl.E_SSL_CONNECT_ERROR,
        pycurl.E_PEER_FAILED_VERIFICATION,
    }
    if code in connect_errors:
        return httpx.ConnectError(text, request=request)
    if code in (pycurl.E_GOT_NOTHING, pycurl.E_SEND_ERROR, pycurl.E_RECV_ERROR):
        return httpx.ReadError(text, request=request)
    return httpx.RemoteProtocolError(text, request=request)

"""Bounded time and size for request headers: uvicorn's h11 protocol with a header deadline.

uvicorn bounds the size of an unfinished request head (``h11_max_incomplete_event_size``) and
closes idle keep-alive connections (``timeout_keep_alive``), but has no deadline for headers:
its keep-alive timer starts only after a first response and stops at the first byte of the
next request. A client that sends headers a byte at a time (slowloris) held every connection
it opened: 1,100 of them were all still open after 20 s. So this subclass arms a deadline when
a connection opens and after each response, disarms it when a request's headers are complete,
and closes the connection if it fires while the client is still sending headers. It is glue
on uvicorn's own protocol class (``uvicorn.Config(http=...)``), not a second HTTP parser.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

# The longest a client may take to send one request's headers, in seconds.
HEADER_TIMEOUT_SECONDS = 10.0
# The most bytes of an unfinished request head (request line and headers).
MAX_HEADER_BYTES = 16 * 1024


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers take too long."""

    header_timeout = HEADER_TIMEOUT_SECONDS
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle:  # a request's headers are complete
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self._deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        waiting_for_headers = self.conn.their_state is h11.IDLE and (
            self.cycle is None or self.cycle.response_complete
        )
        if waiting_for_headers and not self.transport.is_closing():
            self.transport.close()


def header_deadline_protocol(timeout: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class with a header deadline of ``timeout`` seconds."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": timeout})

"""The futures RestClient's methods return: a ``concurrent.futures.Future`` you can also await."""

from __future__ import annotations

import concurrent.futures
import sys
import threading
import warnings
from collections.abc import Generator
from typing import Any, TypeVar

__all__ = ["APIFuture", "mark_engine_thread"]

T = TypeVar("T")

_engine_thread = threading.local()
_warned_in_loop = False


class APIFuture(concurrent.futures.Future[T]):
    """A ``concurrent.futures.Future`` that can also be awaited.

    ``future.result(timeout)`` blocks a thread; ``await future`` suspends a coroutine instead.
    Both wait on the same call, which the client's engine thread runs (see
    :mod:`tinker_rest._engine`); no thread is held while the call is in flight.
    """

    def __await__(self) -> Generator[Any, None, T]:
        import asyncio  # only a coroutine awaits, and asyncio is loaded by then

        return asyncio.wrap_future(self).__await__()

    def result(self, timeout: float | None = None) -> T:
        if not self.done():
            _check_may_block()
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if not self.done():
            _check_may_block()
        return super().exception(timeout)


def mark_engine_thread() -> None:
    """Mark the calling thread as an engine's: it must never block on a future."""
    _engine_thread.active = True


def _check_may_block() -> None:
    """Refuse a wait that would deadlock; warn once about one that stalls an event loop."""
    global _warned_in_loop
    if getattr(_engine_thread, "active", False):
        raise RuntimeError(
            "waiting on a tinker-rest future from the client's own engine thread "
            "(a done-callback, say) would deadlock it; chain work with "
            "add_done_callback, or wait from another thread"
        )
    asyncio = sys.modules.get("asyncio")  # no asyncio imported: no event loop is running
    if asyncio is None:
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    if not _warned_in_loop:
        _warned_in_loop = True
        warnings.warn(
            "future.result() blocks the running event loop; use `await future` or the "
            "method's _async variant instead",
            RuntimeWarning,
            stacklevel=3,
        )

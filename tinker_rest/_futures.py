"""The futures RestClient's methods return, and the worker pool that completes them."""

from __future__ import annotations

import concurrent.futures
import sys
import threading
import warnings
from collections.abc import Callable, Generator
from typing import Any, TypeVar

__all__ = ["APIFuture", "WorkerPool"]

T = TypeVar("T")

_worker = threading.local()
_warned_in_loop = False


class APIFuture(concurrent.futures.Future[T]):
    """A ``concurrent.futures.Future`` that can also be awaited.

    ``future.result(timeout)`` blocks a thread; ``await future`` suspends a coroutine instead.
    A thread that waits with no timeout on a call no worker has started yet runs the call
    itself, which spares the sequential ``method(...).result()`` two thread handoffs.
    """

    _run_inline: Callable[[], None] | None = None

    def __await__(self) -> Generator[Any, None, T]:
        import asyncio  # only a coroutine awaits, and asyncio is loaded by then

        return asyncio.wrap_future(self).__await__()

    def result(self, timeout: float | None = None) -> T:
        if not self.done():
            _check_may_block()
            run, self._run_inline = self._run_inline, None
            if run is not None and timeout is None:
                run()
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if not self.done():
            _check_may_block()
        return super().exception(timeout)


def _check_may_block() -> None:
    """Refuse a wait that would deadlock; warn once about one that stalls an event loop."""
    global _warned_in_loop
    if getattr(_worker, "active", False):
        raise RuntimeError(
            "waiting on a tinker-rest future from one of the client's own worker threads "
            "(a done-callback, say) could deadlock the pool; chain work with "
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


class WorkerPool:
    """A pool of threads that runs calls and completes their :class:`APIFuture`.

    The threads start on the first call, not before.
    """

    def __init__(self, max_workers: int) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, not {max_workers}")
        self._max_workers = max_workers
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[[], T]) -> APIFuture[T]:
        future: APIFuture[T] = APIFuture()
        claim = threading.Lock()  # taken by whichever runs the call: a worker or the waiter

        def complete() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

        def run() -> None:
            if not claim.acquire(blocking=False):
                return  # the thread waiting on the future ran it
            _worker.active = True
            try:
                complete()
            finally:
                _worker.active = False

        def run_inline() -> None:
            if claim.acquire(blocking=False):
                complete()

        future._run_inline = run_inline

        with self._lock:
            if self._closed:
                raise RuntimeError("this RestClient is closed; create a new one")
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    self._max_workers, thread_name_prefix="tinker-rest"
                )
            queued = self._executor.submit(run)
        # A call still queued when the pool shuts down is cancelled, and so is its future.
        queued.add_done_callback(lambda done: future.cancel() if done.cancelled() else None)
        return future

    def close(self) -> None:
        """Let running calls finish, cancel queued ones, and stop the threads."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

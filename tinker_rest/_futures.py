"""The futures RestClient's methods return, and the worker pool that completes them."""

from __future__ import annotations

import collections
import concurrent.futures
import os
import sys
import threading
import warnings
import weakref
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


class _Call:
    """One queued call and the future it completes."""

    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[], Any], future: APIFuture[Any]) -> None:
        self.fn = fn
        self.future = future

    def run(self) -> None:
        future = self.future
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(self.fn())
        except BaseException as exc:  # handed to whoever waits on the future
            future.set_exception(exc)


# Every pool, so that a forked child can forget the threads it did not inherit.
_POOLS: weakref.WeakSet[WorkerPool] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for pool in list(_POOLS):
        pool._forget_threads()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class WorkerPool:
    """Threads that run calls and complete their :class:`APIFuture`: at most ``max_workers``,
    started as calls arrive, not before.

    A queue and a condition, rather than ``concurrent.futures.ThreadPoolExecutor``: the
    executor makes a second future and a work item per call, and its bookkeeping was a fifth of
    a call's CPU on loopback (``make bench``). A thread waiting on a call that no worker has
    taken yet takes it off the queue and runs it itself.

    If the program ends without :meth:`close`, queued calls still run: idle workers notice that
    the main thread has finished and stop within ``IDLE_CHECK`` seconds.
    """

    IDLE_CHECK = 0.5

    def __init__(self, max_workers: int) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, not {max_workers}")
        self._max_workers = max_workers
        self._queue: collections.deque[_Call] = collections.deque()
        self._ready = threading.Condition(threading.Lock())
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._closed = False
        _POOLS.add(self)

    def _forget_threads(self) -> None:
        """In a forked child: the parent's threads, their lock and their queue are not ours."""
        self._queue = collections.deque()
        self._ready = threading.Condition(threading.Lock())
        self._threads = []
        self._idle = 0

    def submit(self, fn: Callable[[], T]) -> APIFuture[T]:
        future: APIFuture[T] = APIFuture()
        call = _Call(fn, future)
        future._run_inline = lambda: self._run_inline(call)
        with self._ready:
            if self._closed:
                raise RuntimeError("this RestClient is closed; create a new one")
            self._queue.append(call)
            # An idle worker counts as idle until it wakes: wake one while the idle outnumber
            # the queued calls, else start another thread, so that a burst runs side by side.
            if self._idle >= len(self._queue):
                self._ready.notify()
            elif len(self._threads) < self._max_workers:
                thread = threading.Thread(
                    target=self._work, name=f"tinker-rest-{len(self._threads)}", daemon=False
                )
                self._threads.append(thread)
                thread.start()
            elif self._idle:
                self._ready.notify()
        return future

    def _run_inline(self, call: _Call) -> None:
        with self._ready:
            try:
                self._queue.remove(call)
            except ValueError:
                return  # a worker has it
        call.run()

    def _work(self) -> None:
        _worker.active = True
        main = threading.main_thread()
        queue, ready = self._queue, self._ready
        while True:
            with ready:
                while not queue:
                    if self._closed or not main.is_alive():
                        # Gone from the count, so a later call starts a thread again (other
                        # threads may still make calls while the interpreter shuts down).
                        if not self._closed:
                            self._threads.remove(threading.current_thread())
                        return
                    self._idle += 1
                    ready.wait(self.IDLE_CHECK)
                    self._idle -= 1
                call = queue.popleft()
            call.run()

    def close(self) -> None:
        """Let running calls finish, cancel queued ones, and stop the threads."""
        with self._ready:
            self._closed = True
            queued = list(self._queue)
            self._queue.clear()
            threads, self._threads = self._threads, []
            self._ready.notify_all()
        for call in queued:
            call.future.cancel()
        current = threading.current_thread()
        for thread in threads:
            if thread is not current:
                thread.join()

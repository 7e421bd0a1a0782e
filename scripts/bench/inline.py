"""The fix proposed for the sequential figures, prototyped for measurement only.

Design (a) with one change: a caller that blocks on ``future.result()`` (no timeout) before any
worker has started the call runs the call itself, in its own thread, instead of waiting for a
worker to pick it up and hand the result back. That removes both thread handoffs from the
sequential path; a worker that dequeues a call the caller already ran just drops it. The same
change as a diff against ``tinker_rest/_futures.py`` is in the benchmark report.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from tinker_rest import RestClient
from tinker_rest._futures import APIFuture, WorkerPool, _check_may_block, _worker

T = TypeVar("T")


class InlineFuture(APIFuture[T]):
    """An APIFuture whose waiter may run the call itself if no worker has started it."""

    _run_inline: Callable[[], None] | None = None

    def result(self, timeout: float | None = None) -> T:
        if not self.done():
            _check_may_block()
            run, self._run_inline = self._run_inline, None
            if run is not None and timeout is None:
                run()
        return concurrent.futures.Future.result(self, timeout)


class InlinePool(WorkerPool):
    """WorkerPool whose futures can be claimed by the thread that waits on them."""

    def submit(self, fn: Callable[[], T]) -> APIFuture[T]:
        future: InlineFuture[T] = InlineFuture()
        claim = threading.Lock()

        def complete() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        def run() -> None:  # on a worker
            if not claim.acquire(blocking=False):
                return  # the waiting caller ran it
            _worker.active = True
            try:
                complete()
            finally:
                _worker.active = False

        def run_inline() -> None:  # in the thread that waits
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
        queued.add_done_callback(lambda done: future.cancel() if done.cancelled() else None)
        return future


class InlineRestClient(RestClient):
    """RestClient with :class:`InlinePool`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pool = InlinePool(kwargs.get("max_workers", 16))

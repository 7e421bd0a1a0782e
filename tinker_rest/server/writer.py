"""The writer thread of a SQLite server: the API's writes, queued, with group commit.

SQLite takes one writer at a time, so the API's writes queue, first come first served, for
one thread (instead of many threads contending for SQLite's lock and the GIL while they hold
it). The writes that can share a transaction (:meth:`GroupCommitWriter.submit_grouped`: the
checkpoint writes and moving a session) are run together: every write queued when the thread
is free runs in its own SAVEPOINT of one transaction, which commits once; each is answered
after that commit. A failing write rolls back only its savepoint (its change and its
idempotency record); if the commit fails, or SQLite rolls the whole transaction back (some
errors do: :class:`~tinker_rest.server.store.base.GroupLost`), every write of the group fails
with it. An acknowledged write is on disk under ``PRAGMA synchronous=FULL``, as before.

Why, measured with ``scripts/bench/mix.py --seconds 20`` (64 client threads, 70% reads of a
training run, 30% TTL writes with an idempotency key; server and clients share 2 cores):

- Before (one writer thread, a transaction per write, the ORM): 71-87 writes/s, write p50
  640-760 ms and p99 780-1220 ms against read p99 200-260 ms, a ratio of 3.1-6.0 (target: at
  most 4). Writes waited for the writer: per-thread CPU of the server (``/proc/<pid>/task``)
  showed the writer thread busy all the time with 5.1-5.4 ms of CPU per write, a third of it
  in the ORM flush, a third in loading the checkpoint through the ORM (py-spy ``--gil``), the
  rest in the record's delete-then-insert and the commit; ``synchronous=NORMAL`` only took it
  from ~50 to ~63 writes/s, so it was CPU (and the GIL), not fsync.
- The TTL write as one Core UPDATE, the audit entry and the record as one Core insert each
  (``store/base.py``), and no request hopping to anyio's pool for a plain-function
  dependency: 1.05 ms of writer CPU per write, 93-119 writes/s, ratio 3.7-4.3. The
  writer was still busy ~75% of the time, half of it in the commit (the fsync, and taking the
  GIL back from the event loop after it), so writes still queued for it (p50 440-540 ms).
- With group commit as here: 123-136 writes/s, write p50 ~200 ms and p99 375-426 ms against
  read p99 206-241 ms, a ratio of 1.7-2.1, 0 errors. The writer no longer makes the queue;
  reads and writes now wait for the same event loop and GIL (read p50 rose to ~100 ms as the
  server answers 60% more requests a second).

On PostgreSQL there is no writer thread: writes run on the database thread pool.
"""

from __future__ import annotations

import concurrent.futures
import functools
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tinker_rest.server.store import Store
from tinker_rest.server.store.base import GroupLost

T = TypeVar("T")

# The most writes committed together: enough to take a queue of 64 clients' writes in a few
# groups, few enough that the first write of a group is not kept waiting long for the last.
MAX_GROUP = 32


@dataclass(frozen=True)
class _Job:
    call: Callable[[], Any]
    future: concurrent.futures.Future[Any]
    grouped: bool


class GroupCommitWriter(concurrent.futures.Executor):
    """An executor of one thread that commits the grouped writes queued together at once."""

    def __init__(self, store: Store, *, max_group: int = MAX_GROUP) -> None:
        self._store = store
        self._max_group = max_group
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._shutdown = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="tinker-rest-db-writer", daemon=True)
        self._thread.start()

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        """``fn(*args, **kwargs)`` on the writer thread, alone (in its own transactions)."""
        return self._put(functools.partial(fn, *args, **kwargs), grouped=False)

    def submit_grouped(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        """``fn(*args, **kwargs)`` on the writer thread, possibly committed with others.

        ``fn`` must touch the database only through the store's ``write``/``transaction``
        and leave anything that needs the commit to ``_after_commit``.
        """
        return self._put(functools.partial(fn, *args, **kwargs), grouped=True)

    def _put(self, call: Callable[[], T], *, grouped: bool) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new writes after shutdown")
            self._queue.put(_Job(call, future, grouped))
        return future

    def queued(self) -> int:
        """How many calls wait for the writer (not counting the one it runs)."""
        return self._queue.qsize()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking writes; the queued ones still run. Waits for them with ``wait``."""
        with self._lock:
            if not self._shutdown:
                self._shutdown = True
                self._queue.put(None)
        if wait:
            self._thread.join()

    def _run(self) -> None:
        held: list[_Job | None] = []  # the job that ended the last group, still to run
        while True:
            job = held.pop() if held else self._queue.get()
            if job is None:
                return
            batch = [job]
            while job.grouped and len(batch) < self._max_group:
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                if following is None or not following.grouped:
                    held.append(following)
                    break
                batch.append(following)
            if len(batch) == 1:
                self._run_alone(job)
            else:
                self._run_group(batch)

    @staticmethod
    def _run_alone(job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            result = job.call()
        except BaseException as exc:
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)

    def _run_group(self, batch: list[_Job]) -> None:
        jobs = [job for job in batch if job.future.set_running_or_notify_cancel()]
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self._store.write_group() as group:
                for job in jobs:
                    try:
                        outcomes.append((True, group.run(job.call)))
                    except GroupLost:
                        raise
                    except Exception as exc:
                        outcomes.append((False, exc))
        except BaseException as exc:  # the locks were not had, or the commit failed
            for job in jobs:
                job.future.set_exception(exc)
            return
        for job, (ok, value) in zip(jobs, outcomes, strict=True):
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)

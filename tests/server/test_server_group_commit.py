"""Group commit of the SQLite writer thread, over 127.0.0.1 against the real server.

Writes queued while the writer is busy run together, each in its own SAVEPOINT of one
transaction, committed once. The writer is held busy here by a call of the test's own until
both writes wait, so that they are taken as one group.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import event

from tinker_rest.server.idempotency import IdempotentRequest
from tinker_rest.server.writer import GroupCommitWriter

if TYPE_CHECKING:
    from conftest import Env

WriteLock = Callable[[], AbstractContextManager[None]]


def _ttl(env: Env, name: str) -> str:
    return f"/api/v1/training_runs/{env.run_a}/checkpoints/weights/{name}/ttl"


@contextmanager
def _commits(env: Env) -> Iterator[list[str]]:
    """The commits made on the writer thread while the block runs (one entry each)."""
    seen: list[str] = []

    def count(connection: Any) -> None:
        name = threading.current_thread().name
        if name.startswith("tinker-rest-db-writer"):
            seen.append(name)

    event.listen(env.server.engine, "commit", count)
    try:
        yield seen
    finally:
        event.remove(env.server.engine, "commit", count)


def _as_one_group(env: Env, writes: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Send ``writes`` in order while the writer is held busy; then let them run together."""
    writer = env.server.app.state.db_writer
    assert isinstance(writer, GroupCommitWriter)
    release = threading.Event()
    holding = writer.submit(release.wait, 30)
    answers: list[httpx.Response | None] = [None] * len(writes)

    def send(index: int) -> None:
        answers[index] = writes[index]()

    threads = []
    for index in range(len(writes)):
        threads.append(threading.Thread(target=send, args=(index,)))
        threads[-1].start()
        deadline = time.monotonic() + 10
        while writer.queued() < index + 1:  # in this order
            assert time.monotonic() < deadline, "a write never reached the writer"
            time.sleep(0.005)
    release.set()
    holding.result(timeout=10)
    for thread in threads:
        thread.join(timeout=30)
    assert all(answer is not None for answer in answers)
    return [answer for answer in answers if answer is not None]


def _audit_ttls(http: httpx.Client) -> list[int | None]:
    entries = http.get("/api/v1/audit").json()["entries"]
    return [
        e["event_details"]["ttl_seconds"] for e in entries if e["event"] == "checkpoint_set_ttl"
    ]


def _expiry(http: httpx.Client, env: Env, name: str) -> str | None:
    ckpts = http.get(f"/api/v1/training_runs/{env.run_a}/checkpoints").json()["checkpoints"]
    (ckpt,) = [c for c in ckpts if c["checkpoint_id"].endswith(name)]
    expires: str | None = ckpt["expires_at"]
    return expires


def _refuse_record(env: Env, key: str, action: str) -> None:
    """A real fault in the real database: the idempotency record of ``key`` cannot be written."""
    record = IdempotentRequest(env.alice, key, "").record_id
    with sqlite3.connect(env.db_path) as db:
        db.execute(
            f"CREATE TRIGGER refuse_{key} BEFORE INSERT ON idempotent_responses "
            f"WHEN NEW.request_hash = '{record}' BEGIN SELECT RAISE({action}, 'disk gone'); END"
        )


def test_writes_queued_together_commit_once_and_a_failing_one_leaves_nothing(env: Env) -> None:
    _refuse_record(env, "kb", "ABORT")  # b's change is made, then its record fails
    with env.client(env.alice_key) as http:
        good = lambda: http.put(  # noqa: E731
            _ttl(env, "0001"), json={"ttl_seconds": 7200}, headers={"X-Idempotency-Key": "ka"}
        )
        bad = lambda: http.put(  # noqa: E731
            _ttl(env, "0002"), json={"ttl_seconds": 9000}, headers={"X-Idempotency-Key": "kb"}
        )
        with _commits(env) as commits:
            a, b = _as_one_group(env, [good, bad])
        assert (a.status_code, b.status_code) == (204, 500)
        assert len(commits) == 1  # one commit for both
        assert _expiry(http, env, "0001") is not None  # a landed
        assert _expiry(http, env, "0002") is None  # b left nothing
        assert _audit_ttls(http) == [7200]
        replay = good()  # a's record is there
        assert replay.status_code == 204
        assert replay.headers["idempotent-replayed"] == "true"
        with sqlite3.connect(env.db_path) as db:
            db.execute("DROP TRIGGER refuse_kb")
        retried = bad()  # b's is not: the retry runs it, once
        assert retried.status_code == 204
        assert "idempotent-replayed" not in retried.headers
        assert _expiry(http, env, "0002") is not None
        assert sorted(t or 0 for t in _audit_ttls(http)) == [7200, 9000]


def test_a_write_that_rolls_back_the_whole_transaction_fails_the_group(env: Env) -> None:
    # RAISE(ROLLBACK) ends the transaction, savepoints and all: the write before it, whose
    # savepoint was released, is gone too, so it must not be answered as done.
    _refuse_record(env, "kd", "ROLLBACK")
    with env.client(env.alice_key) as http:
        c, d = _as_one_group(
            env,
            [
                lambda: http.put(
                    _ttl(env, "0001"),
                    json={"ttl_seconds": 7200},
                    headers={"X-Idempotency-Key": "kc"},
                ),
                lambda: http.put(
                    _ttl(env, "0002"),
                    json={"ttl_seconds": 9000},
                    headers={"X-Idempotency-Key": "kd"},
                ),
            ],
        )
        assert (c.status_code, d.status_code) == (500, 500)
        assert _expiry(http, env, "0001") is None
        assert _expiry(http, env, "0002") is None
        assert _audit_ttls(http) == []
        # The writer goes on: the next write lands.
        again = http.put(
            _ttl(env, "0001"), json={"ttl_seconds": 7200}, headers={"X-Idempotency-Key": "kc"}
        )
        assert again.status_code == 204
        assert "idempotent-replayed" not in again.headers


def test_a_group_on_a_locked_database_answers_503_soon(env: Env, another_writer: WriteLock) -> None:
    with another_writer(), env.client(env.alice_key) as http:
        began = time.monotonic()
        answers = _as_one_group(
            env,
            [
                functools.partial(http.put, _ttl(env, name), json={"ttl_seconds": 7200}, timeout=20)
                for name in ("0001", "0002")
            ],
        )
        took = time.monotonic() - began
    assert [a.status_code for a in answers] == [503, 503]
    assert all(a.headers["retry-after"] == "1" for a in answers)
    assert took < 15
    with env.client(env.alice_key) as http:
        assert http.put(_ttl(env, "0001"), json={"ttl_seconds": 7200}).status_code == 204


def test_a_failing_step_after_the_commit_fails_neither_the_writes_nor_the_other_steps(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """What writes leave for after their commit (removing a deleted checkpoint's files) runs
    once they are on disk: a step that raises is logged, and the group's answers and its
    other steps are not affected."""
    store = env.server.store
    ran: list[str] = []
    with caplog.at_level(logging.ERROR, logger="tinker_rest.server"), store.write_group():
        store._after_commit(lambda: ran.append("first"))
        store._after_commit(lambda: [][0])
        store._after_commit(lambda: ran.append("last"))
    assert ran == ["first", "last"]
    assert "after a committed write failed" in caplog.text

"""Writes and their idempotency records on SQLite and PostgreSQL, over 127.0.0.1.

The record of a key is written by one insert that starts a stale key afresh and leaves a live
one alone; the TTL write is one UPDATE that applies the ownership rule itself. These pin what
that must keep meaning on both databases.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import httpx
import pytest
from sqlalchemy import update

from tinker_rest._paths import TinkerPath
from tinker_rest.server import db
from tinker_rest.server.idempotency import IdempotentRequest, Replay

if TYPE_CHECKING:
    from conftest import World


def _ttl_url(world: World, name: str) -> str:
    return f"/api/v1/training_runs/{world.run_a}/checkpoints/weights/{name}/ttl"


def _ttl_events(http: httpx.Client) -> list[int | None]:
    entries = http.get("/api/v1/audit").json()["entries"]
    return [e["event_details"]["ttl_seconds"] for e in entries if e["event"].endswith("set_ttl")]


def test_a_key_past_the_window_starts_afresh(world: World) -> None:
    url = _ttl_url(world, "0001")
    key = {"X-Idempotency-Key": "stale-then-fresh"}
    with httpx.Client(base_url=world.base_url, headers={"X-API-Key": world.alice_key}) as http:
        assert http.put(url, json={"ttl_seconds": 7200}, headers=key).status_code == 204
        # The record outlives its window until the sweep; the key is then free again.
        with world.server.engine.begin() as connection:
            connection.execute(
                update(db.IdempotentResponse).values(
                    created_at=db.utcnow() - dt.timedelta(hours=25)
                )
            )
        again = http.put(url, json={"ttl_seconds": 9000}, headers=key)
        assert again.status_code == 204
        assert "idempotent-replayed" not in again.headers
        replay = http.put(url, json={"ttl_seconds": 9000}, headers=key)
        assert replay.headers["idempotent-replayed"] == "true"
        assert _ttl_events(http).count(9000) == 1


def test_a_write_that_finds_its_key_recorded_is_a_replay_and_changes_nothing(
    world: World,
) -> None:
    # The race the record's insert settles: the look-up before the write found nothing, and
    # another request with the key committed before this write ran (here: the look-up is
    # skipped by calling the store's write directly).
    url = _ttl_url(world, "0002")
    body = b'{"ttl_seconds": 7300}'
    headers = {"X-Idempotency-Key": "raced", "Content-Type": "application/json"}
    store = world.server.store
    caller = store.authenticate(world.alice_key)
    assert caller is not None
    with httpx.Client(base_url=world.base_url, headers={"X-API-Key": world.alice_key}) as http:
        assert http.put(url, content=body, headers=headers).status_code == 204
        before = http.get(f"/api/v1/training_runs/{world.run_a}/checkpoints").json()
        late = IdempotentRequest.of(caller.user_id, "raced", "PUT", url, body)
        with pytest.raises(Replay) as replayed:
            store.set_ttl(caller, TinkerPath(world.run_a, "weights", "0002"), 7300, late)
        assert replayed.value.stored.status_code == 204
        after = http.get(f"/api/v1/training_runs/{world.run_a}/checkpoints").json()
        assert after == before  # the expiry was not moved again
        assert _ttl_events(http).count(7300) == 1


def test_a_ttl_write_on_what_the_caller_does_not_own_is_a_404_naming_it(world: World) -> None:
    with httpx.Client(base_url=world.base_url, headers={"X-API-Key": world.bob_key}) as http:
        others = http.put(_ttl_url(world, "0001"), json={"ttl_seconds": 7200})
        assert others.status_code == 404
        assert others.json() == {"detail": "Training run not found"}
    with httpx.Client(base_url=world.base_url, headers={"X-API-Key": world.alice_key}) as http:
        missing = http.put(_ttl_url(world, "nope"), json={"ttl_seconds": 7200})
        assert missing.status_code == 404
        assert missing.json() == {"detail": "Checkpoint not found"}

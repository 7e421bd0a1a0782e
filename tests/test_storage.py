"""Storage reports and retention policies: the planner on its own, then end to end.

The end-to-end tests run on the reference server over real HTTP, on SQLite and PostgreSQL; each
test gets a user of its own, so pruning in one test never touches another's checkpoints.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from tinker_rest import RestClient
from tinker_rest._futures import APIFuture
from tinker_rest._storage import (
    PruneResult,
    RetentionPolicy,
    carry_out,
    list_checkpoints,
    parse_duration,
    plan_prune,
)
from tinker_rest.cli import cli
from tinker_rest.types import Checkpoint

REPO = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
FILES = {"adapter_model.safetensors": 1000}


def checkpoint(run: str, name: str, minutes: int, *, public: bool = False, **extra: Any) -> Any:
    kind = extra.pop("kind", "weights")
    ctype = {"weights": "training", "sampler_weights": "sampler"}[kind]
    return Checkpoint(
        checkpoint_id=f"{kind}/{name}",
        checkpoint_type=ctype,
        time=T0 + dt.timedelta(minutes=minutes),
        tinker_path=f"tinker://{run}/{kind}/{name}",
        training_run_id=run,
        size_bytes=extra.pop("size_bytes", 100),
        public=public,
        **extra,
    )


# -- the planner, without a server -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * 86400),
        ("12h", 43200),
        ("90m", 5400),
        ("2w", 1209600),
        ("1d12h", 129600),
        (" 45S ", 45),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "30", "d", "30x", "-3d", "0d", "3d and more", "1.5h"])
def test_bad_durations_say_what_a_duration_is(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["99999999999999d", "36501d", "5300w"])
def test_durations_past_a_century_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="longer than 100 years"):
        parse_duration(text)


def test_a_cutoff_before_year_one_means_nothing_is_old_enough() -> None:
    listing = [checkpoint("r", "a", 0)]
    policy = RetentionPolicy(older_than=dt.timedelta(days=36500))
    plan = plan_prune(listing, policy, now=dt.datetime(50, 1, 1, tzinfo=dt.UTC))
    assert not plan.delete and len(plan.keep) == 1


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({}, "keep_last, older_than or both"),
        ({"keep_last": -1}, "keep_last must be an int of 0 or more"),
        ({"keep_last": True}, "keep_last must be an int"),
        ({"older_than": dt.timedelta(0)}, "longer than zero"),
        ({"keep_last": 1, "checkpoint_type": "weights"}, "checkpoint_type must be one of"),
    ],
)
def test_policies_that_make_no_sense_are_refused(policy: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetentionPolicy(**policy)


def test_plan_keeps_the_newest_of_each_run_and_everything_public() -> None:
    listing: ClassVar[list[dict[str, object]]] = [
        checkpoint("r1", "a", 1),
        checkpoint("r1", "b", 3),
        checkpoint("r1", "c", 2, public=True),
        checkpoint("r1", "d", 0),
        checkpoint("r2", "a", 5),
        checkpoint("r2", "s", 9, kind="sampler_weights"),
    ]
    plan = plan_prune(listing, RetentionPolicy(keep_last=1), now=T0 + dt.timedelta(days=1))
    assert [c.tinker_path for c in plan.delete] == [
        "tinker://r1/weights/a",
        "tinker://r1/weights/d",
        "tinker://r2/weights/a",
    ]
    assert plan.bytes_freed == 300
    typed = plan_prune(listing, RetentionPolicy(keep_last=1, checkpoint_type="training"))
    assert [c.tinker_path for c in typed.delete] == [
        "tinker://r1/weights/a",
        "tinker://r1/weights/d",
    ]
    everything = plan_prune(listing, RetentionPolicy(keep_last=0, keep_public=False))
    assert len(everything.delete) == len(listing) and not everything.keep


def test_older_than_and_keep_last_must_both_agree() -> None:
    listing = [checkpoint("r", f"{i}", i * 60) for i in range(6)]  # one an hour
    now = T0 + dt.timedelta(hours=6)
    plan = plan_prune(listing, RetentionPolicy(older_than=dt.timedelta(hours=3)), now=now)
    assert sorted(c.checkpoint_id for c in plan.delete) == ["weights/0", "weights/1", "weights/2"]
    both = RetentionPolicy(keep_last=5, older_than=dt.timedelta(hours=3))
    assert [c.checkpoint_id for c in plan_prune(listing, both, now=now).delete] == ["weights/0"]


@settings(max_examples=200, deadline=None)
@given(
    runs=st.dictionaries(
        st.sampled_from(["r1", "r2", "r3", "r4"]),
        st.lists(st.tuples(st.integers(0, 50), st.booleans()), max_size=12),
    ),
    keep_last=st.integers(0, 6),
    keep_public=st.booleans(),
)
def test_plan_keeps_exactly_the_newest_n_of_each_run(
    runs: dict[str, list[tuple[int, bool]]], keep_last: int, keep_public: bool
) -> None:
    listing: ClassVar[list[dict[str, object]]] = [
        checkpoint(run, f"{i:02d}", minutes, public=public)
        for run, members in runs.items()
        for i, (minutes, public) in enumerate(members)
    ]
    plan = plan_prune(listing, RetentionPolicy(keep_last=keep_last, keep_public=keep_public))
    assert {c.tinker_path for c in plan.delete} | {c.tinker_path for c in plan.keep} == {
        c.tinker_path for c in listing
    }
    assert not {c.tinker_path for c in plan.delete} & {c.tinker_path for c in plan.keep}
    for run in runs:
        members = sorted(
            (c for c in listing if c.training_run_id == run),
            key=lambda c: (c.time, c.tinker_path),
            reverse=True,
        )
        newest = {c.tinker_path for c in members[:keep_last]}
        kept = {c.tinker_path for c in plan.keep if c.training_run_id == run}
        public = {c.tinker_path for c in members if c.public} if keep_public else set()
        assert kept == newest | public


def test_the_plan_does_not_depend_on_listing_order() -> None:
    listing = [checkpoint("r", name, 7) for name in "abcdef"]  # all made at the same minute
    policy = RetentionPolicy(keep_last=2)
    one = plan_prune(listing, policy, now=T0)
    other = plan_prune(list(reversed(listing)), policy, now=T0)
    assert one.model_dump() == other.model_dump()


# -- end to end on the reference server --------------------------------------------------------


@dataclasses.dataclass
class Store:
    server: Any
    base_url: str
    org: str

    def user(self, name: str) -> tuple[str, str]:
        """A new user of their own, and their key."""
        user = self.server.add_user(
            f"{name}-{time.monotonic_ns()}@example.com", organization_id=self.org
        )
        return user, self.server.add_api_key(user)

    def runs(self, user: str, shape: dict[int, int]) -> dict[str, list[str]]:
        """Runs with the given numbers of checkpoints, one a minute; their paths, oldest first."""
        made: dict[str, list[str]] = {}
        session = self.server.add_session(user)
        for run_index, count in shape.items():
            run = self.server.add_training_run(session, base_model="Qwen/Qwen3-8B", lora_rank=8)
            made[run] = [
                self.server.add_checkpoint(
                    run,
                    "weights",
                    f"{i:04d}",
                    files={"w.bin": 100 * (run_index + 1)},
                    created_at=T0 + dt.timedelta(minutes=i),
                )
                for i in range(count)
            ]
        return made


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    from tinker_rest.server import TinkerServer

    folder = tmp_path_factory.mktemp("storage")
    if request.param == "sqlite":
        server = TinkerServer(str(folder / "tinker.db"))
    else:
        server = TinkerServer(request.getfixturevalue("postgres_url"), data_dir=folder)
    org = server.add_organization("acme")
    with server.run_in_background(host="127.0.0.1", port=0) as running:
        yield Store(server, running.base_url, org)
    server.close()


def paths(client: RestClient) -> set[str]:
    return {c.tinker_path for c in client.iter_user_checkpoints()}


def test_storage_report_adds_up_each_run_biggest_first(store: Store) -> None:
    user, key = store.user("report")
    made = store.runs(user, {0: 3, 1: 1, 2: 2})
    public = next(iter(made.values()))[0]
    store.server.add_checkpoint(
        next(iter(made)),
        "sampler_weights",
        "s",
        files={"x": 5000},
        public=True,
        expires_at=T0 + dt.timedelta(days=3650),
    )
    with RestClient(store.base_url, key) as client:
        seen: list[tuple[int, int | None]] = []
        report = client.storage_report(progress=lambda done, total: seen.append((done, total)))
    assert [row.key for row in report.rows] == [next(iter(made)), *list(made)[2:0:-1]]
    first = report.rows[0]
    assert (first.checkpoints, first.size_bytes, first.public, first.expiring) == (4, 5300, 1, 1)
    assert [(r.checkpoints, r.size_bytes) for r in report.rows[1:]] == [(2, 600), (1, 200)]
    assert (report.total.checkpoints, report.total.size_bytes) == (7, 6100)
    assert seen and seen[-1] == (7, 7)
    assert public.startswith("tinker://")


def test_prune_keeps_exactly_the_newest_of_each_run(store: Store) -> None:
    user, key = store.user("prune")
    made = store.runs(user, {0: 5, 1: 2, 2: 4})
    first_run = next(iter(made))
    store.server.add_checkpoint(
        first_run,
        "weights",
        "pub",
        files={"w": 1},
        public=True,
        created_at=T0 - dt.timedelta(days=1),
    )
    with RestClient(store.base_url, key) as client:
        dry = client.prune_checkpoints(keep_last=2, dry_run=True)
        assert dry.dry_run and not dry.done and len(dry.plan.delete) == 3 + 0 + 2
        assert len(paths(client)) == 12  # a dry run changes nothing
        result = client.prune_checkpoints(keep_last=2)
        assert result.ok and list(result.done) == [c.tinker_path for c in result.plan.delete]
        expected = {p for run in made.values() for p in run[-2:]}
        assert paths(client) == expected | {f"tinker://{first_run}/weights/pub"}
        again = client.prune_checkpoints(keep_last=2)
        assert again.ok and not again.plan.delete  # the policy already holds


def test_prune_can_expire_instead_of_deleting(store: Store) -> None:
    user, key = store.user("ttl")
    made = store.runs(user, {0: 3})
    with RestClient(store.base_url, key) as client:
        result = client.prune_checkpoints(keep_last=1, set_ttl_seconds=7200)
        assert result.ok and len(result.done) == 2
        listing = {c.tinker_path: c for c in client.iter_user_checkpoints()}
        assert len(listing) == 3  # nothing deleted
        run = made[next(iter(made))]
        assert listing[run[-1]].expires_at is None
        for path in run[:2]:
            expires = listing[path].expires_at
            assert expires is not None
            assert (
                dt.timedelta(minutes=110)
                < expires - dt.datetime.now(dt.UTC)
                < dt.timedelta(minutes=121)
            )


def test_prune_refuses_bad_input_before_any_request(store: Store) -> None:
    client = RestClient("http://127.0.0.1:9", "key-that-is-never-sent")
    with pytest.raises(ValueError, match="keep_last, older_than or both"):
        client.prune_checkpoints()
    with pytest.raises(ValueError, match="one hour"):
        client.prune_checkpoints(keep_last=1, set_ttl_seconds=60)
    with pytest.raises(ValueError, match="not a duration"):
        client.prune_checkpoints(older_than="soon")


# -- the command line ----------------------------------------------------------------------------


def invoke(base_url: str, key: str, *args: str, input: str | None = None) -> Result:
    env = {"COLUMNS": "250", "TINKER_API_KEY": "", "TINKER_BASE_URL": ""}
    return CliRunner().invoke(
        cli,
        ["--base-url", base_url, "--api-key", key, *args],
        input=input,
        env=env,
        catch_exceptions=False,
    )


def test_storage_command(store: Store) -> None:
    user, key = store.user("cli-report")
    made = store.runs(user, {0: 1, 1: 2})
    result = invoke(store.base_url, key, "-f", "json", "storage")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [row["key"] for row in data["rows"]] == list(reversed(made))
    assert data["total"]["size_bytes"] == 100 + 2 * 200
    table = invoke(store.base_url, key, "storage")
    assert table.exit_code == 0 and "total" in table.stdout and list(made)[1] in table.stdout


def test_storage_of_named_runs(store: Store) -> None:
    user, key = store.user("named")
    made = store.runs(user, {0: 2, 1: 3})
    first, second = made
    with RestClient(store.base_url, key) as client:
        report = client.storage_report(training_run_ids=[first])
    assert [(r.key, r.checkpoints) for r in report.rows] == [(first, 2)]
    result = invoke(store.base_url, key, "-f", "json", "storage", "--run-id", second)
    assert result.exit_code == 0, result.output
    assert [row["key"] for row in json.loads(result.stdout)["rows"]] == [second]


@pytest.mark.parametrize("command", [["storage"], ["checkpoint", "prune", "--keep-last", "1"]])
@pytest.mark.parametrize("run_id", ["", ".", "..", "a/b"])
def test_run_ids_that_cannot_name_a_run_are_usage_errors(command: list[str], run_id: str) -> None:
    result = invoke("http://127.0.0.1:9", "never-sent", *command, "--run-id", run_id)
    assert result.exit_code == 2 and "is not a training run id" in result.stderr


def test_a_string_of_run_ids_is_refused() -> None:
    client = RestClient("http://127.0.0.1:9", "never-sent")
    with pytest.raises(TypeError, match="not the string"):
        client.prune_checkpoints(keep_last=1, training_run_ids="sess-1:train:0")


def test_prune_command_plans_asks_and_deletes(store: Store) -> None:
    user, key = store.user("cli-prune")
    made = store.runs(user, {0: 4})
    run = made[next(iter(made))]
    dry = invoke(store.base_url, key, "checkpoint", "prune", "--keep-last", "1", "--dry-run")
    assert dry.exit_code == 0 and "To delete: 3 checkpoints" in dry.stdout
    declined = invoke(store.base_url, key, "checkpoint", "prune", "--keep-last", "1", input="n\n")
    assert declined.exit_code == 0 and "Nothing changed" in declined.stderr
    with RestClient(store.base_url, key) as client:
        assert len(paths(client)) == 4
    done = invoke(
        store.base_url, key, "-f", "json", "checkpoint", "prune", "--keep-last", "1", "--yes"
    )
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["done"] == list(reversed(run[:3])) and data["keep"] == [run[3]]
    assert data["bytes_freed"] == 300 and not data["failed"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give --keep-last, --older-than or both"),
        (["--older-than", "soon"], "not a duration"),
        (["--keep-last", "1", "--set-ttl", "10m"], "one hour"),
        (["--keep-last", "-1"], "-1 is not in the range"),
        (["--older-than", "99999999999999d"], "longer than 100 years"),
        (["--keep-last", "1", "--set-ttl", "99999999999999d"], "longer than 100 years"),
    ],
)
def test_prune_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = invoke("http://127.0.0.1:9", "never-sent", "checkpoint", "prune", *args)
    assert result.exit_code == 2 and message in result.stderr


def test_prune_refuses_a_run_the_caller_does_not_own(store: Store) -> None:
    owner, _ = store.user("owner")
    other, other_key = store.user("other")
    project = store.server.add_project(
        f"p{time.monotonic_ns()}", organization_id=store.org, members=[owner, other]
    )
    session = store.server.add_session(owner, project_id=project)
    run = store.server.add_training_run(session, base_model="Qwen/Qwen3-8B", lora_rank=8)
    for i in range(3):
        store.server.add_checkpoint(run, "weights", f"{i}", files=FILES)
    # `other` lists the run's checkpoints through the project, but a delete would be a 404 that
    # looks like "already gone"; the prune must refuse up front, not report success.
    result = invoke(
        store.base_url,
        other_key,
        "checkpoint",
        "prune",
        "--keep-last",
        "1",
        "--run-id",
        run,
        "--yes",
    )
    assert result.exit_code == 1
    assert f"training run {run} is not one of yours" in result.stderr
    with RestClient(store.base_url, other_key) as client:
        assert len(client.list_checkpoints(run).result().checkpoints) == 3


class ScriptedService(http.server.BaseHTTPRequestHandler):
    """Faults a real server cannot be made to give: one delete refused, one already gone."""

    listing: ClassVar[list[dict[str, object]]] = [
        {
            "checkpoint_id": f"weights/{i}",
            "checkpoint_type": "training",
            "time": f"2026-01-01T00:0{i}:00Z",
            "tinker_path": f"tinker://r/weights/{i}",
            "training_run_id": "r",
            "size_bytes": 10,
            "public": False,
        }
        for i in range(4)
    ]

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: object = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        total = len(self.listing)
        self._answer(
            200,
            {
                "checkpoints": self.listing,
                "cursor": {"offset": 0, "limit": 1000, "total_count": total},
            },
        )

    def do_DELETE(self) -> None:
        name = self.path.rsplit("/", 1)[1]
        if name == "0":
            self._answer(400, {"detail": "checkpoint is locked by an export"})
        elif name == "1":
            self._answer(404, {"detail": "Checkpoint not found"})
        else:
            self._answer(204)


def test_prune_lists_failures_counts_404_as_done_and_exits_1() -> None:
    service = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ScriptedService)
    thread = threading.Thread(target=service.serve_forever, daemon=True)
    thread.start()
    try:
        base_url = f"http://127.0.0.1:{service.server_address[1]}"
        result = invoke(base_url, "key", "checkpoint", "prune", "--keep-last", "1", "--yes")
    finally:
        service.shutdown()
        service.server_close()
    assert result.exit_code == 1
    assert result.stderr.count("Error: could not delete") == 1
    assert "tinker://r/weights/0" in result.stderr and "locked by an export" in result.stderr
    assert "Deleted 2 of 3 checkpoints" in result.stdout  # weights/1 was already gone


class CappedPages(ScriptedService):
    """A service that gives at most 100 checkpoints a page, whatever the client asks for."""

    listing: ClassVar[list[dict[str, object]]] = [
        {
            **ScriptedService.listing[0],
            "checkpoint_id": f"weights/{i:03d}",
            "tinker_path": f"tinker://r/weights/{i:03d}",
        }
        for i in range(250)
    ]

    def do_GET(self) -> None:
        query = dict(p.split("=") for p in self.path.split("?", 1)[1].split("&"))
        offset, limit = int(query["offset"]), min(int(query["limit"]), 100)
        page = self.listing[offset : offset + limit]
        self._answer(
            200,
            {"checkpoints": page, "cursor": {"offset": offset, "limit": limit, "total_count": 250}},
        )


def test_the_listing_follows_the_page_size_the_service_gives() -> None:
    service = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CappedPages)
    thread = threading.Thread(target=service.serve_forever, daemon=True)
    thread.start()
    try:
        with RestClient(f"http://127.0.0.1:{service.server_address[1]}", "key") as client:
            report = client.storage_report()
    finally:
        service.shutdown()
        service.server_close()
    assert report.total.checkpoints == 250


def test_a_prune_holds_at_most_twice_the_calls_the_client_runs_at_once(store: Store) -> None:
    """Calls are submitted in a window (twice the client's concurrency), topped up as they end:
    submitted all at once, every checkpoint held a future until the end (eleven objects the
    GC tracks, each), however many there were."""
    user, key = store.user("windowed")
    store.runs(user, {0: 60, 1: 60})
    waiting: list[int] = []

    def watch(done: int, total: int | None) -> None:
        waiting.append(len(client._engine._waiting))  # submitted, beyond those running

    with RestClient(store.base_url, key, max_in_flight=3) as client:
        result = client.prune_checkpoints(keep_last=1, progress=watch)
    assert result.ok and len(result.done) == 118
    assert waiting and max(waiting) <= 3  # 2 x 3 submitted at most, 3 of them running
    with RestClient(store.base_url, key) as client:
        left = client.storage_report()
    assert left.total.checkpoints == 2


def test_a_refused_key_stops_the_prune_and_says_what_was_done(store: Store) -> None:
    user, key = store.user("revoked")
    made = store.runs(user, {0: 400})
    spare = store.server.add_api_key(user)  # to see, afterwards, what is left

    def revoke_part_way(done: int, total: int | None) -> None:
        if total == 399 and done >= 1:  # the first report of the deletes (some have ended)
            store.server.revoke_api_key(key)

    # One delete in flight at a time: with all 399 in flight, a fast client could have them all
    # answered before the revocation landed (it did, now and then, on PostgreSQL). Progress is
    # reported every PROGRESS_EVERY (0.1 s), in which one delete at a time does far fewer.
    with RestClient(store.base_url, key, max_retries=0, max_in_flight=1) as client:
        result = client.prune_checkpoints(keep_last=1, progress=revoke_part_way)
    assert result.stopped is not None and "refused" in result.stopped and not result.ok
    assert 1 <= len(result.done) < 399 and result.not_attempted
    assert_accounted_once(result)
    with RestClient(store.base_url, spare) as client:
        left = paths(client)
    # Every delete the service applied is among the done, those that ended after the refusal
    # and before the prune stopped included; none of the done is left.
    assert set(result.done) == set(next(iter(made.values()))) - left


def assert_accounted_once(result: PruneResult) -> None:
    """Each checkpoint the plan deletes is exactly once among done, failed and not attempted."""
    listed = [*result.done, *(p for p, _ in result.failed), *result.not_attempted]
    assert sorted(listed) == sorted(c.tinker_path for c in result.plan.delete)


def test_a_client_closed_during_a_prune_ends_it_with_what_was_done(store: Store) -> None:
    user, key = store.user("closed")
    store.runs(user, {0: 200})
    client = RestClient(store.base_url, key, max_in_flight=2)
    plan = plan_prune(list_checkpoints(client), RetentionPolicy(keep_last=0))

    def close_part_way(done: int, total: int | None) -> None:
        client.close()

    result = carry_out(client, plan, progress=close_part_way)
    assert result.stopped is not None and "closed" in result.stopped
    assert result.done and result.not_attempted
    assert_accounted_once(result)


def test_ctrl_c_while_calls_are_submitted_loses_no_checkpoint(store: Store) -> None:
    user, key = store.user("interrupted")
    store.runs(user, {0: 50})
    with RestClient(store.base_url, key, max_in_flight=4) as client:
        plan = plan_prune(list_checkpoints(client), RetentionPolicy(keep_last=0))
        send = client.delete_checkpoint_from_tinker_path
        sent = 0

        def interrupted_at_the_twentieth(path: str) -> APIFuture[None]:
            nonlocal sent
            sent += 1
            if sent == 20:
                raise KeyboardInterrupt
            return send(path)

        client.delete_checkpoint_from_tinker_path = interrupted_at_the_twentieth  # type: ignore[method-assign]
        result = carry_out(client, plan)
    assert result.stopped == "interrupted"
    assert_accounted_once(result)
    assert plan.delete[19].tinker_path in result.not_attempted  # the one being submitted


def test_an_interrupted_prune_of_thousands_finishes_when_run_again(tmp_path: Path) -> None:
    """SIGINT in the middle of deleting 2,700 checkpoints; the same command again finishes."""
    runs, count, keep = 30, 3000, 10
    server = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "scripts" / "bench" / "ref_server.py"),
            "--dir",
            str(tmp_path),
            "--runs",
            str(runs + 1),
            "--checkpoints",
            str(count),
            "--download-bytes",
            "16",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        info = json.loads(server.stdout.readline())
        base_url, key = info["base_url"], info["api_key"]
        with RestClient(base_url, key) as client:
            before = list(client.iter_user_checkpoints(page_size=1000))
        assert len(before) == count
        by_run: dict[str, list[Checkpoint]] = defaultdict(list)
        for c in before:
            by_run[c.training_run_id].append(c)
        expected = {
            c.tinker_path
            for members in by_run.values()
            for c in sorted(members, key=lambda c: c.time, reverse=True)[:keep]
        }
        command = [
            sys.executable,
            "-m",
            "tinker_rest.cli",
            "--base-url",
            base_url,
            "--api-key",
            key,
            "checkpoint",
            "prune",
            "--keep-last",
            str(keep),
            "--yes",
        ]
        first = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TINKER_API_KEY": ""},
        )
        with RestClient(base_url, key) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                left = client.list_user_checkpoints(1, 0).result().cursor.total_count
                if left <= count - 300:
                    break
                time.sleep(0.05)
            first.send_signal(signal.SIGINT)
            _, err = first.communicate(timeout=60)
            assert first.returncode == 130, err
            assert "Run the same command again to finish" in err
            left = client.list_user_checkpoints(1, 0).result().cursor.total_count
            assert len(expected) < left < count - 200  # stopped part way
            second = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=300,
                env={**os.environ, "TINKER_API_KEY": ""},
            )
            assert second.returncode == 0, second.stderr
            assert {c.tinker_path for c in client.iter_user_checkpoints(page_size=1000)} == expected
    finally:
        server.communicate(input="", timeout=60)


def test_a_prune_stops_soon_when_the_service_goes_away(tmp_path: Path) -> None:
    """The service dies part way: the prune stops after a few connection failures, says how
    far it got, and does not grind through every remaining checkpoint's retries."""
    server = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "scripts" / "bench" / "ref_server.py"),
            "--dir",
            str(tmp_path),
            "--runs",
            "11",
            "--checkpoints",
            "1500",
            "--download-bytes",
            "16",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        info = json.loads(server.stdout.readline())
        command = [
            sys.executable,
            "-m",
            "tinker_rest.cli",
            "-f",
            "json",
            "--base-url",
            info["base_url"],
            "--api-key",
            info["api_key"],
            "checkpoint",
            "prune",
            "--keep-last",
            "0",
            "--yes",
        ]
        prune = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TINKER_API_KEY": ""},
        )
        with RestClient(info["base_url"], info["api_key"]) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if client.list_user_checkpoints(1, 0).result().cursor.total_count < 1400:
                    break
                time.sleep(0.05)
        server.kill()
        out, err = prune.communicate(timeout=120)
    finally:
        server.kill()
        server.communicate(timeout=60)
    assert prune.returncode == 1, err
    result = json.loads(out)
    assert result["stopped"].startswith("the service could not be reached")
    assert len(result["not_attempted"]) > 1000
    assert "Run the same command again to finish" in err
    assert err.count("Error: could not delete") < 50


def test_storage_report_by_project_follows_every_search_page(store: Store) -> None:
    """The sessions holding checkpoints come after a full search page (200, newest first)."""
    user, key = store.user("projects")
    project = store.server.add_project(
        f"p-{time.monotonic_ns()}", organization_id=store.org, members=[user]
    )
    sessions = 5
    for index in range(sessions):
        session = store.server.add_session(user, project_id=project, created_at=T0)
        run = store.server.add_training_run(session, base_model="Qwen/Qwen3-8B", lora_rank=8)
        store.server.add_checkpoint(run, "weights", "0001", files={"w": 100 + index})
    later = T0 + dt.timedelta(hours=1)
    for _ in range(200):  # newer, so they fill the first page; no checkpoints: never read
        store.server.add_session(user, project_id=project, created_at=later)
    store.runs(user, {0: 2})  # a session in no project: 100 bytes each
    with RestClient(store.base_url, key) as client:
        report = client.storage_report(by="project")
    assert report.by == "project"
    assert [(r.key, r.checkpoints, r.size_bytes) for r in report.rows] == [
        (project, sessions, sum(100 + i for i in range(sessions))),
        ("(no project)", 2, 200),
    ]
    # A member may not read the storage rate: no cost, and the report says why.
    assert report.rate_usd_per_gigabyte_month is None and report.estimated_monthly_cost_usd is None
    assert report.rate_unavailable == "reading the storage rate needs the admin role"
    assert report.model_dump()["rows"][0]["estimated_monthly_cost_usd"] is None


def test_storage_report_costs_at_the_rate_an_admin_reads(store: Store) -> None:
    admin = store.server.add_user(
        f"admin-{time.monotonic_ns()}@example.com", organization_id=store.org, role="admin"
    )
    store.runs(admin, {0: 3, 4: 1})
    with RestClient(store.base_url, store.server.add_api_key(admin)) as client:
        report = client.storage_report()
    assert report.rate_usd_per_gigabyte_month == 0.10 and report.rate_unavailable is None
    assert [report.cost(row) for row in report.rows] == [
        pytest.approx(500 / 10**9 * 0.10),
        pytest.approx(300 / 10**9 * 0.10),
    ]
    dumped = report.model_dump()
    assert dumped["estimated_monthly_cost_usd"] == pytest.approx(800 / 10**9 * 0.10)
    assert dumped["total"]["estimated_monthly_cost_usd"] == dumped["estimated_monthly_cost_usd"]

"""Every RestClient method against the reference server over real HTTP, both call paths."""

from __future__ import annotations

import datetime
import io
import subprocess
import sys
import tarfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tinker_rest import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InvalidTinkerPathError,
    NotFoundError,
    PermissionDeniedError,
    RestClient,
    RetryPolicy,
)
from tinker_rest.types import (
    Checkpoint,
    CheckpointsListResponse,
    GetSamplerResponse,
    GetSessionResponse,
    TrainingRun,
    TrainingRunsResponse,
    WeightsInfoResponse,
)

if TYPE_CHECKING:
    from conftest import World

Call = Callable[..., Any]


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# -- training runs --------------------------------------------------------------------------


def test_get_training_run(world: World, alice: RestClient, call: Call) -> None:
    run = call(alice, "get_training_run", world.run_a)
    assert isinstance(run, TrainingRun)
    assert (run.training_run_id, run.base_model, run.is_lora, run.lora_rank) == (
        world.run_a,
        "Qwen/Qwen3-8B",
        True,
        32,
    )
    assert run.model_owner and run.corrupted is False
    assert run.last_checkpoint is not None and run.last_checkpoint.checkpoint_id == "weights/0002"
    assert run.last_sampler_checkpoint is not None
    assert run.last_sampler_checkpoint.checkpoint_type == "sampler"


def test_get_training_run_by_tinker_path(world: World, alice: RestClient, call: Call) -> None:
    run = call(alice, "get_training_run_by_tinker_path", f"tinker://{world.run_a}/weights/0001")
    assert run.training_run_id == world.run_a


def test_access_scope_decides_what_is_visible(world: World, alice: RestClient, call: Call) -> None:
    # run_b is bob's, in a project alice belongs to; run_c is bob's alone.
    with pytest.raises(NotFoundError):
        call(alice, "get_training_run", world.run_b)
    assert call(alice, "get_training_run", world.run_b, "accessible").training_run_id == world.run_b
    for scope in ("owned", "accessible"):
        with pytest.raises(NotFoundError) as raised:
            call(alice, "get_training_run", world.run_c, scope)
        assert raised.value.request_id  # every response carries x-request-id


def test_list_training_runs_pages(world: World, alice: RestClient, call: Call) -> None:
    page = call(alice, "list_training_runs")
    assert isinstance(page, TrainingRunsResponse)
    assert [r.training_run_id for r in page.training_runs] == [world.run_a]
    assert (page.cursor.offset, page.cursor.limit, page.cursor.total_count) == (0, 20, 1)
    wider = call(alice, "list_training_runs", 1, 0, "accessible")
    assert wider.cursor.total_count == 2 and len(wider.training_runs) == 1
    rest = call(alice, "list_training_runs", 1, 1, "accessible")
    ids = {wider.training_runs[0].training_run_id, rest.training_runs[0].training_run_id}
    assert ids == {world.run_a, world.run_b}


def test_iter_training_runs_walks_every_page(world: World, bob: RestClient) -> None:
    ids = [r.training_run_id for r in bob.iter_training_runs(page_size=1)]
    assert sorted(ids) == sorted([world.run_b, world.run_c])
    assert len(list(bob.iter_training_runs(page_size=1, limit=1))) == 1


# -- checkpoints ----------------------------------------------------------------------------


def test_list_checkpoints(world: World, alice: RestClient, call: Call) -> None:
    listed = call(alice, "list_checkpoints", world.run_a)
    assert isinstance(listed, CheckpointsListResponse)
    assert listed.cursor is None
    by_id = {c.checkpoint_id: c for c in listed.checkpoints}
    assert set(by_id) >= {"weights/0001", "sampler_weights/final"}
    final = by_id["sampler_weights/final"]
    assert final.checkpoint_type == "sampler"
    assert final.tinker_path == f"tinker://{world.run_a}/sampler_weights/final"
    assert final.training_run_id == world.run_a
    assert final.size_bytes == sum(len(b) for b in world.files.values())
    assert final.public is False and final.expires_at is None
    assert isinstance(final.time, datetime.datetime) and final.time.tzinfo is not None


def test_list_user_checkpoints_newest_first(world: World, bob: RestClient, call: Call) -> None:
    page = call(bob, "list_user_checkpoints", 2, 0)
    assert page.cursor is not None and page.cursor.total_count == 3
    assert len(page.checkpoints) == 2
    everything = list(bob.iter_user_checkpoints(page_size=2))
    assert len(everything) == 3
    times = [c.time for c in everything]
    assert times == sorted(times, reverse=True)
    assert all(isinstance(c, Checkpoint) and c.training_run_id for c in everything)


def test_weights_info_works_for_own_and_published_checkpoints(
    world: World, alice: RestClient, call: Call
) -> None:
    own = call(alice, "get_weights_info_by_tinker_path", f"tinker://{world.run_a}/weights/0001")
    assert isinstance(own, WeightsInfoResponse)
    assert (own.base_model, own.is_lora, own.lora_rank) == ("Qwen/Qwen3-8B", True, 32)
    public = call(alice, "get_weights_info_by_tinker_path", f"tinker://{world.run_c}/weights/0001")
    assert public.base_model == "meta-llama/Llama-3.1-8B" and public.is_lora is False
    with pytest.raises(NotFoundError):
        call(alice, "get_weights_info_by_tinker_path", f"tinker://{world.run_c}/weights/0002")


def test_publish_and_unpublish(
    world: World, alice: RestClient, bob: RestClient, call: Call
) -> None:
    path = f"tinker://{world.run_a}/weights/0001"

    def public() -> bool:
        listed = alice.list_checkpoints(world.run_a).result(timeout=30).checkpoints
        return next(c.public for c in listed if c.tinker_path == path)

    assert call(alice, "publish_checkpoint_from_tinker_path", path) is None
    assert public()
    with pytest.raises(ConflictError, match="409"):
        call(alice, "publish_checkpoint_from_tinker_path", path)
    with pytest.raises(NotFoundError):  # only the owner may
        call(bob, "unpublish_checkpoint_from_tinker_path", path)
    assert call(alice, "unpublish_checkpoint_from_tinker_path", path) is None
    assert not public()
    with pytest.raises(ConflictError):
        call(alice, "unpublish_checkpoint_from_tinker_path", path)


def test_set_and_remove_ttl(world: World, alice: RestClient, call: Call) -> None:
    path = f"tinker://{world.run_a}/weights/0002"

    def expires_at() -> datetime.datetime | None:
        listed = alice.list_checkpoints(world.run_a).result(timeout=30).checkpoints
        value = next(c.expires_at for c in listed if c.tinker_path == path)
        assert not isinstance(value, str)
        return value

    before = now()
    call(alice, "set_checkpoint_ttl_from_tinker_path", path, 86400)
    expiry = expires_at()
    assert expiry is not None
    assert (
        before + datetime.timedelta(seconds=86390)
        < expiry
        < now() + datetime.timedelta(days=1, seconds=10)
    )
    call(alice, "set_checkpoint_ttl_from_tinker_path", path, None)
    assert expires_at() is None
    with pytest.raises(BadRequestError, match="ttl_seconds"):
        call(alice, "set_checkpoint_ttl_from_tinker_path", path, 60)


def test_archive_url_downloads_the_checkpoint_files(
    world: World, alice: RestClient, call: Call
) -> None:
    archive = call(alice, "get_checkpoint_archive_url", world.run_a, "sampler_weights/final")
    assert archive.expires_at == archive.expires > now()
    same = call(
        alice,
        "get_checkpoint_archive_url_from_tinker_path",
        f"tinker://{world.run_a}/sampler_weights/final",
    )
    assert same.url.split("?")[0] == archive.url.split("?")[0]
    body = httpx.get(archive.url, timeout=30).content  # the signed URL needs no key
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        got = {m.name.rsplit("/", 1)[-1]: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    assert got == world.files


def test_delete_checkpoint(world: World, bob: RestClient, call: Call) -> None:
    server = world.server
    name = f"doomed-{call.__name__}"
    server.add_checkpoint(world.run_c, "weights", name, files=world.files)
    server.add_checkpoint(world.run_c, "weights", f"{name}-2", files=world.files)
    assert call(bob, "delete_checkpoint", world.run_c, f"weights/{name}") is None
    assert (
        call(bob, "delete_checkpoint_from_tinker_path", f"tinker://{world.run_c}/weights/{name}-2")
        is None
    )
    ids = {
        c.checkpoint_id for c in bob.list_checkpoints(world.run_c).result(timeout=30).checkpoints
    }
    assert f"weights/{name}" not in ids and f"weights/{name}-2" not in ids
    with pytest.raises(NotFoundError):
        call(bob, "delete_checkpoint", world.run_c, f"weights/{name}")


# -- sessions, samplers, audit --------------------------------------------------------------


def test_get_session(world: World, alice: RestClient, call: Call) -> None:
    session = call(alice, "get_session", world.session_a)
    assert isinstance(session, GetSessionResponse)
    assert session.training_run_ids == [world.run_a]
    assert session.sampler_ids == [world.sampler_a]
    assert session.display_name == "baseline sweep"


def test_list_sessions(world: World, bob: RestClient, call: Call) -> None:
    assert set(call(bob, "list_sessions").sessions) == {world.session_b, world.session_c}
    assert len(call(bob, "list_sessions", 1, 0).sessions) == 1
    assert set(bob.iter_sessions(page_size=1)) == {world.session_b, world.session_c}


def test_assign_session_project(
    world: World, alice: RestClient, bob: RestClient, call: Call
) -> None:
    server = world.server
    session = server.add_session(world.bob_id)
    with pytest.raises(NotFoundError):
        call(alice, "get_session", session, "accessible")
    assert call(bob, "assign_session_project", session, world.project_id) is None
    assert call(alice, "get_session", session, "accessible").training_run_ids == []
    with pytest.raises(NotFoundError):
        call(bob, "assign_session_project", session, "proj-does-not-exist")


def test_get_sampler(world: World, alice: RestClient, call: Call) -> None:
    sampler = call(alice, "get_sampler", world.sampler_a)
    assert isinstance(sampler, GetSamplerResponse)
    assert sampler.sampler_id == world.sampler_a
    assert sampler.model_path == f"tinker://{world.run_a}/sampler_weights/final"
    with pytest.raises(NotFoundError):
        call(alice, "get_sampler", f"{world.session_a}:sample:99")


def test_audit_log(world: World, alice: RestClient, bob: RestClient, call: Call) -> None:
    path = f"tinker://{world.run_c}/weights/0002"
    bob.publish_checkpoint_from_tinker_path(path).result(timeout=30)
    bob.unpublish_checkpoint_from_tinker_path(path).result(timeout=30)
    log = call(alice, "get_audit_log")
    events = [(e.event, e.tinker_path) for e in log.entries]
    assert ("checkpoint_publish", path) in events and ("checkpoint_unpublish", path) in events
    timestamps = [e.timestamp for e in log.entries]
    assert timestamps == sorted(timestamps)
    assert all(isinstance(e.event_details, object) for e in log.entries)
    only = call(alice, "get_audit_log", "checkpoints", datetime.date.today())
    assert only.entries and all(e.event.startswith("checkpoint_") for e in only.entries)
    assert call(alice, "get_audit_log", "all", datetime.date(2020, 1, 1)).entries == []
    with pytest.raises(PermissionDeniedError):
        call(bob, "get_audit_log")


# -- errors ---------------------------------------------------------------------------------


def test_a_bad_key_is_an_authentication_error(world: World, call: Call) -> None:
    with world.client("tml-not-a-real-key") as client, pytest.raises(AuthenticationError) as raised:
        call(client, "list_training_runs")
    assert raised.value.status_code == 401 and raised.value.detail


def test_a_malformed_path_fails_before_any_request(world: World, alice: RestClient) -> None:
    with pytest.raises(InvalidTinkerPathError, match="'tinker://only-a-run'"):
        alice.get_weights_info_by_tinker_path("tinker://only-a-run")


def test_concurrent_calls_from_many_threads_share_one_client(
    world: World, alice: RestClient
) -> None:
    futures = [alice.get_training_run(world.run_a) for _ in range(64)]
    assert {f.result(timeout=60).training_run_id for f in futures} == {world.run_a}


class LoseFirstResponse(httpx.BaseTransport):
    """Sends every request to the real server, but loses the first response on the way back."""

    def __init__(self) -> None:
        self.real = httpx.HTTPTransport()
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        response = self.real.handle_request(request)
        if len(self.sent) == 1:
            response.read()
            response.close()
            raise httpx.ReadError("connection reset after the server answered", request=request)
        return response

    def close(self) -> None:
        self.real.close()


def test_a_publish_retried_after_a_lost_response_is_not_a_conflict(world: World) -> None:
    path = world.server.add_checkpoint(world.run_a, "weights", "retried", files=world.files)
    transport = LoseFirstResponse()
    with world.client(transport=transport) as client:
        client.retry_policy = RetryPolicy(initial_delay=0.01)
        assert client.publish_checkpoint_from_tinker_path(path).result(timeout=30) is None
    assert len(transport.sent) == 2
    assert (
        transport.sent[0].headers["X-Idempotency-Key"]
        == transport.sent[1].headers["X-Idempotency-Key"]
    )
    with world.client() as client:
        listed = client.list_checkpoints(world.run_a).result(timeout=30).checkpoints
        assert next(c.public for c in listed if c.tinker_path == path)
        with pytest.raises(ConflictError):  # a new call is a new request
            client.publish_checkpoint_from_tinker_path(path).result(timeout=30)


def test_a_program_that_ends_without_waiting_or_closing_still_makes_its_calls(
    world: World,
) -> None:
    path = world.server.add_checkpoint(world.run_a, "weights", "fire-and-forget", files=world.files)
    program = (
        "from tinker_rest import RestClient\n"
        f"client = RestClient({world.base_url!r}, {world.alice_key!r})\n"
        f"client.publish_checkpoint_from_tinker_path({path!r})  # neither waited on nor closed\n"
    )
    # The bound is generous; without the workers noticing the end of the main thread, the
    # interpreter would wait on them for ever.
    finished = subprocess.run([sys.executable, "-c", program], timeout=60, check=False)
    assert finished.returncode == 0
    with world.client() as client:
        listed = client.list_checkpoints(world.run_a).result(timeout=30).checkpoints
        assert next(c.public for c in listed if c.tinker_path == path)


def test_calls_still_run_from_a_thread_that_outlives_the_main_thread(world: World) -> None:
    program = (
        "import threading, time\n"
        "from tinker_rest import RestClient\n"
        f"client = RestClient({world.base_url!r}, {world.alice_key!r}, max_workers=1)\n"
        f"client.get_training_run({world.run_a!r}).result()  # the pool's thread starts\n"
        "def later():\n"
        "    time.sleep(1.5)  # the main thread has ended, and the idle worker with it\n"
        "    # With a timeout the waiting thread does not run the call itself: a worker must.\n"
        f"    run = client.get_training_run({world.run_a!r}).result(timeout=20)\n"
        "    print(run.training_run_id)\n"
        "threading.Thread(target=later).start()\n"
    )
    finished = subprocess.run(
        [sys.executable, "-c", program], timeout=60, check=False, capture_output=True, text=True
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == world.run_a


def test_a_forked_child_makes_calls_of_its_own(world: World) -> None:
    program = (
        "import os\n"
        "from tinker_rest import RestClient\n"
        f"client = RestClient({world.base_url!r}, {world.alice_key!r}, max_workers=1)\n"
        f"client.get_training_run({world.run_a!r}).result(timeout=20)  # a worker, a connection\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    # Neither the parent's worker nor its connection came along: the child gets its own.\n"
        f"    run = client.get_training_run({world.run_a!r}).result(timeout=20)\n"
        "    os._exit(0 if run.training_run_id == " + repr(world.run_a) + " else 1)\n"
        "_, status = os.waitpid(pid, 0)\n"
        f"client.get_training_run({world.run_a!r}).result(timeout=20)  # the parent still works\n"
        "raise SystemExit(os.waitstatus_to_exitcode(status))\n"
    )
    finished = subprocess.run(
        [sys.executable, "-c", program], timeout=90, check=False, capture_output=True, text=True
    )
    assert finished.returncode == 0, finished.stderr

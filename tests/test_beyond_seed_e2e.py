"""The operations beyond the seed against the reference server, on SQLite and PostgreSQL.

whoami, get_server_capabilities, list_training_runs(project_id), copy_weights,
get_external_weights_urls (and file-by-file downloads), search_sessions, export_session_trace
and AdminClient, each through its future and its async twin where it has one, with the
failure cases: 404 for others' private things, 403 without the role or project, 400 on bad
input, and errors before any request for a missing project id or a wrong checkpoint kind.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tinker_rest import (
    AdminClient,
    AuthenticationError,
    BadRequestError,
    InvalidTinkerPathError,
    NotFoundError,
    PermissionDeniedError,
    RestClient,
    TraceExportError,
)

if TYPE_CHECKING:
    from conftest import World

Call = Callable[..., Any]
TOKEN = "weights-token-7c1e-never-logged"
EXTERNAL_FILES = {
    "adapter_config.json": b'{"peft_type": "LORA", "r": 8}',
    "nested/adapter_model.safetensors": bytes(range(256)) * 300,
}


class Extra:
    """What this module adds to the world: a user in no project, an external checkpoint."""

    def __init__(self, world: World) -> None:
        from tinker_rest.server.beyond.accounts import add_supported_model

        server = world.server
        org = server.store.transaction
        with org() as s:
            from tinker_rest.server import db

            alice = s.query(db.User).filter_by(email="alice@example.com").one()
            self.org_id = alice.organization_id
            self.alice_id = alice.id
        carol = server.add_user("carol@example.com", organization_id=self.org_id)
        self.carol_key = server.add_api_key(carol)
        self.external = server.add_checkpoint(
            world.run_a, "external_weights", "peft", files=EXTERNAL_FILES
        )
        self.bob_external = server.add_checkpoint(
            world.run_c, "external_weights", "private", files=EXTERNAL_FILES
        )
        add_supported_model(server.store, "Qwen/Qwen3-8B", max_context_length=32768)
        add_supported_model(server.store, "meta-llama/Llama-3.1-8B", sampleable=False)


@pytest.fixture(scope="module")
def extra(world: World) -> Extra:
    return Extra(world)


@pytest.fixture
def alice(world: World) -> Iterator[RestClient]:
    with world.client() as client:
        yield client


@pytest.fixture
def bob(world: World) -> Iterator[RestClient]:
    with world.client(world.bob_key) as client:
        yield client


@pytest.fixture
def carol(world: World, extra: Extra) -> Iterator[RestClient]:
    with world.client(extra.carol_key) as client:
        yield client


def refusing_client() -> RestClient:
    """A client whose every request fails the test: for errors that must come before one."""

    def fail(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no request should be sent, got {request.method} {request.url}")

    return RestClient("http://tinker.test", "tml-x", transport=httpx.MockTransport(fail))


# -- list_training_runs(project_id) ---------------------------------------------------------


def test_list_training_runs_filters_by_project(world: World, alice: RestClient, call: Call) -> None:
    page = call(alice, "list_training_runs", 20, 0, "accessible", world.project_id)
    ids = {r.training_run_id for r in page.training_runs}
    assert world.run_b in ids and world.run_a not in ids and world.run_c not in ids
    assert call(alice, "list_training_runs", 20, 0, "owned", "proj-elsewhere").training_runs == []


def test_list_training_runs_sends_project_id_only_when_given() -> None:
    seen: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(
            200, json={"training_runs": [], "cursor": {"offset": 0, "limit": 20, "total_count": 0}}
        )

    client = RestClient("http://tinker.test", "tml-x", transport=httpx.MockTransport(answer))
    with client:
        client.list_training_runs().result()
        client.list_training_runs(project_id="p1").result()
    assert "project_id" not in seen[0].params
    assert list(seen[1].params.keys()) == ["limit", "offset", "access_scope", "project_id"]


# -- whoami and capabilities ----------------------------------------------------------------


def test_whoami(world: World, alice: RestClient, extra: Extra, call: Call) -> None:
    me = call(alice, "whoami")
    assert me.email == "alice@example.com"
    assert me.user_urn == f"urn:tinker:user:{extra.alice_id}"
    assert me.org_urn == f"urn:tinker:org:{extra.org_id}"
    with (
        RestClient(world.base_url, "tml-" + "x" * 40) as stranger,
        pytest.raises(AuthenticationError),
    ):
        call(stranger, "whoami")


def test_server_capabilities(alice: RestClient, extra: Extra, call: Call) -> None:
    models = {m.model_name: m for m in call(alice, "get_server_capabilities").supported_models}
    assert models["Qwen/Qwen3-8B"].max_context_length == 32768
    assert models["Qwen/Qwen3-8B"].trainable and models["Qwen/Qwen3-8B"].sampleable
    assert models["meta-llama/Llama-3.1-8B"].sampleable is False


# -- copy_weights ---------------------------------------------------------------------------


def test_copy_weights_makes_a_run_sharing_the_bytes(
    world: World, alice: RestClient, call: Call
) -> None:
    source = f"tinker://{world.run_a}/weights/0001"
    copied = call(alice, "copy_weights", source, world.project_id, ttl_seconds=7200)
    assert isinstance(copied, str) and copied.endswith("/weights/0001") and copied != source
    run_id = copied.removeprefix("tinker://").split("/")[0]
    run = call(alice, "get_training_run", run_id)
    assert (run.base_model, run.lora_rank) == ("Qwen/Qwen3-8B", 32)
    (ckpt,) = call(alice, "list_checkpoints", run_id).checkpoints
    assert ckpt.expires_at is not None
    left = ckpt.expires_at - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(minutes=110) < left <= datetime.timedelta(hours=2)
    in_project = call(alice, "list_training_runs", 50, 0, "owned", world.project_id)
    assert run_id in {r.training_run_id for r in in_project.training_runs}
    # The same stored bytes: every file of the copy is a hard link to the source's.
    from tinker_rest.server import db

    with world.server.store.transaction() as s:
        blobs = [
            s.query(db.Checkpoint)
            .filter_by(training_run_id=rid, kind="weights", name="0001")
            .one()
            .blob_id
            for rid in (world.run_a, run_id)
        ]
        assert s.get(db.WeightCopy, run_id).source_tinker_path == source
    a, b = (world.server.store.blob_dir / blob for blob in blobs)
    for name in world.files:
        assert os.stat(a / name).st_ino == os.stat(b / name).st_ino
        assert (b / name).read_bytes() == world.files[name]


def test_copy_weights_reads_public_and_project_sources(
    world: World, alice: RestClient, call: Call
) -> None:
    public = call(alice, "copy_weights", f"tinker://{world.run_c}/weights/0001", world.project_id)
    assert public.startswith("tinker://")
    via_project = call(
        alice, "copy_weights", f"tinker://{world.run_b}/weights/0001", world.project_id
    )
    assert via_project.startswith("tinker://")
    with pytest.raises(NotFoundError):  # bob's private checkpoint outside any project
        call(alice, "copy_weights", f"tinker://{world.run_c}/weights/0002", world.project_id)


def test_copy_weights_needs_a_writable_project(
    world: World, carol: RestClient, alice: RestClient, call: Call
) -> None:
    with pytest.raises(PermissionDeniedError):  # carol belongs to no project
        call(carol, "copy_weights", f"tinker://{world.run_c}/weights/0001", world.project_id)
    with pytest.raises(NotFoundError):
        call(alice, "copy_weights", f"tinker://{world.run_a}/weights/0001", "proj-nowhere")


def test_copy_weights_project_from_environment(
    world: World, alice: RestClient, call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TINKER_PROJECT_ID", world.project_id)
    assert call(alice, "copy_weights", f"tinker://{world.run_a}/weights/0002").startswith(
        "tinker://"
    )


def test_copy_weights_refuses_bad_input_before_any_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TINKER_PROJECT_ID", raising=False)
    with refusing_client() as client:
        with pytest.raises(
            ValueError, match="Provide destination_project_id or set TINKER_PROJECT_ID"
        ):
            client.copy_weights("tinker://run/weights/0001")
        with pytest.raises(ValueError, match="ttl_seconds"):
            client.copy_weights("tinker://run/weights/0001", "p", ttl_seconds=60)
        with pytest.raises(InvalidTinkerPathError):
            client.copy_weights("not-a-path", "p")


def test_copy_weights_server_checks_ttl(world: World) -> None:
    answer = httpx.post(
        world.base_url + "/api/v1/copy_weights",
        headers={"X-API-Key": world.alice_key},
        json={
            "source_path": f"tinker://{world.run_a}/weights/0001",
            "destination_project_id": world.project_id,
            "ttl_seconds": 10,
        },
    )
    assert answer.status_code == 400 and "ttl_seconds" in answer.json()["detail"]


def test_weights_access_token_travels_only_in_its_header(
    world: World, carol: RestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[httpx.Request] = []
    real = httpx.HTTPTransport()

    class Spy(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return real.handle_request(request)

    with real, RestClient(world.base_url, world.alice_key, transport=Spy()) as client:
        future = client.copy_weights(
            f"tinker://{world.run_c}/weights/0002", world.project_id, weights_access_token=TOKEN
        )
        with pytest.raises(NotFoundError) as raised:
            future.result(timeout=60)
    assert seen[0].headers["X-Tinker-Weights-Access-Token"] == TOKEN
    assert TOKEN.encode() not in seen[0].content and TOKEN not in str(seen[0].url)
    for text in (caplog.text, str(raised.value), repr(raised.value), repr(future), repr(client)):
        assert TOKEN not in text


# -- external weights -----------------------------------------------------------------------


def test_external_weights_urls_serve_each_file(
    world: World, alice: RestClient, extra: Extra, call: Call
) -> None:
    signed = call(alice, "get_external_weights_urls", extra.external)
    urls = signed.urls.to_dict()
    assert set(urls) == set(EXTERNAL_FILES)
    assert signed.expires > datetime.datetime.now(datetime.UTC)
    for relative, url in urls.items():
        body = EXTERNAL_FILES[relative]
        assert httpx.get(url).content == body  # no API key needed
        assert int(httpx.head(url).headers["content-length"]) == len(body)
        part = httpx.get(url, headers={"Range": "bytes=3-9"})
        assert part.status_code == 206 and part.content == body[3:10]
        assert httpx.get(url, headers={"Range": f"bytes={len(body)}-"}).status_code == 416
    url = urls["adapter_config.json"]
    assert httpx.get(url.replace("signature=", "signature=0")).status_code == 403
    # The signature covers the path: another path with the same signature is refused.
    assert httpx.get(url.replace("path=adapter_config.json", "path=..%2Fx")).status_code in (
        400,
        403,
    )


def test_checkpoint_file_paths_cannot_leave_the_checkpoint(world: World, extra: Extra) -> None:
    from tinker_rest.server.beyond.weights import FILES_ROUTE, _signed

    signer = world.server.signer
    with world.server.store.transaction() as s:
        from tinker_rest.server import db

        blob = s.query(db.Checkpoint).filter_by(kind="external_weights", name="peft").one().blob_id
    expires = int(datetime.datetime.now(datetime.UTC).timestamp()) + 600
    for evil in ("../secret", "nested/../../secret", "/etc/passwd", "a\\..\\b"):
        params = {"path": evil, **_signed(signer, blob, evil, expires)}
        answer = httpx.get(world.base_url + f"{FILES_ROUTE}/{blob}", params=params)
        assert answer.status_code == 400, evil


def test_external_weights_urls_failures(
    world: World, carol: RestClient, alice: RestClient, extra: Extra, call: Call
) -> None:
    with pytest.raises(NotFoundError):  # alice's, in no project carol is in
        call(carol, "get_external_weights_urls", extra.external)
    with pytest.raises(NotFoundError):  # bob's private one
        call(alice, "get_external_weights_urls", extra.bob_external)
    with refusing_client() as client, pytest.raises(ValueError, match="external_weights"):
        client.get_external_weights_urls(f"tinker://{world.run_a}/weights/0001")


def test_download_external_checkpoint_file_by_file(
    alice: RestClient, extra: Extra, tmp_path: Path
) -> None:
    where = alice.download_checkpoint(extra.external, tmp_path)
    got = {p.relative_to(where).as_posix(): p.read_bytes() for p in where.rglob("*") if p.is_file()}
    assert got == EXTERNAL_FILES
    from tinker_rest import TargetExistsError

    with pytest.raises(TargetExistsError):
        alice.download_checkpoint(extra.external, tmp_path)
    assert alice.download_checkpoint(extra.external, tmp_path, force=True) == where


def test_external_download_signs_again_near_expiry(
    alice: RestClient, extra: Extra, tmp_path: Path
) -> None:
    from tinker_rest._external_download import download_external_weights

    asked: list[int] = []

    def urls() -> Any:
        asked.append(1)
        return alice.get_external_weights_urls(extra.external).result()

    # A clock 58 minutes ahead: the hour-long URLs are within 5 minutes of expiring.
    def later() -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=58)

    download_external_weights(alice._http(), urls, tmp_path / "x", now=later)
    assert len(asked) == 1 + len(EXTERNAL_FILES)
    download_external_weights(alice._http(), urls, tmp_path / "y")
    assert len(asked) == 2 + len(EXTERNAL_FILES)


@pytest.mark.parametrize(
    "evil", ["../escape", "/abs", "a/../../b", "a//b", "./a", "C:x", "a\\b", "nul\x00"]
)
def test_external_download_refuses_traversal(evil: str, tmp_path: Path) -> None:
    from tinker_rest import UnsafeArchiveError
    from tinker_rest._external_download import download_external_weights
    from tinker_rest.types import ExternalWeightsUrlsResponse

    listing = ExternalWeightsUrlsResponse.from_dict(
        {"urls": {evil: "http://127.0.0.1:9/never"}, "expires": "2099-01-01T00:00:00Z"}
    )
    with httpx.Client() as http, pytest.raises(UnsafeArchiveError):
        download_external_weights(http, lambda: listing, tmp_path / "t")
    assert list(tmp_path.iterdir()) == []


# -- search_sessions ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def searchable(world: World, extra: Extra) -> dict[str, str]:
    from tinker_rest.server.beyond.session_search import set_session_status

    server = world.server
    now = datetime.datetime.now(datetime.UTC)
    ids = {}
    for index, (name, meta) in enumerate(
        [
            ("Search Alpha sweep", {"team": "x"}),
            ("search beta SWEEP", {"team": "y"}),
            ("search gamma", {"team": "x", "k": "v"}),
        ]
    ):
        ids[name] = server.add_session(
            extra.alice_id,
            display_name=name,
            user_metadata=meta,
            created_at=now - datetime.timedelta(minutes=10 - index),
        )
    set_session_status(
        server.store, ids["Search Alpha sweep"], "client_finished", reason={"type": "success"}
    )
    set_session_status(
        server.store,
        ids["search beta SWEEP"],
        "failed",
        category="user",
        message="boom",
        reason={"type": "request", "request_id": "r1", "request_type": "forward"},
    )
    return ids


def search_ids(client: RestClient, request: dict[str, Any]) -> list[str]:
    return [s.session_id for s in client.search_sessions(request).result(timeout=60).sessions]


def test_search_sessions_filters(
    world: World, alice: RestClient, bob: RestClient, searchable: dict[str, str]
) -> None:
    alpha, beta, gamma = searchable.values()
    assert search_ids(alice, {"display_name": "search"}) == [gamma, beta, alpha]  # newest first
    assert search_ids(alice, {"display_name": "SWEEP search"}) == [beta, alpha]
    assert search_ids(alice, {"display_name": "gamma", "session_id": alpha}) == [gamma, alpha]
    assert search_ids(alice, {"user_metadata": {"team": "x"}}) == [gamma, alpha]
    assert search_ids(alice, {"user_metadata": {"team": "x", "k": "v"}}) == [gamma]
    finished = {"statuses": [{"type": "client_finished", "reasons": ["success"]}]}
    assert search_ids(alice, finished) == [alpha]
    assert (
        search_ids(alice, {"statuses": [{"type": "client_finished", "reasons": ["errored"]}]}) == []
    )
    failed = alice.search_sessions({"statuses": [{"type": "failed"}]}).result().sessions
    assert [s.session_id for s in failed] == [beta]
    assert failed[0].status.message == "boom" and failed[0].status.category == "user"
    active = search_ids(alice, {"display_name": "search", "statuses": [{"type": "active"}]})
    assert active == [gamma]
    # Owners: bob's own, everything he may read, and alice's sessions he may read.
    assert world.session_b in search_ids(bob, {}) and world.session_c in search_ids(bob, {})
    readable = search_ids(bob, {"owner": {"type": "accessible"}, "limit": 200})
    assert alpha not in readable and world.session_b in readable
    me = alice.whoami().result().user_urn
    alices = bob.search_sessions({"owner": {"type": "user", "owner_urns": [me]}, "limit": 200})
    found = alices.result().sessions  # alice's sessions in the project (copies), not her own
    assert {s.owner for s in found} <= {me} and {s.project_id for s in found} <= {world.project_id}
    assert alpha not in {s.session_id for s in found}
    in_project = search_ids(
        alice, {"project_ids": [world.project_id], "owner": {"type": "accessible"}}
    )
    assert world.session_b in in_project and alpha not in in_project


def test_search_sessions_summary(alice: RestClient, world: World) -> None:
    (summary,) = alice.search_sessions({"session_id": world.session_a}).result().sessions
    assert summary.owner.startswith("urn:tinker:user:")
    assert summary.project_id == "" and summary.display_name == "baseline sweep"
    assert summary.checkpoints_count >= 3 and summary.checkpoint_storage_bytes > 0


def test_search_sessions_pages_with_the_cursor(
    alice: RestClient, searchable: dict[str, str]
) -> None:
    first = alice.search_sessions({"display_name": "search", "limit": 2}).result()
    assert len(first.sessions) == 2 and first.next_cursor is not None
    rest = alice.search_sessions(
        {"display_name": "search", "limit": 2, "cursor": first.next_cursor.to_dict()}
    ).result()
    assert rest.next_cursor is None
    walked = [
        s.session_id for s in alice.iter_search_sessions({"display_name": "search", "limit": 1})
    ]
    assert walked == [s.session_id for s in first.sessions + rest.sessions]
    assert walked == list(reversed(searchable.values()))


def test_search_sessions_failures(world: World, carol: RestClient) -> None:
    with pytest.raises(NotFoundError):  # a project carol is not in
        carol.search_sessions({"project_ids": [world.project_id]}).result()
    with pytest.raises(BadRequestError):
        carol.search_sessions({"owner": {"type": "user", "owner_urns": ["bob"]}}).result()
    with refusing_client() as client:
        for bad in (
            {"limit": 0},
            {"limit": 201},
            {"display_name": ""},
            {"statuses": []},
            {"owner": {"type": "user", "owner_urns": []}},
        ):
            with pytest.raises(ValueError):
                client.search_sessions(bad)
    answer = httpx.post(
        world.base_url + "/api/v1/sessions/search",
        json={"limit": 0},
        headers={"X-API-Key": world.alice_key},
    )
    assert answer.status_code == 400 and "limit" in answer.json()["detail"]


# -- export_session_trace -------------------------------------------------------------------


def test_export_session_trace(world: World, alice: RestClient, call: Call) -> None:
    url = call(alice, "export_session_trace", world.session_a, poll_interval=0.05)
    trace = httpx.get(url).json()
    names = [e["name"] for e in trace["traceEvents"]]
    assert f"training run {world.run_a}" in names
    assert "checkpoint weights/0001" in names and f"sampler {world.sampler_a}" in names
    assert all(isinstance(e["ts"], int) for e in trace["traceEvents"] if e["ph"] != "M")
    again = call(alice, "export_session_trace", world.session_a, poll_interval=0.05)
    assert again.split("?")[0] == url.split("?")[0]  # an up-to-date trace is reused
    assert httpx.get(url.replace("signature=", "signature=0")).status_code == 403


def test_export_session_trace_failures(
    world: World, alice: RestClient, carol: RestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tinker_rest.server.beyond import traces

    with pytest.raises(NotFoundError):
        carol.export_session_trace(world.session_a, poll_interval=0.05).result()
    monkeypatch.setattr(traces, "MAX_TRACE_EVENTS", 2)
    with pytest.raises(TraceExportError, match="a trace holds at most 2"):
        # bob's session, which alice reads through the project
        alice.export_session_trace(world.session_b, poll_interval=0.05).result()
    monkeypatch.setattr(traces, "build_trace", lambda store, trace_id: None)
    with world.client(world.bob_key) as bob, pytest.raises(TimeoutError):
        bob.export_session_trace(world.session_c, deadline=0.3, poll_interval=0.05).result()
    with refusing_client() as client, pytest.raises(ValueError):
        client.export_session_trace("s", deadline=0)


# -- AdminClient ----------------------------------------------------------------------------


@pytest.fixture
def admin(world: World) -> Iterator[AdminClient]:
    with AdminClient(world.base_url, world.alice_key) as client:
        yield client


def admin_call(client: AdminClient, how: str, method: str, *args: Any) -> Any:
    import asyncio

    if how == "future":
        return getattr(client, method)(*args).result(timeout=60)
    return asyncio.run(getattr(client, f"{method}_async")(*args))


@pytest.fixture(params=["future", "async"])
def how(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_admin_audit_log_event_types(
    world: World, admin: AdminClient, alice: RestClient, how: str
) -> None:
    session = world.server.add_session(world.bob_id)
    with world.client(world.bob_key) as bob:
        bob.assign_session_project(session, world.project_id).result()
    projects = admin_call(admin, how, "get_audit_log", "projects")
    assert "session_assign_project" in {e.event for e in projects.entries}
    assert all(not e.event.startswith("checkpoint") for e in projects.entries)
    orgs = admin_call(admin, how, "get_audit_log", "organizations")
    assert {e.event for e in orgs.entries} >= {"api_key_create"}
    assert admin_call(admin, how, "get_audit_log", "teams").entries == []
    assert alice.get_audit_log("checkpoints").result().entries is not None


def test_admin_billing_usage(
    world: World, admin: AdminClient, extra: Extra, alice: RestClient, how: str
) -> None:
    from tinker_rest.server.beyond.billing import add_usage

    hour = datetime.datetime.now(datetime.UTC).replace(minute=0, second=0, microsecond=0)
    add_usage(
        world.server.store,
        world.session_a,
        {"type": "training", "token_count": 1234},
        base_model="Qwen/Qwen3-8B",
        when=hour,
        estimated_cost_usd=0.5,
    )
    alice.copy_weights(f"tinker://{world.run_a}/weights/0001", world.project_id).result()
    usage = admin_call(
        admin,
        how,
        "get_billing_usage",
        hour - datetime.timedelta(hours=1),
        (hour + datetime.timedelta(hours=2)).isoformat(),
    )
    kinds = {e.event_info.type_.value for e in usage.data}
    assert {"training", "checkpoint"} <= kinds
    training = next(e for e in usage.data if e.event_info.type_.value == "training")
    assert training.event_info.token_count == 1234 and training.session_id == world.session_a
    assert training.bucket_end - training.bucket_start == datetime.timedelta(hours=1)
    assert world.session_a in usage.sessions.additional_properties
    empty = admin_call(
        admin, how, "get_billing_usage", "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"
    )
    assert empty.data == []


def test_admin_checkpoint_storage_is_measured(world: World, admin: AdminClient, how: str) -> None:
    usage = admin_call(admin, how, "get_current_checkpoint_storage_usage")
    groups = {(g.project_id, g.user_email): g for g in usage.data}
    bob_alone = groups[(None, "bob@example.com")]
    size = sum(len(b) for b in world.files.values())
    # run_c: two weights checkpoints, plus the external one of this module.
    assert bob_alone.checkpoint_count == 3
    assert bob_alone.size_bytes == 2 * size + sum(len(b) for b in EXTERNAL_FILES.values())
    assert bob_alone.size_gigabytes == pytest.approx(bob_alone.size_bytes / 1e9)
    only = admin_call(admin, how, "get_current_checkpoint_storage_usage", world.project_id)
    assert {g.project_id for g in only.data} == {world.project_id}


def test_admin_needs_the_role_and_good_input(world: World, admin: AdminClient) -> None:
    with AdminClient(world.base_url, world.bob_key) as member:
        for call_ in (
            lambda: member.get_billing_usage("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),
            member.get_current_checkpoint_storage_usage,
            lambda: member.get_audit_log("projects"),
        ):
            with pytest.raises(PermissionDeniedError):
                call_().result(timeout=60)
    with pytest.raises(ValueError, match="offset"):
        admin.get_billing_usage(datetime.datetime(2026, 1, 1), "2026-01-02T00:00:00Z")
    with pytest.raises(ValueError, match="after"):
        admin.get_billing_usage("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z")
    with pytest.raises(ValueError, match="RFC 3339"):
        admin.get_billing_usage("yesterday", "2026-01-01T00:00:00Z")
    from tinker_rest.server.beyond import billing

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(billing, "MAX_USAGE_EVENTS", 1)
        with pytest.raises(BadRequestError, match="more than 1 events"):
            admin.get_billing_usage("2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z").result()
    raw = httpx.get(
        world.base_url + "/api/v1/billing/usage/events",
        params={"starting_on": "2026-01-01T00:00:00", "ending_before": "x"},
        headers={"X-API-Key": world.alice_key},
    )
    assert raw.status_code == 400

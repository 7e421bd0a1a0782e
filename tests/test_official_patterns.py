"""Results used exactly as code written for the official ``tinker`` SDK (0.38) uses them.

Each snippet is the way official-SDK code (its docs, tinker-cookbook) reads a result, run against
the reference server over real HTTP. They are the patterns that broke on the attrs results.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json

import pytest

import tinker_rest
from tinker_rest import types
from tinker_rest.types import Checkpoint, TrainingRun, TrainingRunsResponse

from .conftest import World

# On SQLite: conftest's PostgreSQL database is one per session, and one module only may seed a
# world into it (test_client_e2e does); what these tests read does not depend on the database.
on_sqlite = pytest.mark.parametrize("world", ["sqlite"], indirect=True)


@dataclasses.dataclass
class Labelled:
    """A run and a checkpoint the tests label with user metadata."""

    run: str
    checkpoint: str


@pytest.fixture(scope="module")
def labelled(world: World) -> Labelled:
    """Bob's run and checkpoint with user metadata (read with ``world.client(world.bob_key)``)."""
    session = world.server.add_session(
        world.bob_id, display_name="labelled", user_metadata={"team": "nlp"}
    )
    run = world.server.add_training_run(session, user_metadata={"experiment": "baseline"})
    path = world.server.add_checkpoint(run, "weights", "0001", user_metadata={"step": "100"})
    world.server.add_checkpoint(run, "sampler_weights", "0001")
    return Labelled(run=run, checkpoint=path)


@on_sqlite
def test_user_metadata_is_a_plain_dict(world: World, labelled: Labelled) -> None:
    with world.client(world.bob_key) as client:
        run = client.get_training_run(labelled.run).result()
        plain = client.get_training_run(world.run_b).result()
        checkpoint = next(
            c
            for c in client.list_checkpoints(labelled.run).result().checkpoints
            if c.tinker_path == labelled.checkpoint
        )
    assert (run.user_metadata or {}).get("experiment") == "baseline"
    assert (plain.user_metadata or {}).get("experiment") is None
    assert dict(checkpoint.user_metadata or {}) == {"step": "100"}
    assert isinstance(run.user_metadata, dict)


@on_sqlite
def test_enum_fields_compare_equal_to_their_wire_strings(world: World, labelled: Labelled) -> None:
    with world.client(world.bob_key) as client:
        response = client.list_checkpoints(labelled.run).result()
    kinds = {c.checkpoint_type for c in response.checkpoints}
    assert kinds == {"training", "sampler"}
    for checkpoint in response.checkpoints:
        if checkpoint.checkpoint_type == "training":
            assert checkpoint.checkpoint_id.startswith("weights/")
        elif checkpoint.checkpoint_type == "sampler":
            assert checkpoint.checkpoint_id.startswith("sampler_weights/")
        assert f"{checkpoint.checkpoint_type}" in ("training", "sampler")
        assert type(checkpoint.checkpoint_type) is str


@on_sqlite
def test_model_dump_and_json_and_validate_round_trip(world: World, labelled: Labelled) -> None:
    with world.client(world.bob_key) as client:
        run = client.get_training_run(labelled.run).result()
        page = client.list_training_runs(limit=50).result()
    dumped = run.model_dump()
    assert dumped["training_run_id"] == labelled.run
    assert dumped["user_metadata"] == {"experiment": "baseline"}
    assert TrainingRun.model_validate(dumped) == run
    text = page.model_dump_json()
    assert json.loads(text)["cursor"]["total_count"] == page.cursor.total_count
    assert TrainingRunsResponse.model_validate_json(text) == page
    # What a program stores and reads back later, as JSON.
    assert json.loads(json.dumps(run.model_dump(mode="json")))["base_model"] == run.base_model


@on_sqlite
def test_datetimes_are_timezone_aware(world: World, labelled: Labelled) -> None:
    with world.client(world.bob_key) as client:
        run = client.get_training_run(labelled.run).result()
        checkpoints = client.list_checkpoints(labelled.run).result().checkpoints
    now = datetime.datetime.now(datetime.UTC)
    assert run.last_request_time.tzinfo is not None
    assert run.last_request_time <= now + datetime.timedelta(minutes=1)
    assert all(c.time.utcoffset() is not None for c in checkpoints)
    newest = max(checkpoints, key=lambda c: c.time)
    assert (now - newest.time).total_seconds() < 3600


@on_sqlite
def test_optimizer_config_type_and_event_details(world: World) -> None:
    with world.client() as client:
        info = client.get_weights_info_by_tinker_path(f"tinker://{world.run_a}/weights/0001")
        log = client.get_audit_log().result()
    weights = info.result()
    assert weights.optimizer_config is not None
    assert isinstance(weights.optimizer_config.type, str)
    entry = next(e for e in log.entries if e.event == "api_key_create")
    assert entry.event_details["user"].endswith("@example.com")
    assert isinstance(entry.event_details, dict)


@on_sqlite
def test_repr_is_the_fields_without_noise(world: World) -> None:
    with world.client() as client:
        run = client.get_training_run(world.run_a).result()
    text = repr(run)
    assert text.startswith(f"TrainingRun(training_run_id='{world.run_a}'")
    assert "additional_properties" not in text
    assert "checkpoint_type='training'" in text  # the last checkpoint, as a plain string
    assert "Unset" not in text


@on_sqlite
def test_unknown_fields_from_the_service_are_accepted(world: World) -> None:
    with world.client() as client:
        run = client.get_training_run(world.run_a).result()
    later = json.loads(run.model_dump_json())
    later["added_later"] = {"nested": 1}
    assert later["last_checkpoint"] is not None
    later["last_checkpoint"]["added_later"] = 2
    assert TrainingRun.model_validate(later) == run


@on_sqlite
def test_the_seed_extra_names_are_filled_in(world: World) -> None:
    with world.client() as client:
        checkpoints = client.list_user_checkpoints(limit=100).result().checkpoints
        archive = client.get_checkpoint_archive_url(world.run_a, "weights/0001").result()
    assert checkpoints
    assert all(c.training_run_id == c.tinker_path.split("/")[2] for c in checkpoints)
    assert archive.expires_at == archive.expires


def test_the_seed_extra_names_are_derived_when_the_service_leaves_them_out() -> None:
    from tinker_rest._models import complete

    checkpoint = Checkpoint.model_validate(
        {
            "checkpoint_id": "weights/0001",
            "checkpoint_type": "training",
            "time": "2026-01-15T10:00:00Z",
            "tinker_path": "tinker://sess-7f3a:train:0/weights/0001",
        }
    )
    run = TrainingRun.model_validate(
        {
            "training_run_id": "sess-7f3a:train:0",
            "base_model": "Qwen/Qwen3-8B",
            "model_owner": "alice@example.com",
            "is_lora": True,
            "last_request_time": "2026-01-15T10:00:00Z",
            "last_checkpoint": checkpoint.model_dump(),
        }
    )
    archive = types.CheckpointArchiveUrlResponse.model_validate(
        {"url": "https://storage.example/a.tar", "expires": "2026-01-15T10:15:00Z"}
    )
    assert run.last_checkpoint is not None and run.last_checkpoint.training_run_id is None
    complete(run)
    complete(archive)
    assert run.last_checkpoint.training_run_id == "sess-7f3a:train:0"
    assert archive.expires_at == archive.expires


@on_sqlite
def test_official_exception_names_catch_what_the_service_raises(world: World) -> None:
    with world.client() as client:
        with pytest.raises(tinker_rest.TinkerError):
            client.get_training_run("sess-none:train:0").result()
        try:
            client.get_training_run("sess-none:train:0").result()
        except tinker_rest.APIStatusError as exc:
            assert exc.status_code == 404
            assert isinstance(exc, tinker_rest.NotFoundError)
            assert isinstance(exc, tinker_rest.APIError)
            assert exc.body == {"detail": exc.body["detail"]}  # type: ignore[index]
            assert exc.message == str(exc)
            assert exc.request.url.path.endswith("/training_runs/sess-none:train:0")
    stranger = tinker_rest.RestClient(world.base_url, "not-a-key")
    with stranger, pytest.raises(tinker_rest.AuthenticationError):
        stranger.list_training_runs().result()


@on_sqlite
def test_async_twins_return_the_same_models(world: World) -> None:
    async def main() -> tuple[TrainingRun, types.CheckpointsListResponse]:
        async with world.client() as client:
            return await asyncio.gather(
                client.get_training_run_async(world.run_a),
                client.list_checkpoints_async(world.run_a),
            )

    run, listed = asyncio.run(main())
    assert isinstance(run, TrainingRun)
    assert {c.checkpoint_type for c in listed.checkpoints} == {"training", "sampler"}


# Each official exception name, and the official class it derives from (tinker 0.38).
OFFICIAL_ERRORS = {
    "APIError": "TinkerError",
    "APIConnectionError": "APIError",
    "APITimeoutError": "APIConnectionError",
    "APIResponseValidationError": "APIError",
    "APIStatusError": "APIError",
    "BadRequestError": "APIStatusError",
    "AuthenticationError": "APIStatusError",
    "BillingError": "APIStatusError",
    "PermissionDeniedError": "APIStatusError",
    "NotFoundError": "APIStatusError",
    "ConflictError": "APIStatusError",
    "UnprocessableEntityError": "APIStatusError",
    "RateLimitError": "APIStatusError",
    "InternalServerError": "APIStatusError",
}


@pytest.mark.parametrize(("name", "parent"), OFFICIAL_ERRORS.items())
def test_exception_tree_has_the_official_names(name: str, parent: str) -> None:
    cls = getattr(tinker_rest, name)
    assert issubclass(cls, getattr(tinker_rest, parent))
    assert name in tinker_rest.__all__
    assert tinker_rest.TinkerRestError is tinker_rest.TinkerError
    assert issubclass(tinker_rest.DownloadError, tinker_rest.TinkerError)


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (400, "BadRequestError"),
        (402, "BillingError"),
        (404, "NotFoundError"),
        (503, "InternalServerError"),
    ],
)
def test_status_table(status: int, name: str) -> None:
    import httpx

    from tinker_rest._errors import status_error

    request = httpx.Request("GET", "http://127.0.0.1/api/v1/training_runs")
    error = status_error(httpx.Response(status, json={"detail": "no"}, request=request))
    assert type(error).__name__ == name
    assert (error.status_code, error.body, error.message) == (status, {"detail": "no"}, str(error))

"""The examples of the RestClient specification, run as written against the reference server.

Each function body below is an example from the specification, unchanged, with the setup it
assumes (`service_client`, `rest_client`, `from datetime import date`) around it. The server is
seeded with the ids the examples name: run `run-id`, session `session-id`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from tinker_rest import InvalidTinkerPathError, RestClient, ServiceClient


@pytest.fixture(scope="module")
def service_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceClient]:
    from tinker_rest.server import TinkerServer

    server = TinkerServer(str(tmp_path_factory.mktemp("seed") / "tinker.db"))
    org = server.add_organization("acme")
    admin = server.add_user("admin@example.com", organization_id=org, role="admin")
    session = server.add_session(admin, session_id="session-id")
    run = server.add_training_run(session, training_run_id="run-id")
    for name in ("0001", "checkpoint-001"):
        server.add_checkpoint(run, "weights", name, files={"adapter.bin": b"\0" * 1024})
    server.add_checkpoint(run, "sampler_weights", "final", files={"adapter.bin": b"\0" * 512})
    server.add_sampler(session, model_path="tinker://run-id/sampler_weights/final")
    with server.run_in_background() as running:
        yield ServiceClient(base_url=running.base_url, api_key=server.add_api_key(admin))
    server.close()


@pytest.fixture
def rest_client(service_client: ServiceClient) -> Iterator[RestClient]:
    with service_client.create_rest_client() as client:
        yield client


def test_class_example(service_client: ServiceClient, capsys: pytest.CaptureFixture[str]) -> None:
    rest_client = service_client.create_rest_client()
    training_run = rest_client.get_training_run("run-id").result()
    print(f"Training Run: {training_run.training_run_id}, LoRA: {training_run.is_lora}")
    checkpoints = rest_client.list_checkpoints("run-id").result()
    print(f"Found {len(checkpoints.checkpoints)} checkpoints")
    for checkpoint in checkpoints.checkpoints:
        print(f" {checkpoint.checkpoint_type}: {checkpoint.checkpoint_id}")

    out = capsys.readouterr().out
    assert "Training Run: run-id, LoRA: True" in out
    assert "Found 3 checkpoints" in out
    assert " training: weights/0001" in out and " sampler: sampler_weights/final" in out
    rest_client.close()


def test_get_training_run_example(
    rest_client: RestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    future = rest_client.get_training_run("run-id")
    response = future.result()
    print(f"Training Run ID: {response.training_run_id}, Base: {response.base_model}")

    assert "Training Run ID: run-id, Base: Qwen/Qwen3-8B" in capsys.readouterr().out


def test_get_training_run_by_tinker_path_example(
    rest_client: RestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    future = rest_client.get_training_run_by_tinker_path("tinker://run-id/weights/checkpoint-001")
    response = future.result()
    print(f"Training Run ID: {response.training_run_id}, Base: {response.base_model}")

    assert "Training Run ID: run-id" in capsys.readouterr().out


def test_list_training_runs_example(
    rest_client: RestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    future = rest_client.list_training_runs(limit=50)
    response = future.result()
    print(f"Found {len(response.training_runs)} training runs")
    print(f"Total: {response.cursor.total_count}")
    # Get next page
    next_page = rest_client.list_training_runs(limit=50, offset=50)

    assert "Found 1 training runs\nTotal: 1" in capsys.readouterr().out
    assert next_page.result().training_runs == []


def test_list_checkpoints_example(
    rest_client: RestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    future = rest_client.list_checkpoints("run-id")
    response = future.result()
    for checkpoint in response.checkpoints:
        if checkpoint.checkpoint_type == "training":
            print(f"Training checkpoint: {checkpoint.checkpoint_id}")
        elif checkpoint.checkpoint_type == "sampler":
            print(f"Sampler checkpoint: {checkpoint.checkpoint_id}")

    out = capsys.readouterr().out
    assert "Training checkpoint: weights/0001" in out
    assert "Sampler checkpoint: sampler_weights/final" in out


def test_get_checkpoint_archive_url_example(
    rest_client: RestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    # The specification's example passes "checkpoint-123", which no checkpoint can be called:
    # a checkpoint id is "<kind>/<name>". tinker-rest says so before sending anything ...
    with pytest.raises(InvalidTinkerPathError, match=r"'checkpoint-123'.*'<kind>/<name>'"):
        rest_client.get_checkpoint_archive_url("run-id", "checkpoint-123")
    # ... and the example runs as written with a real checkpoint id.
    future = rest_client.get_checkpoint_archive_url("run-id", "weights/0001")
    response = future.result()
    print(f"Download URL: {response.url}")
    print(f"Expires at: {response.expires_at}")

    out = capsys.readouterr().out
    assert "Download URL: http://127.0.0.1:" in out and f"Expires at: {response.expires}" in out


def test_get_audit_log_example(rest_client: RestClient, capsys: pytest.CaptureFixture[str]) -> None:
    rest_client.publish_checkpoint_from_tinker_path(
        "tinker://run-id/weights/checkpoint-001"
    ).result()

    future = rest_client.get_audit_log()
    response = future.result()
    print(f"Found {len(response.entries)} audit entries")
    for entry in response.entries:
        print(f" {entry.timestamp}: {entry.event} ({entry.tinker_path})")
    # Query a specific day
    future = rest_client.get_audit_log(day=date(2025, 1, 15))

    out = capsys.readouterr().out
    assert "checkpoint_publish (tinker://run-id/weights/checkpoint-001)" in out
    assert future.result().entries == []


def test_publish_unpublish_and_ttl_examples(
    rest_client: RestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    future = rest_client.publish_checkpoint_from_tinker_path("tinker://run-id/weights/0001")
    future.result()  # Wait for completion
    print("Checkpoint published successfully")

    future = rest_client.unpublish_checkpoint_from_tinker_path("tinker://run-id/weights/0001")
    future.result()  # Wait for completion
    print("Checkpoint unpublished successfully")

    future = rest_client.set_checkpoint_ttl_from_tinker_path("tinker://run-id/weights/0001", 86400)
    future.result()  # Wait for completion
    print("Checkpoint TTL set successfully")

    assert capsys.readouterr().out.count("successfully") == 3


def test_list_user_checkpoints_example(
    rest_client: RestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    next_page: Any = None
    future = rest_client.list_user_checkpoints(limit=50)
    response = future.result()
    print(f"Found {len(response.checkpoints)} checkpoints")
    print(f"Total: {response.cursor.total_count if response.cursor else 'Unknown'}")
    for checkpoint in response.checkpoints:
        print(f" {checkpoint.training_run_id}/{checkpoint.checkpoint_id}")
    # Get next page if there are more checkpoints
    if (
        response.cursor
        and response.cursor.offset + response.cursor.limit < response.cursor.total_count
    ):
        next_page = rest_client.list_user_checkpoints(limit=50, offset=50)

    out = capsys.readouterr().out
    assert "Found 3 checkpoints\nTotal: 3" in out
    assert " run-id/weights/0001" in out
    assert next_page is None


def test_get_session_example(rest_client: RestClient, capsys: pytest.CaptureFixture[str]) -> None:
    future = rest_client.get_session("session-id")
    response = future.result()
    print(f"Training runs: {len(response.training_run_ids)}")
    print(f"Samplers: {len(response.sampler_ids)}")

    assert "Training runs: 1\nSamplers: 1" in capsys.readouterr().out


def test_list_sessions_example(rest_client: RestClient, capsys: pytest.CaptureFixture[str]) -> None:
    future = rest_client.list_sessions(limit=50)
    response = future.result()
    print(f"Found {len(response.sessions)} sessions")
    # Get next page
    next_page = rest_client.list_sessions(limit=50, offset=50)

    assert "Found 1 sessions" in capsys.readouterr().out
    assert next_page.result().sessions == []


def test_get_sampler_example(rest_client: RestClient, capsys: pytest.CaptureFixture[str]) -> None:
    # Sync usage
    future = rest_client.get_sampler("session-id:sample:0")
    response = future.result()
    print(f"Base model: {response.base_model}")
    print(f"Model path: {response.model_path}")

    async def async_usage() -> None:
        # Async usage
        response = await rest_client.get_sampler("session-id:sample:0")
        print(f"Base model: {response.base_model}")

    asyncio.run(async_usage())

    out = capsys.readouterr().out
    assert "Model path: tinker://run-id/sampler_weights/final" in out
    assert out.count("Base model: Qwen/Qwen3-8B") == 2

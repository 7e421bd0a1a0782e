"""Shared fixtures: a real reference server on 127.0.0.1 over a temporary SQLite file."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tinker_rest import RestClient


@dataclasses.dataclass
class World:
    """A running reference server and what the tests seeded into it."""

    server: Any  # tinker_rest.server.TinkerServer
    base_url: str
    alice_key: str  # an admin, owner of run_a
    bob_key: str  # a member of alice's project, owner of run_b (in the project) and run_c
    bob_id: str
    project_id: str
    session_a: str
    run_a: str
    sampler_a: str
    session_b: str
    run_b: str
    session_c: str
    run_c: str
    files: dict[str, bytes]

    def client(self, key: str | None = None, **options: Any) -> RestClient:
        return RestClient(self.base_url, key or self.alice_key, **options)


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server of our own (pgserver's bundled binaries), on a Unix socket."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR is unset in CI
        import pgserver

        postgres = pgserver.get_server(tmp_path_factory.mktemp("postgres"), cleanup_mode="stop")
    try:
        yield postgres.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        postgres.cleanup()


def fresh_database(server_url: str) -> str:
    """The URL of a new, empty database on the PostgreSQL server: one per world, as every
    test module seeds the same users (unique emails) into its own world."""
    import secrets

    import sqlalchemy

    name = f"world_{secrets.token_hex(6)}"
    engine = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    url = sqlalchemy.make_url(server_url).set(database=name)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The same world on each database the server supports: SQLite and PostgreSQL."""
    from tinker_rest.server import TinkerServer

    folder = tmp_path_factory.mktemp("server")
    if request.param == "sqlite":
        server = TinkerServer(str(folder / "tinker.db"))
    else:
        database = fresh_database(request.getfixturevalue("postgres_url"))
        server = TinkerServer(database, data_dir=folder)
    org = server.add_organization("acme")
    alice = server.add_user("alice@example.com", organization_id=org, role="admin")
    bob = server.add_user("bob@example.com", organization_id=org, role="member")
    project = server.add_project("research", organization_id=org, members=[alice, bob])
    files = {"adapter_model.safetensors": bytes(range(256)) * 64, "adapter_config.json": b"{}"}

    session_a = server.add_session(alice, display_name="baseline sweep")
    run_a = server.add_training_run(session_a, base_model="Qwen/Qwen3-8B", lora_rank=32)
    for name in ("0001", "0002"):
        server.add_checkpoint(run_a, "weights", name, files=files)
    server.add_checkpoint(run_a, "sampler_weights", "final", files=files)
    sampler_a = server.add_sampler(
        session_a, base_model="Qwen/Qwen3-8B", model_path=f"tinker://{run_a}/sampler_weights/final"
    )
    session_b = server.add_session(bob, project_id=project)
    run_b = server.add_training_run(session_b, base_model="Qwen/Qwen3-8B", lora_rank=16)
    server.add_checkpoint(run_b, "weights", "0001", files=files)
    session_c = server.add_session(bob)
    run_c = server.add_training_run(session_c, base_model="meta-llama/Llama-3.1-8B", lora_rank=None)
    server.add_checkpoint(run_c, "weights", "0001", files=files, public=True)
    server.add_checkpoint(run_c, "weights", "0002", files=files)

    with server.run_in_background(host="127.0.0.1", port=0) as running:
        yield World(
            server=server,
            base_url=running.base_url,
            alice_key=server.add_api_key(alice),
            bob_key=server.add_api_key(bob),
            bob_id=bob,
            project_id=project,
            session_a=session_a,
            run_a=run_a,
            sampler_a=sampler_a,
            session_b=session_b,
            run_b=run_b,
            session_c=session_c,
            run_c=run_c,
            files=files,
        )
    server.close()


@pytest.fixture
def alice(world: World) -> Iterator[RestClient]:
    """A client with alice's key (an admin)."""
    with world.client() as client:
        yield client


@pytest.fixture
def bob(world: World) -> Iterator[RestClient]:
    """A client with bob's key (a member)."""
    with world.client(world.bob_key) as client:
        yield client


@pytest.fixture(params=["future", "async"])
def call(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Call a RestClient method through its future or through its async twin."""

    def via_future(client: RestClient, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(client, method)(*args, **kwargs).result(timeout=60)

    def via_async(client: RestClient, method: str, *args: Any, **kwargs: Any) -> Any:
        return asyncio.run(getattr(client, f"{method}_async")(*args, **kwargs))

    return via_future if request.param == "future" else via_async

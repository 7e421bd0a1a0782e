"""Fixtures for the reference server's tests: a real server on 127.0.0.1 over a temp SQLite file.

``env`` seeds users, a project, sessions, runs and checkpoints (see ``server_env.seed``), starts
the server in a background thread with :meth:`TinkerServer.run_in_background`, and stops it by
its handle afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tinker_rest.server import RunningServer, TinkerServer

FILES = {
    "adapter_model.safetensors": bytes(range(256)) * 512,
    "adapter_config.json": b'{"r": 32}',
}


@dataclasses.dataclass
class Env:
    """A running server and what the fixture seeded into it."""

    server: TinkerServer
    running: RunningServer
    db_path: Path
    org: str
    alice: str  # admin; owns session_a / run_a
    bob: str  # member of alice's project; owns session_b (in the project)
    mallory: str  # same organization, in no project
    alice_key: str
    bob_key: str
    mallory_key: str
    project: str
    session_a: str
    run_a: str
    sampler_a: str
    session_b: str
    run_b: str
    path_a1: str  # tinker://run_a/weights/0001
    path_a_final: str  # tinker://run_a/sampler_weights/final
    files: dict[str, bytes] = dataclasses.field(default_factory=lambda: dict(FILES))

    @property
    def base_url(self) -> str:
        return self.running.base_url

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"X-API-Key": key} if key is not None else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)


def seed(server: TinkerServer, db_path: Path, running: RunningServer | None = None) -> Env:
    org = server.add_organization("acme")
    alice = server.add_user("alice@example.com", organization_id=org, role="admin")
    bob = server.add_user("bob@example.com", organization_id=org, role="member")
    mallory = server.add_user("mallory@example.com", organization_id=org, role="member")
    project = server.add_project("research", organization_id=org, members=[alice, bob])
    session_a = server.add_session(alice, display_name="baseline", user_metadata={"k": "v"})
    run_a = server.add_training_run(session_a, base_model="Qwen/Qwen3-8B", lora_rank=32)
    path_a1 = server.add_checkpoint(run_a, "weights", "0001", files=FILES)
    server.add_checkpoint(run_a, "weights", "0002", files=FILES)
    path_a_final = server.add_checkpoint(run_a, "sampler_weights", "final", files=FILES)
    sampler_a = server.add_sampler(session_a, base_model="Qwen/Qwen3-8B", model_path=path_a_final)
    session_b = server.add_session(bob, project_id=project)
    run_b = server.add_training_run(session_b, base_model="Qwen/Qwen3-8B", lora_rank=None)
    server.add_checkpoint(run_b, "weights", "0001", files=FILES)
    return Env(
        server=server,
        running=running,  # type: ignore[arg-type]
        db_path=db_path,
        org=org,
        alice=alice,
        bob=bob,
        mallory=mallory,
        alice_key=server.add_api_key(alice),
        bob_key=server.add_api_key(bob),
        mallory_key=server.add_api_key(mallory),
        project=project,
        session_a=session_a,
        run_a=run_a,
        sampler_a=sampler_a,
        session_b=session_b,
        run_b=run_b,
        path_a1=path_a1,
        path_a_final=path_a_final,
    )


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    db_path = tmp_path / "tinker.db"
    server = TinkerServer(db_path)
    try:
        data = seed(server, db_path)
        with server.run_in_background() as running:
            data.running = running
            yield data
    finally:
        server.close()


@pytest.fixture
def another_writer(env: Env) -> Callable[[], contextlib.AbstractContextManager[None]]:
    """A block during which another connection holds SQLite's write lock on ``env``'s file."""

    @contextlib.contextmanager
    def holding() -> Iterator[None]:
        blocker = sqlite3.connect(env.db_path, timeout=0, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            yield
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()

    return holding

"""Lifecycle of the reference server: restarts, kills, expiry sweeps, idempotency, archives."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from click.testing import CliRunner

from tinker_rest.server import TinkerServer
from tinker_rest.server.cli import admin
from tinker_rest.server.errors import NotFound

if TYPE_CHECKING:
    from conftest import Env


def test_restart_keeps_all_data(env: Env) -> None:
    ckpt = f"/api/v1/training_runs/{env.run_a}/checkpoints/weights/0001"
    with env.client(env.alice_key) as c:
        assert c.post(ckpt + "/publish").status_code == 204
        assert c.put(ckpt + "/ttl", json={"ttl_seconds": 7200}).status_code == 204
        assert (
            c.put(
                f"/api/v1/sessions/{env.session_a}/project", json={"project_id": env.project}
            ).status_code
            == 204
        )
        before = {
            path: c.get(path).json()
            for path in (
                f"/api/v1/training_runs/{env.run_a}",
                f"/api/v1/training_runs/{env.run_a}/checkpoints",
                f"/api/v1/sessions/{env.session_a}",
                "/api/v1/checkpoints",
            )
        }
        archive = c.get(ckpt + "/archive").json()["url"]
    env.running.stop()
    env.server.close()

    reopened = TinkerServer(env.db_path)
    try:
        with (
            reopened.run_in_background() as running,
            httpx.Client(base_url=running.base_url, headers={"X-API-Key": env.alice_key}) as c,
        ):
            for path, body in before.items():
                assert c.get(path).json() == body
            assert c.get("/api/v1/audit").json()["entries"]
            # The signing secret survives too: the old URL works on the new port's path.
            old = httpx.URL(archive)
            moved = old.copy_with(port=running.port)
            assert httpx.get(moved).status_code == 200
    finally:
        reopened.close()


KILL_SCRIPT = """
import sys, time
from tinker_rest.server import TinkerServer
server = TinkerServer(sys.argv[1])
with server.run_in_background() as running:
    print(running.base_url, flush=True)
    time.sleep(600)
"""


def test_acknowledged_writes_survive_a_kill(env: Env) -> None:
    env.running.stop()
    env.server.close()
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(env.db_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        with httpx.Client(base_url=base_url, headers={"X-API-Key": env.alice_key}) as c:
            ckpt = f"/api/v1/training_runs/{env.run_a}/checkpoints/weights/0001"
            assert c.post(ckpt + "/publish").status_code == 204
            assert (
                c.delete(f"/api/v1/training_runs/{env.run_a}/checkpoints/weights/0002").status_code
                == 204
            )
    finally:
        proc.kill()  # by its handle: SIGKILL, no clean shutdown
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    reopened = TinkerServer(env.db_path)
    try:
        caller = reopened.store.authenticate(env.alice_key)
        assert caller is not None
        ckpts = reopened.store.list_checkpoints(caller, env.run_a)
        assert [(c["checkpoint_id"], c["public"]) for c in ckpts] == [
            ("weights/0001", True),
            ("sampler_weights/final", False),
        ]
    finally:
        reopened.close()


def test_expired_checkpoint_disappears_with_its_files(env: Env) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    path = env.server.add_checkpoint(
        env.run_a, "weights", "old", files={"w.bin": b"x" * 100}, expires_at=past
    )
    blob_dirs = set((env.server.data_dir / "blobs").iterdir())
    with env.client(env.alice_key) as c:
        listed = c.get(f"/api/v1/training_runs/{env.run_a}/checkpoints").json()["checkpoints"]
        assert path not in {x["tinker_path"] for x in listed}
        assert path not in {
            x["tinker_path"] for x in c.get("/api/v1/checkpoints").json()["checkpoints"]
        }
        base = f"/api/v1/training_runs/{env.run_a}/checkpoints/weights/old"
        assert c.get(base + "/archive").status_code == 404
        assert c.post(base + "/publish").status_code == 404
        assert c.post("/api/v1/weights_info", json={"tinker_path": path}).status_code == 404
    assert env.server.sweep() == 1
    remaining = set((env.server.data_dir / "blobs").iterdir())
    assert len(blob_dirs - remaining) == 1
    with env.client(env.alice_key) as c:
        events = [e["event"] for e in c.get("/api/v1/audit").json()["entries"]]
        assert "checkpoint_expire" in events


def test_sweep_runs_at_start(tmp_path: Path) -> None:
    db = tmp_path / "tinker.db"
    with TinkerServer(db) as server:
        org = server.add_organization("o")
        user = server.add_user("u@example.com", organization_id=org)
        run = server.add_training_run(server.add_session(user), base_model="m", lora_rank=8)
        server.add_checkpoint(
            run,
            "weights",
            "soon",
            files={"w.bin": 10},
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(milliseconds=1),
        )
        blobs = server.data_dir / "blobs"
        assert len(list(blobs.iterdir())) == 1
    # Checkpoints expire while no server runs; the next start deletes them.
    threading.Event().wait(0.01)
    with TinkerServer(db) as server:
        assert list((server.data_dir / "blobs").iterdir()) == []


def test_idempotent_replay(env: Env) -> None:
    publish = f"/api/v1/training_runs/{env.run_a}/checkpoints/weights/0001/publish"
    with env.client(env.alice_key) as c:
        first = c.post(publish, headers={"X-Idempotency-Key": "retry-1"})
        assert first.status_code == 204
        again = c.post(publish, headers={"X-Idempotency-Key": "retry-1"})
        assert again.status_code == 204
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["x-request-id"] != first.headers["x-request-id"]
        assert c.post(publish, headers={"X-Idempotency-Key": "retry-2"}).status_code == 409
        assert c.post(publish).status_code == 409
        too_long = c.post(publish, headers={"X-Idempotency-Key": "k" * 256})
        assert too_long.status_code == 400
        assert too_long.json()["detail"].startswith("X-Idempotency-Key")
        events = [e["event"] for e in c.get("/api/v1/audit").json()["entries"]]
        assert events.count("checkpoint_publish") == 1
    # Another user's identical key is a different request.
    with env.client(env.bob_key) as c:
        assert c.post(publish, headers={"X-Idempotency-Key": "retry-1"}).status_code == 404


def test_concurrent_archive_requests_share_one_build(tmp_path: Path) -> None:
    with TinkerServer(tmp_path / "tinker.db", archive_wait=0.05) as server:
        org = server.add_organization("o")
        user = server.add_user("u@example.com", organization_id=org)
        key = server.add_api_key(user)
        run = server.add_training_run(server.add_session(user), base_model="m", lora_rank=8)
        server.add_checkpoint(run, "weights", "big", files={"w.bin": 8 << 20, "c.json": b"{}"})
        # Hold the build until every request has arrived, so they all overlap it.
        release = threading.Event()
        build = server.builder._build

        def held_build(files):  # type: ignore[no-untyped-def]
            release.wait(30)
            return build(files)

        server.builder._build = held_build  # type: ignore[method-assign]
        url = f"/api/v1/training_runs/{run}/checkpoints/weights/big/archive"
        with server.run_in_background() as running:
            answers: list[httpx.Response] = []

            def ask() -> None:
                with httpx.Client(base_url=running.base_url, headers={"X-API-Key": key}) as c:
                    answers.append(c.get(url))

            threads = [threading.Thread(target=ask) for _ in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert [a.status_code for a in answers] == [503] * 6
            assert all(a.headers["retry-after"] == "1" for a in answers)
            assert all(a.json() == {"detail": "The archive is being built"} for a in answers)
            release.set()
            with httpx.Client(base_url=running.base_url, headers={"X-API-Key": key}) as c:
                for _ in range(600):
                    done = c.get(url)
                    if done.status_code == 200:
                        break
                    threading.Event().wait(0.05)
                assert done.status_code == 200
                second = c.get(url)
            assert urlpath(done) == urlpath(second)
            head = httpx.head(done.json()["url"])
            assert int(head.headers["content-length"]) > 8 << 20
        assert server.archive_builds == 1


def urlpath(answer: httpx.Response) -> str:
    return httpx.URL(answer.json()["url"]).path


def test_admin_cli_creates_and_revokes(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    runner = CliRunner()
    org = runner.invoke(admin, ["create-org", "acme", "--db", db])
    assert org.exit_code == 0, org.output
    org_id = org.output.strip()
    user = runner.invoke(
        admin, ["create-user", "a@example.com", "--org", org_id, "--role", "admin", "--db", db]
    )
    user_id = user.output.strip()
    key = runner.invoke(admin, ["create-key", user_id, "--db", db]).output.strip()
    assert key.startswith("tml-")
    project = runner.invoke(
        admin, ["create-project", "p", "--org", org_id, "--member", user_id, "--db", db]
    )
    assert project.exit_code == 0 and project.output.strip().startswith("proj-")
    with TinkerServer(db) as server:
        assert server.store.authenticate(key) is not None
    assert runner.invoke(admin, ["revoke-key", key, "--db", db]).exit_code == 0
    with TinkerServer(db) as server:
        assert server.store.authenticate(key) is None
    bad = runner.invoke(admin, ["create-user", "b@example.com", "--org", "nope", "--db", db])
    assert bad.exit_code != 0


def test_admin_calls_name_a_missing_parent(env: Env) -> None:
    """A row is added only once every row its foreign keys name is found: else a 404 naming the
    missing one, and nothing of the call is kept."""
    server = env.server

    def refused(thing: str, call: Callable[[], object]) -> None:
        with pytest.raises(NotFound) as raised:
            call()
        assert raised.value.detail == f"{thing} not found"

    refused(
        "Organization 'org-nope'",
        lambda: server.add_user("x@example.com", organization_id="org-nope"),
    )
    refused("User 'user-nope'", lambda: server.add_api_key("user-nope"))
    refused(
        "User 'user-nope'",
        lambda: server.add_project(
            "p", organization_id=env.org, members=[env.bob, "user-nope"], project_id="proj-half"
        ),
    )
    refused("Project 'proj-nope'", lambda: server.add_session(env.alice, project_id="proj-nope"))
    # A run or sampler given its id is checked too, not left to the database's foreign key.
    refused(
        "Session 'sess-nope'",
        lambda: server.add_training_run("sess-nope", training_run_id="sess-nope:train:7"),
    )
    refused(
        "Session 'sess-nope'",
        lambda: server.add_sampler("sess-nope", sampler_id="sess-nope:sample:7"),
    )
    refused("User 'user-nope'", lambda: server.store.add_project_member(env.project, "user-nope"))
    assert len(server.list_users()) == 3
    # The refused project left nothing behind: its id is still free.
    assert server.add_project("p", organization_id=env.org, project_id="proj-half") == "proj-half"


def test_demo_seed(tmp_path: Path) -> None:
    with TinkerServer(tmp_path / "demo.db") as server:
        demo = server.seed_demo()
        assert demo.admin_key.startswith("tml-") and demo.member_key.startswith("tml-")
        with (
            server.run_in_background() as running,
            httpx.Client(base_url=running.base_url, headers={"X-API-Key": demo.member_key}) as c,
        ):
            info = c.post("/api/v1/weights_info", json={"tinker_path": demo.published_tinker_path})
            assert info.status_code == 200
            runs = c.get("/api/v1/training_runs", params={"access_scope": "accessible"}).json()
            assert runs["cursor"]["total_count"] >= 2
            sizes = [x["size_bytes"] for x in c.get("/api/v1/checkpoints").json()["checkpoints"]]
            assert sizes and min(sizes) > 1 << 20

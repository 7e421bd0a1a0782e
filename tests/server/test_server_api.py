"""Every operation of the reference server end to end, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import io
import tarfile
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from conftest import Env


def test_health_spec_and_docs_need_no_key(env: Env) -> None:
    with env.client() as c:
        assert c.get("/api/v1/healthz").json() == {"status": "ok"}
        spec = c.get("/openapi.json").json()
        assert spec["info"]["title"] == "Tinker REST API"
        assert "/api/v1/weights_info" in spec["paths"]
        assert c.get("/openapi.yaml").text.startswith("openapi: 3.1.0")
        docs = c.get("/docs")
        assert docs.status_code == 200
        assert "get_checkpoint_archive_url" in docs.text or "/archive" in docs.text


def test_client_endpoints(env: Env) -> None:
    with env.client(env.alice_key) as c:
        assert c.post("/api/v1/client/config", json={"sdk_version": "0.38.0"}).json() == {}
        assert c.post("/api/v1/client/dynamic_config").json() == {}
        # An optional body may be absent, but a body of whitespace alone is not JSON.
        blank = c.post(
            "/api/v1/client/dynamic_config",
            content=b" \t",
            headers={"Content-Type": "application/json"},
        )
        assert blank.status_code == 400 and "JSON" in blank.json()["detail"]
        telemetry = c.post("/api/v1/telemetry", json={"events": [{"name": "x"}]})
        assert telemetry.json() == {"status": "accepted"}


def test_training_runs_list_get_and_scopes(env: Env) -> None:
    with env.client(env.alice_key) as c:
        owned = c.get("/api/v1/training_runs", params={"access_scope": "owned"}).json()
        assert [r["training_run_id"] for r in owned["training_runs"]] == [env.run_a]
        assert owned["cursor"] == {"offset": 0, "limit": 20, "total_count": 1}
        everything = c.get("/api/v1/training_runs", params={"access_scope": "accessible"}).json()
        assert {r["training_run_id"] for r in everything["training_runs"]} == {
            env.run_a,
            env.run_b,
        }
        page = c.get(
            "/api/v1/training_runs", params={"access_scope": "accessible", "limit": 1, "offset": 1}
        ).json()
        assert len(page["training_runs"]) == 1
        assert page["cursor"] == {"offset": 1, "limit": 1, "total_count": 2}

        run = c.get(f"/api/v1/training_runs/{env.run_a}").json()
        assert run["model_owner"] == "alice@example.com"
        assert run["is_lora"] is True and run["lora_rank"] == 32
        assert run["last_checkpoint"]["checkpoint_id"] == "weights/0002"
        assert run["last_sampler_checkpoint"]["tinker_path"] == env.path_a_final
        # bob's run is in the shared project: accessible, but not owned.
        assert c.get(f"/api/v1/training_runs/{env.run_b}").status_code == 404
        shared = c.get(f"/api/v1/training_runs/{env.run_b}", params={"access_scope": "accessible"})
        assert shared.json()["is_lora"] is False


def test_checkpoint_lists(env: Env) -> None:
    with env.client(env.alice_key) as c:
        listed = c.get(f"/api/v1/training_runs/{env.run_a}/checkpoints").json()
        assert listed["cursor"] is None
        assert [x["checkpoint_id"] for x in listed["checkpoints"]] == [
            "weights/0001",
            "weights/0002",
            "sampler_weights/final",
        ]
        first = listed["checkpoints"][0]
        assert first["size_bytes"] == sum(len(v) for v in env.files.values())
        assert first["public"] is False and first["expires_at"] is None
        assert first["tinker_path"] == env.path_a1

        mine = c.get("/api/v1/checkpoints", params={"limit": 2}).json()
        assert mine["cursor"] == {"offset": 0, "limit": 2, "total_count": 3}
        times = [x["time"] for x in mine["checkpoints"]]
        assert times == sorted(times, reverse=True)


def test_publish_unpublish_ttl_delete_and_audit(env: Env) -> None:
    base = f"/api/v1/training_runs/{env.run_a}/checkpoints/weights/0001"
    with env.client(env.alice_key) as c:
        assert c.post(base + "/publish").status_code == 204
        conflict = c.post(base + "/publish")
        assert conflict.status_code == 409
        assert conflict.json() == {"detail": "Checkpoint is already public"}
        assert c.delete(base + "/publish").status_code == 204
        assert c.delete(base + "/publish").status_code == 409

        assert c.put(base + "/ttl", json={"ttl_seconds": 86400}).status_code == 204
        ckpt = c.get(f"/api/v1/training_runs/{env.run_a}/checkpoints").json()["checkpoints"][0]
        expires = dt.datetime.fromisoformat(ckpt["expires_at"])
        assert dt.timedelta(hours=23) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(days=1)
        assert c.put(base + "/ttl", json={"ttl_seconds": None}).status_code == 204
        for bad in (3599, 315360001, "3600", True):
            answer = c.put(base + "/ttl", json={"ttl_seconds": bad})
            assert answer.status_code == 400
            assert answer.json()["detail"].startswith("ttl_seconds")
        assert c.put(base + "/ttl", json={}).status_code == 400

        assert c.delete(base).status_code == 204
        assert c.delete(base).status_code == 404
        assert c.post(base + "/publish").status_code == 404

        audit = c.get("/api/v1/audit", params={"event_type": "checkpoints"}).json()["entries"]
        events = [e["event"] for e in audit]
        assert events == [
            "checkpoint_publish",
            "checkpoint_unpublish",
            "checkpoint_set_ttl",
            "checkpoint_set_ttl",
            "checkpoint_delete",
        ]
        assert audit[0]["tinker_path"] == env.path_a1
        assert audit[0]["model_id"] == env.run_a
        assert audit[0]["event_details"]["user"] == "alice@example.com"
        everything = c.get("/api/v1/audit", params={"event_type": "all"}).json()["entries"]
        assert "api_key_create" in {e["event"] for e in everything}
        assert c.get("/api/v1/audit", params={"day": "2001-01-01"}).json() == {"entries": []}
        assert c.get("/api/v1/audit", params={"day": "yesterday"}).status_code == 400


def test_audit_needs_admin(env: Env) -> None:
    with env.client(env.bob_key) as c:
        answer = c.get("/api/v1/audit")
        assert answer.status_code == 403
        assert "admin" in answer.json()["detail"]


def test_weights_info(env: Env) -> None:
    with env.client(env.alice_key) as c:
        info = c.post("/api/v1/weights_info", json={"tinker_path": env.path_a1}).json()
        assert info["base_model"] == "Qwen/Qwen3-8B"
        assert info["is_lora"] is True and info["lora_rank"] == 32
        assert info["optimizer_config"] == {"type": "adam"}
        bad = c.post("/api/v1/weights_info", json={"tinker_path": "tinker://nope"})
        assert bad.status_code == 400 and "tinker_path" in bad.json()["detail"]
    # mallory sees alice's private checkpoint only once it is published.
    with env.client(env.mallory_key) as c:
        body = {"tinker_path": env.path_a1}
        assert c.post("/api/v1/weights_info", json=body).status_code == 404
    with env.client(env.alice_key) as c:
        publish = f"/api/v1/training_runs/{env.run_a}/checkpoints/weights/0001/publish"
        assert c.post(publish).status_code == 204
    with env.client(env.mallory_key) as c:
        assert c.post("/api/v1/weights_info", json=body).status_code == 200


def test_sessions_and_samplers(env: Env) -> None:
    with env.client(env.alice_key) as c:
        assert c.get("/api/v1/sessions").json() == {"sessions": [env.session_a]}
        both = c.get("/api/v1/sessions", params={"access_scope": "accessible"}).json()
        assert both["sessions"] == [env.session_b, env.session_a]  # newest first
        session = c.get(f"/api/v1/sessions/{env.session_a}").json()
        assert session == {
            "training_run_ids": [env.run_a],
            "sampler_ids": [env.sampler_a],
            "user_metadata": {"k": "v"},
            "display_name": "baseline",
        }
        sampler = c.get(f"/api/v1/samplers/{env.sampler_a}").json()
        assert sampler == {
            "sampler_id": env.sampler_a,
            "base_model": "Qwen/Qwen3-8B",
            "model_path": env.path_a_final,
        }


def test_assign_session_project(env: Env) -> None:
    with env.client(env.alice_key) as c:
        url = f"/api/v1/sessions/{env.session_a}/project"
        assert c.put(url, json={"project_id": env.project}).status_code == 204
        # Never out of a project: there is no way to send "no project".
        assert c.put(url, json={"project_id": None}).status_code == 400
        assert c.put(url, json={"project_id": ""}).status_code == 400
        assert c.put(url, json={"project_id": "proj-missing"}).status_code == 404
    with env.client(env.bob_key) as c:
        # bob now sees alice's session through the project, but may not move it.
        assert (
            c.get(
                f"/api/v1/sessions/{env.session_a}", params={"access_scope": "accessible"}
            ).status_code
            == 200
        )
        assert c.put(url, json={"project_id": env.project}).status_code == 404
    project_without_mallory = env.server.add_project("other", organization_id=env.org)
    mallory_session = env.server.add_session(env.mallory)
    with env.client(env.mallory_key) as c:
        answer = c.put(
            f"/api/v1/sessions/{mallory_session}/project",
            json={"project_id": project_without_mallory},
        )
        assert answer.status_code == 403
    with env.client(env.alice_key) as c:
        audit = c.get("/api/v1/audit").json()["entries"]
        assert "session_assign_project" in [e["event"] for e in audit]


def test_archive_download_whole_head_and_range(env: Env) -> None:
    with env.client(env.alice_key) as c:
        answer = c.get(f"/api/v1/training_runs/{env.run_a}/checkpoints/weights/0001/archive")
        assert answer.status_code == 200
        body = answer.json()
        assert body["expires"] == body["expires_at"]
        expires = dt.datetime.fromisoformat(body["expires"])
        assert (
            dt.timedelta(minutes=14) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=15)
        )
    url = body["url"]
    whole = httpx.get(url)
    assert whole.status_code == 200
    assert whole.headers["accept-ranges"] == "bytes"
    with tarfile.open(fileobj=io.BytesIO(whole.content)) as tar:
        extracted = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert extracted == env.files

    head = httpx.head(url)
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == len(whole.content)

    part = httpx.get(url, headers={"Range": "bytes=100-1123"})
    assert part.status_code == 206
    assert part.content == whole.content[100:1124]
    assert part.headers["content-range"] == f"bytes 100-1123/{len(whole.content)}"
    tail = httpx.get(url, headers={"Range": "bytes=-10"})
    assert tail.content == whole.content[-10:]
    resume = httpx.get(url, headers={"Range": f"bytes={len(whole.content) - 5}-"})
    assert resume.content == whole.content[-5:]
    beyond = httpx.get(url, headers={"Range": f"bytes={len(whole.content)}-"})
    assert beyond.status_code == 416
    assert beyond.json() == {"detail": "Range not satisfiable"}


def test_errors_are_json_with_request_ids(env: Env) -> None:
    with env.client(env.alice_key) as c:
        unknown = c.get("/no/such/route")
        assert unknown.status_code == 404 and unknown.json() == {"detail": "Not found"}
        assert unknown.headers["x-request-id"]
        bad = c.get("/api/v1/training_runs", params={"limit": 0})
        assert bad.status_code == 400
        assert bad.json()["detail"].startswith("limit:")
        assert c.get("/api/v1/training_runs", params={"offset": "x"}).status_code == 400
        assert c.get("/api/v1/sessions", params={"access_scope": "all"}).status_code == 400
        assert c.get("/api/v1/sessions", params={"surprise": "1"}).status_code == 400
        assert c.post("/api/v1/weights_info", content=b"[1]").status_code == 400
        method = c.patch(f"/api/v1/training_runs/{env.run_a}/checkpoints/weights/0001/publish")
        assert method.status_code == 405
        assert method.headers["allow"] == "DELETE, POST"
        ids = {c.get("/api/v1/healthz").headers["x-request-id"] for _ in range(3)}
        assert len(ids) == 3

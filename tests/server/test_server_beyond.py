"""The operations beyond the seed on the server's shared machinery, over real HTTP on 127.0.0.1.

What the move onto ``api/`` and ``store/`` has to keep: a ``copy_weights`` retried under its
idempotency key gets the first answer again (the store records a JSON 200, not only 204s),
strict JSON bodies still take enum values, a wrong method on a literal path lists that path's
methods, the checkpoint files are served by the one range-serving response, and the hooks on
older operations (``project_id`` on training runs, the audit event types) answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from conftest import Env


def _runs(c: httpx.Client) -> list[str]:
    answer = c.get("/api/v1/training_runs", params={"access_scope": "accessible", "limit": 100})
    return [run["training_run_id"] for run in answer.json()["training_runs"]]


def test_copy_weights_replays_under_its_idempotency_key(env: Env) -> None:
    body = {"source_path": env.path_a1, "destination_project_id": env.project}
    with env.client(env.alice_key) as c:
        before = len(_runs(c))
        first = c.post("/api/v1/copy_weights", json=body, headers={"X-Idempotency-Key": "k1"})
        assert first.status_code == 200
        again = c.post("/api/v1/copy_weights", json=body, headers={"X-Idempotency-Key": "k1"})
        assert again.status_code == 200
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        assert len(_runs(c)) == before + 1
        other = c.post(
            "/api/v1/copy_weights",
            json={**body, "ttl_seconds": 7200},
            headers={"X-Idempotency-Key": "k1"},
        )
        assert other.status_code == 422
        assert other.json()["detail"].startswith("X-Idempotency-Key")
        copied = first.json()["tinker_path"]
        weights = c.post("/api/v1/weights_info", json={"tinker_path": copied})
        assert weights.status_code == 200
        for ttl in (60, "7200"):
            refused = c.post("/api/v1/copy_weights", json={**body, "ttl_seconds": ttl})
            assert refused.status_code == 400
            assert refused.json()["detail"].startswith("ttl_seconds")
    with env.client(env.mallory_key) as c:  # in no project: cannot read the source
        assert c.post("/api/v1/copy_weights", json=body).status_code == 404


def test_search_takes_enum_values_and_refuses_a_bad_owner(env: Env) -> None:
    with env.client(env.alice_key) as c:
        found = c.post(
            "/api/v1/sessions/search",
            json={"owner": {"type": "accessible"}, "statuses": [{"type": "active"}]},
        )
        assert found.status_code == 200
        ids = {s["session_id"] for s in found.json()["sessions"]}
        assert ids == {env.session_a, env.session_b}
        assert {s["status"]["type"] for s in found.json()["sessions"]} == {"active"}
        bad = c.post(
            "/api/v1/sessions/search", json={"owner": {"type": "user", "owner_urns": ["bob"]}}
        )
        assert bad.status_code == 400
        assert bad.json()["detail"].startswith("owner")
        finished = c.post(
            "/api/v1/sessions/search", json={"statuses": [{"type": "client_finished"}]}
        )
        assert finished.json()["sessions"] == []


def test_wrong_method_on_a_literal_path_lists_its_own_methods(env: Env) -> None:
    with env.client(env.alice_key) as c:
        # PUT matches no route; /sessions/{session_id} (GET) would match the path too.
        search = c.put("/api/v1/sessions/search")
        assert search.status_code == 405
        assert search.headers["Allow"] == "POST"
        session = c.put(f"/api/v1/sessions/{env.session_a}")
        assert session.status_code == 405
        assert session.headers["Allow"] == "GET"


def test_training_runs_of_one_project_and_audit_event_types(env: Env) -> None:
    with env.client(env.alice_key) as c:
        listed = c.get(
            "/api/v1/training_runs",
            params={"access_scope": "accessible", "project_id": env.project},
        ).json()
        assert [r["training_run_id"] for r in listed["training_runs"]] == [env.run_b]
        assert listed["cursor"]["total_count"] == 1
        assert c.get("/api/v1/training_runs", params={"project_id": ""}).status_code == 400
        moved = c.put(f"/api/v1/sessions/{env.session_a}/project", json={"project_id": env.project})
        assert moved.status_code == 204
        projects = c.get("/api/v1/audit", params={"event_type": "projects"}).json()["entries"]
        assert [e["event"] for e in projects] == ["session_assign_project"]
        organizations = c.get("/api/v1/audit", params={"event_type": "organizations"}).json()
        assert {e["event"] for e in organizations["entries"]} >= {"api_key_create"}
        assert all(
            e["event"].startswith(("organization_", "user_", "api_key_"))
            for e in organizations["entries"]
        )


def test_external_checkpoint_files_are_served_whole_or_one_range(env: Env) -> None:
    env.server.add_checkpoint(env.run_a, "external_weights", "peft", files=env.files)
    route = f"/api/v1/training_runs/{env.run_a}/checkpoints/external_weights/peft"
    with env.client(env.alice_key) as c:
        urls = c.get(route + "/external_weights_urls").json()["urls"]
    assert set(urls) == set(env.files)
    url = urls["adapter_model.safetensors"]
    whole = env.files["adapter_model.safetensors"]
    assert httpx.get(url).content == whole
    part = httpx.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == whole[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(whole)}"
    outside = httpx.get(url, headers={"Range": f"bytes={len(whole)}-"})
    assert outside.status_code == 416
    assert outside.json() == {"detail": "Range not satisfiable"}
    head = httpx.head(url)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(whole))
    assert httpx.get(url.replace("signature=", "signature=0")).status_code == 403

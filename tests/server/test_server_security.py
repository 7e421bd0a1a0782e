"""Security of the reference server: keys, 404-not-403 for private things, signed URLs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

if TYPE_CHECKING:
    from conftest import Env


def _operations(env: Env) -> list[tuple[str, str, dict[str, object] | None]]:
    ckpt = f"/api/v1/training_runs/{env.run_a}/checkpoints/weights/0001"
    return [
        ("POST", "/api/v1/client/config", {"sdk_version": "1"}),
        ("POST", "/api/v1/client/dynamic_config", None),
        ("POST", "/api/v1/telemetry", None),
        ("GET", "/api/v1/training_runs", None),
        ("GET", f"/api/v1/training_runs/{env.run_a}", None),
        ("GET", f"/api/v1/training_runs/{env.run_a}/checkpoints", None),
        ("DELETE", ckpt, None),
        ("POST", ckpt + "/publish", None),
        ("DELETE", ckpt + "/publish", None),
        ("PUT", ckpt + "/ttl", {"ttl_seconds": 7200}),
        ("GET", ckpt + "/archive", None),
        ("POST", "/api/v1/weights_info", {"tinker_path": env.path_a1}),
        ("GET", "/api/v1/checkpoints", None),
        ("GET", "/api/v1/sessions", None),
        ("GET", f"/api/v1/sessions/{env.session_a}", None),
        ("PUT", f"/api/v1/sessions/{env.session_a}/project", {"project_id": env.project}),
        ("GET", f"/api/v1/samplers/{env.sampler_a}", None),
        ("GET", "/api/v1/audit", None),
    ]


@pytest.mark.parametrize("key", [None, "tml-not-a-real-key", "revoked"])
def test_every_operation_needs_a_valid_key(env: Env, key: str | None) -> None:
    if key == "revoked":
        key = env.server.add_api_key(env.alice)
        env.server.revoke_api_key(key)
    with env.client(key) as c:
        for method, path, body in _operations(env):
            answer = c.request(method, path, json=body)
            assert answer.status_code == 401, (method, path)
            assert answer.json() == {"detail": "Invalid or missing API key"}
            assert answer.headers["x-request-id"]
    # Nothing happened: the checkpoint is still there and private.
    with env.client(env.alice_key) as c:
        ckpts = c.get(f"/api/v1/training_runs/{env.run_a}/checkpoints").json()["checkpoints"]
        assert ckpts[0]["public"] is False and ckpts[0]["expires_at"] is None


def test_a_key_revoked_while_in_use_is_refused_at_once(env: Env) -> None:
    key = env.server.add_api_key(env.alice)
    with env.client(key) as c:
        assert c.get("/api/v1/training_runs").status_code == 200  # now remembered as valid
        env.server.revoke_api_key(key)
        assert c.get("/api/v1/training_runs").status_code == 401


def test_another_users_private_things_are_404(env: Env) -> None:
    with env.client(env.mallory_key) as c:
        for method, path, body in _operations(env):
            if path in {
                "/api/v1/client/config",
                "/api/v1/client/dynamic_config",
                "/api/v1/telemetry",
                "/api/v1/training_runs",
                "/api/v1/checkpoints",
                "/api/v1/sessions",
                "/api/v1/audit",
            }:
                continue
            answer = c.request(method, path, json=body)
            assert answer.status_code == 404, (method, path, answer.text)
        assert c.get("/api/v1/training_runs").json()["training_runs"] == []
        assert c.get("/api/v1/checkpoints").json()["cursor"]["total_count"] == 0
        assert c.get("/api/v1/audit").status_code == 403
    # A project member can read bob's shared run but not change its checkpoints.
    with env.client(env.alice_key) as c:
        base = f"/api/v1/training_runs/{env.run_b}/checkpoints/weights/0001"
        assert c.get(f"/api/v1/training_runs/{env.run_b}/checkpoints").status_code == 200
        assert c.post(base + "/publish").status_code == 404
        assert c.delete(base).status_code == 404
        assert c.put(base + "/ttl", json={"ttl_seconds": 7200}).status_code == 404


def _archive_url(env: Env) -> str:
    with env.client(env.alice_key) as c:
        url = c.get(f"/api/v1/training_runs/{env.run_a}/checkpoints/weights/0001/archive")
        return str(url.json()["url"])


def test_tampered_and_expired_urls_are_403(env: Env) -> None:
    url = _archive_url(env)
    assert httpx.get(url).status_code == 200
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    flipped = query["signature"][:-1] + ("0" if query["signature"][-1] != "0" else "1")
    later = str(int(query["expires"]) + 3600)
    for params in (
        {**query, "signature": flipped},
        {**query, "expires": later},
        {**query, "signature": "ab" * 32},
    ):
        answer = httpx.get(base, params=params)
        assert answer.status_code == 403
        assert answer.json()["detail"]
    other = httpx.get(base.replace(parts.path.rsplit("/", 1)[1], "someotherarchive"), params=query)
    assert other.status_code == 403
    # A correctly signed URL whose time is up.
    past = int(time.time()) - 1
    expired = env.server.signer.sign(parts.path, past)
    assert httpx.get(f"{base}?{expired}").status_code == 403
    assert httpx.head(f"{base}?{expired}").status_code == 403


def test_raw_api_keys_appear_nowhere_in_the_database(env: Env) -> None:
    keys = [env.alice_key, env.bob_key, env.mallory_key]
    assert all(k.startswith("tml-") for k in keys)
    env.running.stop()
    env.server.close()
    stored = b"".join(
        p.read_bytes() for p in env.db_path.parent.iterdir() if p.name.startswith("tinker.db")
    )
    assert len(stored) > 0
    for key in keys:
        assert key.encode() not in stored
        assert key[4:].encode() not in stored


def test_range_returns_exactly_the_requested_bytes(env: Env) -> None:
    url = _archive_url(env)
    whole = httpx.get(url).content
    for first, last in [(0, 0), (1, 511), (512, 513), (len(whole) - 100, len(whole) - 1)]:
        part = httpx.get(url, headers={"Range": f"bytes={first}-{last}"})
        assert part.status_code == 206
        assert part.content == whole[first : last + 1]
        assert int(part.headers["content-length"]) == last - first + 1

"""The reference server under attack: bounded bodies and headers, idempotency that cannot be
abused, crafted input, the signed URL's host, and a busy database."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tinker_rest.server import TinkerServer

if TYPE_CHECKING:
    from conftest import Env

WriteLock = Callable[[], AbstractContextManager[None]]


def _ckpt(env: Env) -> str:
    return f"/api/v1/training_runs/{env.run_a}/checkpoints/weights/0001"


def _raw(env: Env, head: bytes, body: bytes = b"", wait: float = 10.0) -> bytes:
    """Send raw bytes and return what the server answers before closing or ``wait`` passes."""
    with socket.create_connection((env.running.host, env.running.port), timeout=wait) as sock:
        sock.sendall(head + body)
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            pass
        return answer


def test_a_huge_body_is_refused_before_it_is_read(env: Env) -> None:
    # Announces 300 MiB, sends 1 KiB, and no key: the answer comes at once, without the rest.
    head = (
        f"PUT {_ckpt(env)}/ttl HTTP/1.1\r\nHost: x\r\nX-Idempotency-Key: k1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {300 << 20}\r\n\r\n"
    ).encode()
    answer = _raw(env, head, b"{" + b" " * 1023)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_a_chunked_body_over_the_limit_is_a_413(env: Env) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(3):
            yield b"x" * (1 << 20)

    with env.client(env.alice_key) as c:
        answer = c.post("/api/v1/telemetry", content=chunks())
        assert answer.status_code == 413
        assert answer.json() == {"detail": "Content Too Large"}


def test_idempotency_is_recorded_with_the_write_or_not_at_all(env: Env) -> None:
    # A real fault in the real database: the record cannot be written. Then the change it
    # records must not be there either, and a retry applies it exactly once.
    url = _ckpt(env) + "/ttl"
    with sqlite3.connect(env.db_path) as db:
        db.execute(
            "CREATE TRIGGER no_records BEFORE INSERT ON idempotent_responses "
            "BEGIN SELECT RAISE(ABORT, 'disk gone'); END"
        )
    with env.client(env.alice_key) as c:
        failed = c.put(url, json={"ttl_seconds": 7200}, headers={"X-Idempotency-Key": "t1"})
        assert failed.status_code == 500
        ckpts = c.get(f"/api/v1/training_runs/{env.run_a}/checkpoints").json()["checkpoints"]
        assert ckpts[0]["expires_at"] is None  # not applied without its record
        with sqlite3.connect(env.db_path) as db:
            db.execute("DROP TRIGGER no_records")
        for _ in range(2):
            again = c.put(url, json={"ttl_seconds": 7200}, headers={"X-Idempotency-Key": "t1"})
            assert again.status_code == 204
        events = [e["event"] for e in c.get("/api/v1/audit").json()["entries"]]
        assert events.count("checkpoint_set_ttl") == 1


def test_an_idempotency_key_reused_for_another_request_is_a_422(env: Env) -> None:
    url = _ckpt(env) + "/ttl"
    with env.client(env.alice_key) as c:
        key = {"X-Idempotency-Key": "same"}
        assert c.put(url, json={"ttl_seconds": 7200}, headers=key).status_code == 204
        other_body = c.put(url, json={"ttl_seconds": 9000}, headers=key)
        assert other_body.status_code == 422
        assert other_body.json()["detail"].startswith("X-Idempotency-Key: already used")
        other_path = c.post(_ckpt(env) + "/publish", headers=key)
        assert other_path.status_code == 422
        entries = c.get("/api/v1/audit").json()["entries"]
        ttls = [e["event_details"]["ttl_seconds"] for e in entries if e["event"].endswith("ttl")]
        assert ttls == [7200]
        assert (
            c.get(f"/api/v1/training_runs/{env.run_a}/checkpoints").json()["checkpoints"][0][
                "public"
            ]
            is False
        )


def test_concurrent_retries_with_one_key_apply_once(env: Env) -> None:
    url = _ckpt(env) + "/publish"
    answers: list[int] = []

    def publish() -> None:
        with env.client(env.alice_key) as c:
            answers.append(c.post(url, headers={"X-Idempotency-Key": "burst"}).status_code)

    threads = [threading.Thread(target=publish) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [204] * 8
    with env.client(env.alice_key) as c:
        events = [e["event"] for e in c.get("/api/v1/audit").json()["entries"]]
    assert events.count("checkpoint_publish") == 1


def test_a_revoked_key_gets_no_replay(env: Env) -> None:
    key = env.server.add_api_key(env.alice)
    url = _ckpt(env) + "/publish"
    with env.client(key) as c:
        assert c.post(url, headers={"X-Idempotency-Key": "r1"}).status_code == 204
        env.server.revoke_api_key(key)
        replay = c.post(url, headers={"X-Idempotency-Key": "r1"})
        assert replay.status_code == 401
        assert "idempotent-replayed" not in replay.headers


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/ttl", b'{"ttl_seconds": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        ("POST", "weights_info", b"[" * 100_000 + b"]" * 100_000),
        ("PUT", "/ttl", b'{"ttl_seconds": ' + b"9" * 5000 + b"}"),
        ("POST", "weights_info", b'{"tinker_path": ' + b"9" * 5000 + b"}"),
    ],
)
def test_crafted_json_is_a_400(env: Env, method: str, path: str, body: bytes) -> None:
    url = "/api/v1/weights_info" if path == "weights_info" else _ckpt(env) + path
    with env.client(env.alice_key) as c:
        answer = c.request(method, url, content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, answer.text
        assert answer.json()["detail"]


def test_huge_numbers_in_the_query_and_range_are_a_400_or_ignored(env: Env) -> None:
    huge = "9" * 5000
    with env.client(env.alice_key) as c:
        for name in ("offset", "limit"):
            answer = c.get("/api/v1/training_runs", params={name: huge})
            assert answer.status_code in (200, 400), (name, answer.text)
        assert c.get("/api/v1/training_runs", params={"limit": huge}).status_code == 400
        url = c.get(_ckpt(env) + "/archive").json()["url"]
    signed = httpx.URL(url)
    bad_expiry = signed.copy_merge_params({"expires": huge})
    assert httpx.get(bad_expiry).status_code == 400
    whole = httpx.get(url)
    for header in (f"bytes={huge}-", f"bytes=0-{huge}", f"bytes=-{huge}"):
        answer = httpx.get(url, headers={"Range": header})
        assert answer.status_code in (200, 206, 400, 416), (header, answer.status_code)
        assert answer.status_code < 500
        if answer.status_code in (200, 206):
            assert whole.content.endswith(answer.content)


def test_signed_urls_ignore_the_host_header(env: Env) -> None:
    with env.client(env.alice_key) as c:
        answer = c.get(_ckpt(env) + "/archive", headers={"Host": "evil.example"})
    assert answer.status_code == 200
    assert answer.json()["url"].startswith(env.base_url + "/api/v1/storage/archives/")


def test_signed_urls_use_the_configured_public_url(tmp_path: Path) -> None:
    with TinkerServer(tmp_path / "t.db", public_url="https://tinker.example/base/") as server:
        org = server.add_organization("o")
        user = server.add_user("u@example.com", organization_id=org)
        key = server.add_api_key(user)
        run = server.add_training_run(server.add_session(user))
        server.add_checkpoint(run, "weights", "w", files={"a.bin": b"x"})
        with (
            server.run_in_background() as running,
            httpx.Client(
                base_url=running.base_url, headers={"X-API-Key": key, "Host": "evil.example"}
            ) as c,
        ):
            url = c.get(f"/api/v1/training_runs/{run}/checkpoints/weights/w/archive").json()["url"]
    assert url.startswith("https://tinker.example/base/api/v1/storage/archives/")


def test_slow_headers_are_cut_off(tmp_path: Path) -> None:
    # 1,100 connections that never finish their headers are all closed by the deadline.
    with (
        TinkerServer(tmp_path / "t.db", header_timeout=1.0) as server,
        server.run_in_background() as running,
    ):
        socks = []
        try:
            for _ in range(1100):
                sock = socket.create_connection((running.host, running.port), timeout=10)
                sock.sendall(b"GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                socks.append(sock)
            began = time.monotonic()
            for sock in socks:
                assert sock.recv(1) == b""  # closed by the server
            assert time.monotonic() - began < 8
            # A well-behaved client is still served.
            assert httpx.get(running.base_url + "/api/v1/healthz").status_code == 200
        finally:
            for sock in socks:
                sock.close()


def test_a_locked_database_answers_503_soon(env: Env, another_writer: WriteLock) -> None:
    with another_writer(), env.client(env.alice_key) as c:
        began = time.monotonic()
        answer = c.post(_ckpt(env) + "/publish", timeout=20)
        took = time.monotonic() - began
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert answer.json() == {"detail": "The database is busy; try again"}
    assert took < 15
    with env.client(env.alice_key) as c:
        assert c.post(_ckpt(env) + "/publish").status_code == 204


def test_oversized_headers_are_refused(env: Env) -> None:
    # 64 KiB of a header that never ends: past the 16 KiB bound on an unfinished request head,
    # the server answers 400 and closes instead of buffering more.
    head = b"GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (64 << 10)
    answer = _raw(env, head)
    assert answer.startswith(b"HTTP/1.1 4"), answer[:100]
    assert httpx.get(env.base_url + "/api/v1/healthz").status_code == 200

"""Replaying the first response to a repeated ``X-Idempotency-Key`` (ASGI middleware).

A non-GET request with an idempotency key seen in the last 24 hours, from the same API key, for
the same method, path and body, gets the stored first response instead of acting twice: a retried
publish after a lost response answers 204 again, not 409. Requests with the same key run one at a
time. A different body under the same key is a different request (a retry resends the same
body), so a reused key never answers for a request it did not see. Responses that say nothing
about the request's effect (401, 5xx) are not stored, so a retry after them acts normally.
Stored responses expire with the periodic sweep.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import weakref

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tinker_rest.server.store import Store, hash_api_key

HEADER = b"x-idempotency-key"
MAX_STORED_BODY = 1 << 20


class IdempotencyMiddleware:
    """Stores and replays responses to requests carrying ``X-Idempotency-Key``."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app = app
        self.store = store
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        raw_key = headers.get(HEADER)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        if not 1 <= len(key) <= 255:
            await _send_json(
                send, 400, {"detail": "X-Idempotency-Key: must be 1 to 255 characters"}
            )
            return
        api_key = headers.get(b"x-api-key", b"").decode("latin-1")
        body = await _read_body(receive)
        receive = _replay_body(body)
        parts = [hash_api_key(api_key), scope["method"], scope["path"], key]
        fingerprint = "\n".join(parts).encode("utf-8", "surrogateescape")
        request_hash = hashlib.sha256(
            fingerprint + b"\n" + hashlib.sha256(body).digest()
        ).hexdigest()
        lock = self._locks.get(request_hash)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[request_hash] = lock
        async with lock:
            stored = await run_in_threadpool(self.store.stored_response, request_hash)
            if stored is not None:
                old_status, old_type, old_body = stored
                extra = [(b"idempotent-replayed", b"true")]
                if old_type:
                    extra.append((b"content-type", old_type.encode("latin-1")))
                await _send(send, old_status, old_body, extra)
                return
            status: int | None = None
            content_type: str | None = None
            chunks: list[bytes] = []
            size = 0

            async def capture(message: Message) -> None:
                nonlocal size, status, content_type
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    for name, value in message.get("headers", []):
                        if name.lower() == b"content-type":
                            content_type = value.decode("latin-1")
                elif message["type"] == "http.response.body":
                    body = message.get("body", b"")
                    size += len(body)
                    if size <= MAX_STORED_BODY:
                        chunks.append(body)
                await send(message)

            await self.app(scope, receive, capture)
            if status is not None and status != 401 and status < 500 and size <= MAX_STORED_BODY:
                await run_in_threadpool(
                    self.store.store_response, request_hash, status, content_type, b"".join(chunks)
                )


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay_body(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    if status not in (204, 304):
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if status in (204, 304) else body})


async def _send_json(send: Send, status: int, payload: dict[str, str]) -> None:
    body = json.dumps(payload).encode()
    await _send(send, status, body, [(b"content-type", b"application/json")])

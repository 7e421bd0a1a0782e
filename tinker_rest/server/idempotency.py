"""Idempotent writes: what a request with ``X-Idempotency-Key`` is, and how it is replayed.

A write that carries ``X-Idempotency-Key`` records its response in the same database
transaction as the change it makes (:meth:`Store.write`), so a crash keeps both or neither: a
retry then replays the recorded response, never applies the change twice, and never turns
into a false 409.

- The key belongs to the authenticated user who first used it. The caller is authenticated
  before anything is looked up, so a revoked or unknown API key gets a 401, never a replay.
- The record holds a fingerprint of the request (method, path, body). The same key with a
  different request is a 422 that says so; the second request does not run.
- Records are kept 24 hours; the periodic sweep deletes older ones.
- Operations that change nothing (``weights_info``, telemetry, client config) record nothing:
  running them again gives the same answer, and recording would add a database write to each.
- A write that fails (4xx, 5xx) rolls back with its record, so a retry runs it again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from starlette.responses import Response

HEADER = "X-Idempotency-Key"
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class IdempotentRequest:
    """A write carrying ``X-Idempotency-Key``: whose key it is, and what the request was."""

    user_id: str
    key: str
    fingerprint: str

    @classmethod
    def of(cls, user_id: str, key: str, method: str, path: str, body: bytes) -> IdempotentRequest:
        """The request ``method path`` with ``body`` under the idempotency key ``key``."""
        digest = hashlib.sha256(f"{method}\n{path}\n".encode("utf-8", "surrogateescape"))
        digest.update(hashlib.sha256(body).digest())
        return cls(user_id, key, digest.hexdigest())

    @property
    def record_id(self) -> str:
        """The SHA-256 hex of the user and the key: one record per key of each user."""
        text = f"{self.user_id}\n{self.key}".encode("utf-8", "surrogateescape")
        return hashlib.sha256(text).hexdigest()


@dataclass(frozen=True)
class StoredResponse:
    """The response recorded for an idempotency key."""

    status_code: int
    content_type: str | None
    body: bytes

    def replay(self) -> Response:
        """The recorded response again, marked ``Idempotent-Replayed: true``."""
        headers = {"Idempotent-Replayed": "true"}
        if self.content_type:
            headers["Content-Type"] = self.content_type
        empty = self.status_code in (204, 304)
        return Response(b"" if empty else self.body, self.status_code, headers)


class Replay(Exception):
    """Raised to answer with a recorded response instead of running the request."""

    def __init__(self, stored: StoredResponse) -> None:
        super().__init__(stored.status_code)
        self.stored = stored

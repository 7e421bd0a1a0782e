"""A minimal HTTP/1.1 keep-alive server that answers the measured routes with canned JSON.

It does as little as a server can (no routing table, no validation, no logging) so that what the
benchmarks measure is the client's cost, not the server's. Run it as a script: it prints one JSON
line with its ``base_url`` and serves until its standard input closes. ``--delay SECONDS`` makes
every answer wait that long (a far service: the wait is a timer, so the server stays idle and
any number of calls can be waiting at once).

Routes: ``GET /api/v1/training_runs/<id>`` answers a canned training run, ``GET /api/v1/healthz``
answers ``{"status": "ok"}``; anything else is a JSON 404.

With ``--checkpoints N`` it also holds N synthetic checkpoints (training checkpoints of
:data:`PRUNE_RUNS` runs, newest first), for a prune: ``GET /api/v1/checkpoints?limit=&offset=``
answers the page the spec's ``CheckpointsListResponse`` says (the slice, and a cursor with the
offset, the limit, at most 1000, and the total), and ``DELETE`` of one of them
(``/api/v1/training_runs/{id}/checkpoints/{kind}/{name}``, path segments quoted) answers 204.
Deletes are counted, not applied, so that every repeat of a prune finds the same N:
``GET /bench/deleted`` answers ``{"deleted": <deletes answered 204 so far>}``. A delete of
anything else answers a JSON 404.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
from urllib.parse import parse_qsl, quote

CHECKPOINT = {
    "checkpoint_id": "weights/0042",
    "checkpoint_type": "training",
    "time": "2026-01-15T12:00:00Z",
    "tinker_path": "tinker://sess-bench:train:0/weights/0042",
    "training_run_id": "sess-bench:train:0",
    "size_bytes": 1048576,
    "public": False,
    "expires_at": None,
    "user_metadata": None,
}
TRAINING_RUN = {
    "training_run_id": "sess-bench:train:0",
    "base_model": "Qwen/Qwen3-8B",
    "model_owner": "alice@example.com",
    "is_lora": True,
    "corrupted": False,
    "lora_rank": 32,
    "last_request_time": "2026-01-15T12:00:00Z",
    "last_checkpoint": CHECKPOINT,
    "last_sampler_checkpoint": {
        **CHECKPOINT,
        "checkpoint_id": "sampler_weights/0042",
        "checkpoint_type": "sampler",
        "tinker_path": "tinker://sess-bench:train:0/sampler_weights/0042",
    },
    "user_metadata": {"purpose": "bench"},
}


def _response(status: str, body: object) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


RUN_RESPONSE = _response("200 OK", TRAINING_RUN)
HEALTH_RESPONSE = _response("200 OK", {"status": "ok"})
NOT_FOUND = _response("404 Not Found", {"detail": "Not Found"})
NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"
RUN_PREFIX = b"GET /api/v1/training_runs/"
HEALTH_PREFIX = b"GET /api/v1/healthz"
LIST_PREFIX = b"GET /api/v1/checkpoints"
DELETE_PREFIX = b"DELETE "
DELETED_PREFIX = b"GET /bench/deleted"
PRUNE_RUNS = 50  # the synthetic checkpoints are spread over this many runs
MAX_LIMIT = 1000  # the spec's maximum page size


class Checkpoints:
    """N synthetic checkpoints, newest first: their pages (made once each) and delete paths."""

    def __init__(self, count: int) -> None:
        start = datetime.datetime(2026, 1, 15, 12, tzinfo=datetime.UTC)
        self.items: list[dict[str, object]] = []
        self.paths: set[bytes] = set()
        for i in range(count):
            run, name = f"sess-prune-{i % PRUNE_RUNS:03d}:train:0", f"{i:06d}"
            time = start - datetime.timedelta(minutes=i)
            self.items.append(
                {
                    **CHECKPOINT,
                    "checkpoint_id": f"weights/{name}",
                    "time": time.isoformat().replace("+00:00", "Z"),
                    "tinker_path": f"tinker://{run}/weights/{name}",
                    "training_run_id": run,
                }
            )
            self.paths.add(
                f"/api/v1/training_runs/{quote(run, safe='')}/checkpoints/weights/{name}".encode()
            )
        self.pages: dict[tuple[int, int], bytes] = {}
        self.deleted = 0

    def page(self, target: bytes) -> bytes:
        """The answer to ``GET /api/v1/checkpoints?...`` (``target``: the request target)."""
        _, _, query = target.decode("latin-1").partition("?")
        try:
            args = {k: int(v) for k, v in parse_qsl(query)}
            limit, offset = args.get("limit", 100), args.get("offset", 0)
        except ValueError:
            return _response("422 Unprocessable Entity", {"detail": "limit and offset are ints"})
        if not 1 <= limit <= MAX_LIMIT or offset < 0:
            return _response(
                "422 Unprocessable Entity", {"detail": "limit or offset is out of range"}
            )
        answer = self.pages.get((limit, offset))
        if answer is None:
            cursor = {"offset": offset, "limit": limit, "total_count": len(self.items)}
            body = {"checkpoints": self.items[offset : offset + limit], "cursor": cursor}
            answer = self.pages[limit, offset] = _response("200 OK", body)
        return answer

    def delete(self, target: bytes) -> bytes:
        if target in self.paths:
            self.deleted += 1
            return NO_CONTENT
        return NOT_FOUND


class CannedHttp(asyncio.Protocol):
    """One connection: answer every complete request in the buffer, in order."""

    delay = 0.0
    checkpoints = Checkpoints(0)

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out = []
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buffer[:end]
            skip = end + 4
            lowered = head.lower()
            at = lowered.find(b"content-length:")
            if at >= 0:
                line_end = lowered.find(b"\r\n", at)
                stop = len(lowered) if line_end < 0 else line_end
                skip += int(lowered[at + 15 : stop])
                if len(self.buffer) < skip:
                    break
            self.buffer = self.buffer[skip:]
            if head.startswith(RUN_PREFIX):
                out.append(RUN_RESPONSE)
            elif head.startswith(HEALTH_PREFIX):
                out.append(HEALTH_RESPONSE)
            elif head.startswith(DELETE_PREFIX):
                out.append(self.checkpoints.delete(_target(head)))
            elif head.startswith(LIST_PREFIX):
                out.append(self.checkpoints.page(_target(head)))
            elif head.startswith(DELETED_PREFIX):
                out.append(_response("200 OK", {"deleted": self.checkpoints.deleted}))
            else:
                out.append(NOT_FOUND)
        if out and self.transport is not None:
            if self.delay:
                asyncio.get_running_loop().call_later(self.delay, self._write, b"".join(out))
            else:
                self.transport.write(b"".join(out))

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


def _target(head: bytes) -> bytes:
    """The request target of a request's head: the second word of its first line."""
    return head.split(b" ", 2)[1]


async def _serve(delay: float, checkpoints: int) -> None:
    CannedHttp.delay = delay
    CannedHttp.checkpoints = Checkpoints(checkpoints)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(CannedHttp, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"base_url": f"http://127.0.0.1:{port}"}), flush=True)
    # Serve until the parent closes our standard input.
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--checkpoints", type=int, default=0, help="synthetic checkpoints held")
    args = parser.parse_args()
    asyncio.run(_serve(args.delay, args.checkpoints))

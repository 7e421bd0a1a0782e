"""A minimal HTTP/1.1 keep-alive server that answers the measured routes with canned JSON.

It does as little as a server can (no routing table, no validation, no logging) so that what the
benchmarks measure is the client's cost, not the server's. Run it as a script: it prints one JSON
line with its ``base_url`` and serves until its standard input closes. ``--delay SECONDS`` makes
every answer wait that long (a far service: the wait is a timer, so the server stays idle and
any number of calls can be waiting at once).

Routes: ``GET /api/v1/training_runs/<id>`` answers a canned training run, ``GET /api/v1/healthz``
answers ``{"status": "ok"}``; anything else is a JSON 404.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

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
RUN_PREFIX = b"GET /api/v1/training_runs/"
HEALTH_PREFIX = b"GET /api/v1/healthz"


class CannedHttp(asyncio.Protocol):
    """One connection: answer every complete request in the buffer, in order."""

    delay = 0.0

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


async def _serve(delay: float) -> None:
    CannedHttp.delay = delay
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
    asyncio.run(_serve(parser.parse_args().delay))

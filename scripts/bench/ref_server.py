"""The reference server with a generated data set, in its own process, for the benchmarks.

Run as a script: it builds a fresh database in ``--dir`` (bulk inserts, no per-row API calls),
starts :class:`~tinker_rest.server.TinkerServer` on 127.0.0.1, prints one JSON line describing
what it holds, and serves until its standard input closes.

The data set: one user (``alice``) owns ``--runs`` training runs in sessions of ten, with
``--checkpoints`` checkpoints spread evenly over them (no files behind them: only the download is
ever fetched). A second user (``bob``) owns one more run with one checkpoint whose file is
``--download-bytes`` long, so alice's checkpoint list is exactly ``--checkpoints`` long.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import insert

from tinker_rest.server import TinkerServer, db

RUNS_PER_SESSION = 10
BATCH = 20_000


def build(server: TinkerServer, runs: int, checkpoints: int) -> tuple[str, str]:
    """Insert the data set in bulk; return alice's API key and one of her run ids."""
    org = server.add_organization("bench")
    alice = server.add_user("alice@bench.example", organization_id=org, role="admin")
    key = server.add_api_key(alice)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    sessions: list[dict[str, Any]] = []
    run_rows: list[dict[str, Any]] = []
    for i in range(runs):
        sid = f"sess-bench{i // RUNS_PER_SESSION:06d}"
        if i % RUNS_PER_SESSION == 0:
            sessions.append(
                {
                    "id": sid,
                    "owner_id": alice,
                    "project_id": None,
                    "display_name": None,
                    "user_metadata": None,
                    "created_at": start + dt.timedelta(seconds=i),
                    "next_train_index": min(RUNS_PER_SESSION, runs - i),
                    "next_sample_index": 0,
                }
            )
        when = start + dt.timedelta(seconds=i)
        run_rows.append(
            {
                "id": f"{sid}:train:{i % RUNS_PER_SESSION}",
                "session_id": sid,
                "base_model": "Qwen/Qwen3-8B",
                "lora_rank": 32,
                "corrupted": False,
                "train_unembed": True,
                "train_mlp": True,
                "train_attn": True,
                "optimizer": "adam",
                "user_metadata": {"purpose": "bench"},
                "created_at": when,
                "last_request_time": when,
            }
        )
    with server.engine.begin() as conn:
        conn.execute(insert(db.Session.__table__), sessions)
        conn.execute(insert(db.TrainingRun.__table__), run_rows)
        batch: list[dict[str, Any]] = []
        for j in range(checkpoints):
            run = run_rows[j % runs]
            step = j // runs
            kind = "sampler_weights" if step % 2 else "weights"
            batch.append(
                {
                    "training_run_id": run["id"],
                    "kind": kind,
                    "name": f"{step:04d}",
                    "created_at": start + dt.timedelta(seconds=runs + j),
                    "size_bytes": 1 << 20,
                    "public": False,
                    "expires_at": None,
                    "user_metadata": None,
                    "blob_id": f"bench{j:010d}",
                }
            )
            if len(batch) >= BATCH:
                conn.execute(insert(db.Checkpoint.__table__), batch)
                batch = []
        if batch:
            conn.execute(insert(db.Checkpoint.__table__), batch)
    return key, run_rows[0]["id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--checkpoints", type=int, default=100_000)
    parser.add_argument("--download-bytes", type=int, default=1 << 30)
    args = parser.parse_args()

    began = time.perf_counter()
    server = TinkerServer(str(args.dir / "tinker.db"), sweep_interval=3600, archive_wait=5.0)
    key, run_id = build(server, args.runs - 1, args.checkpoints)
    org = server.add_organization("other")
    bob = server.add_user("bob@bench.example", organization_id=org)
    bob_key = server.add_api_key(bob)
    bob_run = server.add_training_run(server.add_session(bob))
    download = server.add_checkpoint(
        bob_run, "weights", "big", files={"weights.bin": args.download_bytes}
    )
    built = time.perf_counter() - began
    # Not TinkerServer.run_in_background: it binds a socket made with proto 0, so asyncio never
    # sets TCP_NODELAY on the accepted connections, and every response whose head and body go
    # out in two writes waits ~40 ms for the client's delayed ACK (Nagle). Proto IPPROTO_TCP
    # gets TCP_NODELAY; see the report for the one-line fix in tinker_rest/server/server.py.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        server.app, log_level="warning", lifespan="off", access_log=False, backlog=1024
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not uv.started:
        if not thread.is_alive():
            raise SystemExit("the reference server did not start")
        time.sleep(0.01)
    info = {
        "base_url": f"http://127.0.0.1:{sock.getsockname()[1]}",
        "api_key": key,
        "run_id": run_id,
        "download_key": bob_key,
        "download_path": download,
        "build_seconds": round(built, 2),
    }
    print(json.dumps(info), flush=True)
    sys.stdin.read()
    uv.should_exit = True
    thread.join(timeout=30)
    sock.close()
    server.close()


if __name__ == "__main__":
    main()

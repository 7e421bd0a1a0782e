"""The write tail under load: 64 clients, 70% reads and 30% writes, for a bounded time.

Reads are ``GET /api/v1/training_runs/{id}``; writes are ``PUT …/checkpoints/{kind}/{name}/ttl``
with an ``X-Idempotency-Key`` (each a real write and its idempotency record in one commit). The
figure is write p99 over read p99, both measured in the same run against the same server
(target: at most 4), with 0 errors. Run alone: ``.venv/bin/python scripts/bench/mix.py
[--seconds 60]``; ``make bench`` runs it with the reference figures. Measured on 2 shared
cores (3 runs of 20 s): 1.75-2.05, from 3.5-3.9 before the writer's group commit and Core
writes (``tinker_rest/server/writer.py`` has the profile and the numbers).

``--serve DIR`` is the server side: a :class:`TinkerServer` over a SQLite file in ``DIR`` in
its own process, which prints one JSON line (base URL, keys, ids) and serves until stdin closes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

USERS = 8
RUNS_PER_USER = 4
CHECKPOINTS_PER_RUN = 4
WRITE_SHARE = 0.3
MAX_CALLS_PER_CLIENT = 100_000


def serve(folder: Path) -> None:
    """Seed a small world, serve it in the background, print how to reach it, wait on stdin."""
    from tinker_rest.server import TinkerServer

    server = TinkerServer(folder / "tinker.db", sweep_interval=3600)
    org = server.add_organization("mix")
    users = []
    for u in range(USERS):
        user = server.add_user(f"u{u}@mix.example", organization_id=org)
        session = server.add_session(user)
        runs = []
        for _ in range(RUNS_PER_USER):
            run = server.add_training_run(session)
            for c in range(CHECKPOINTS_PER_RUN):
                server.add_checkpoint(run, "weights", f"{c:04d}", files={"w.bin": 64})
            runs.append(run)
        users.append({"key": server.add_api_key(user), "runs": runs})
    with server.run_in_background() as running:
        print(json.dumps({"base_url": running.base_url, "users": users}), flush=True)
        sys.stdin.read()
    server.close()


def load(info: dict[str, Any], clients: int, seconds: float) -> dict[str, Any]:
    """Run the mix from ``clients`` threads for ``seconds``; latencies per kind and errors."""
    latencies: dict[str, list[float]] = {"read": [], "write": []}
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        rng = random.Random(index)
        user = info["users"][index % len(info["users"])]
        mine: dict[str, list[float]] = {"read": [], "write": []}
        with httpx.Client(
            base_url=info["base_url"], headers={"X-API-Key": user["key"]}, timeout=30
        ) as http:
            # Every client makes at least one call, even when it starts after the deadline.
            for _ in range(MAX_CALLS_PER_CLIENT):
                run = rng.choice(user["runs"])
                kind = "write" if rng.random() < WRITE_SHARE else "read"
                began = time.perf_counter()
                try:
                    if kind == "read":
                        answer = http.get(f"/api/v1/training_runs/{run}")
                    else:
                        name = f"{rng.randrange(CHECKPOINTS_PER_RUN):04d}"
                        answer = http.put(
                            f"/api/v1/training_runs/{run}/checkpoints/weights/{name}/ttl",
                            json={"ttl_seconds": rng.randrange(3600, 86400)},
                            headers={"X-Idempotency-Key": uuid.uuid4().hex},
                        )
                    ok = answer.status_code < 300
                    why = f"{kind} {answer.status_code}"
                except httpx.HTTPError as exc:
                    ok, why = False, f"{kind} {type(exc).__name__}"
                mine[kind].append(time.perf_counter() - began)
                if not ok:
                    with lock:
                        errors.append(why)
                if time.monotonic() >= deadline:
                    break
        with lock:
            for k, values in mine.items():
                latencies[k] += values

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies": latencies, "errors": errors}


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank); NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_mix(workdir: Path, *, clients: int = 64, seconds: float = 60) -> dict[str, Any]:
    """Start the server process, run the mix, and summarise it (milliseconds)."""
    from bench.harness import child_server

    with child_server(["bench/mix.py", "--serve", str(workdir / "mix")]) as info:
        result = load(info, clients, seconds)
    lat = result["latencies"]
    summary: dict[str, Any] = {"clients": clients, "seconds": seconds}
    for kind in ("read", "write"):
        summary[f"{kind}_calls"] = len(lat[kind])
        for q in (0.5, 0.99):
            summary[f"{kind}_p{int(q * 100)}_ms"] = round(quantile(lat[kind], q) * 1e3, 2)
        summary[f"{kind}_max_ms"] = round(max(lat[kind], default=float("nan")) * 1e3, 2)
    summary["errors"] = len(result["errors"])
    summary["error_kinds"] = sorted(set(result["errors"]))[:10]
    return summary


def bench_mix(workdir: Path, *, seconds: float = 60) -> dict[str, Any]:
    """The ``write tail`` figure of ``make bench``: write p99 / read p99, target <= 4."""
    from bench.harness import figure, log

    log(f"write tail: 64 clients, 70% reads / 30% writes, {seconds:g} s")
    s = run_mix(workdir, seconds=seconds)
    ratio = s["write_p99_ms"] / s["read_p99_ms"]
    fig = figure("write_tail", "write tail (p99 write / p99 read)", [ratio], "<=", 4, **s)
    fig["met"] = fig["met"] and s["errors"] == 0
    fig["text"] = (
        f"p99 {s['write_p99_ms']:.0f} ms vs {s['read_p99_ms']:.0f} ms; {s['errors']} errors"
    )
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", type=Path, help="run the server side in this folder")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=64)
    args = parser.parse_args()
    if args.serve is not None:
        args.serve.mkdir(parents=True, exist_ok=True)
        serve(args.serve)
        return
    with tempfile.TemporaryDirectory(prefix="tinker-mix-") as tmp:
        print(json.dumps(run_mix(Path(tmp), clients=args.clients, seconds=args.seconds)))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()

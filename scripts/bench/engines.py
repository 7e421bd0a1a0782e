"""The HTTP engines tinker-rest could be built on, raw, side by side against the canned server.

Each candidate makes the same ``GET`` of the canned training run and decodes the JSON body:

- sequential: one call at a time from one thread (latency, and client CPU per call);
- far: ``calls`` calls with ``in_flight`` of them outstanding, against the canned server
  answering after its ``--delay`` (the far-service throughput).

``make bench`` runs them in one process, in turns, so that load on the machine falls on all alike.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from bench.workloads import WARMUP, Sample, _cpu, timed

HEADERS = {"X-API-Key": "bench-key", "User-Agent": "bench-raw"}
TIMEOUTS = {"timeout": {"connect": 30.0, "read": 30.0, "write": 30.0, "pool": 60.0}}
# Seconds a far-service candidate may take for its warm-up or its run (the best do 2,000 calls
# in under a second) before it counts as stalled.
STALLED = 30.0


# --- sequential: one call per loop turn -------------------------------------------------------


def sequential_calls(url: str) -> dict[str, tuple[Callable[[], Any], Callable[[], None]]]:
    """Per candidate: a call (get and decode) and the function that closes what it opened."""
    import httpcore
    import pyqwest

    calls: dict[str, tuple[Callable[[], Any], Callable[[], None]]] = {}

    client = httpx.Client(headers=HEADERS)

    def with_httpx() -> Any:
        response = client.get(url)
        response.raise_for_status()
        return response.json()

    calls["httpx.Client"] = (with_httpx, client.close)

    pool = httpcore.ConnectionPool()
    core_headers = list(HEADERS.items())

    def with_httpcore() -> Any:
        response = pool.request("GET", url, headers=core_headers)
        assert response.status == 200
        return json.loads(response.content)

    calls["httpcore.ConnectionPool"] = (with_httpcore, pool.close)

    calls["pycurl.Curl.perform"] = pycurl_call(url, HEADERS)

    qwest = pyqwest.SyncClient(pyqwest.SyncHTTPTransport())

    def with_pyqwest() -> Any:
        response = qwest.get(url, HEADERS)
        assert response.status == 200
        return json.loads(response.content)

    calls["pyqwest.SyncClient"] = (with_pyqwest, lambda: None)
    return calls


def pycurl_call(url: str, headers: dict[str, str]) -> tuple[Callable[[], Any], Callable[[], None]]:
    """One libcurl easy handle: a call (perform, check, decode) and its close."""
    import pycurl

    curl = pycurl.Curl()
    curl.setopt(pycurl.URL, url)
    curl.setopt(pycurl.HTTPHEADER, [f"{k}: {v}" for k, v in headers.items()])
    buffer = io.BytesIO()
    curl.setopt(pycurl.WRITEDATA, buffer)

    def call() -> Any:
        buffer.seek(0)
        buffer.truncate()
        curl.perform()
        assert curl.getinfo(pycurl.RESPONSE_CODE) == 200
        return json.loads(buffer.getvalue())

    return call, curl.close


# --- far: many calls in flight ----------------------------------------------------------------


@dataclasses.dataclass
class _Transfer:
    """One easy handle of a :class:`CurlMultiPool`, and what it is doing."""

    curl: Any
    buffer: io.BytesIO
    request: tuple[str, str] = ("", "")
    index: int = 0


class CurlMultiPool:
    """One thread driving up to ``in_flight`` transfers at a time through a ``CurlMulti``.

    The raw libcurl baseline: for the far-service figure (many ``GET``s of one URL) and the
    prune figure (listing pages, then ``DELETE``s).
    """

    def __init__(self, in_flight: int) -> None:
        import pycurl

        self.multi = pycurl.CurlMulti()
        self.multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, in_flight)
        self.transfers: dict[int, _Transfer] = {}
        for _ in range(in_flight):
            transfer = _Transfer(pycurl.Curl(), io.BytesIO())
            transfer.curl.setopt(pycurl.HTTPHEADER, [f"{k}: {v}" for k, v in HEADERS.items()])
            transfer.curl.setopt(pycurl.WRITEDATA, transfer.buffer)
            self.transfers[id(transfer.curl)] = transfer

    def run(
        self, requests: Sequence[tuple[str, str]], on_done: Callable[[int, int, bytes], None]
    ) -> None:
        """Send every ``(method, url)``; call ``on_done(index, status, body)`` as each ends."""
        import pycurl

        multi, transfers, free = self.multi, self.transfers, list(self.transfers.values())
        n, started, done = len(requests), 0, 0
        while done < n:
            while free and started < n:
                transfer = free.pop()
                curl, request = transfer.curl, requests[started]
                if transfer.request != request:  # only what changed: a GET of one URL sets none
                    if transfer.request[0] != request[0]:
                        curl.setopt(pycurl.CUSTOMREQUEST, request[0])
                    if transfer.request[1] != request[1]:
                        curl.setopt(pycurl.URL, request[1])
                    transfer.request = request
                transfer.index = started
                transfer.buffer.seek(0)
                transfer.buffer.truncate()
                multi.add_handle(curl)
                started += 1
            while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
                pass
            while True:
                queued, ok, failed = multi.info_read()
                for curl in ok:
                    multi.remove_handle(curl)
                    transfer = transfers[id(curl)]
                    status = curl.getinfo(pycurl.RESPONSE_CODE)
                    on_done(transfer.index, status, transfer.buffer.getvalue())
                    free.append(transfer)
                    done += 1
                if failed:
                    raise RuntimeError(f"pycurl failed: {failed[0][2]}")
                if not queued:
                    break
            if done < n:
                multi.select(1.0)

    def close(self) -> None:
        for transfer in self.transfers.values():
            transfer.curl.close()
        self.multi.close()


def far_pycurl(url: str, calls: int, in_flight: int) -> Sample:
    """One thread driving ``in_flight`` transfers through a ``CurlMulti``."""
    pool = CurlMultiPool(in_flight)

    def run(n: int) -> None:
        pool.run([("GET", url)] * n, lambda _i, _status, body: json.loads(body))

    try:
        run(max(WARMUP, in_flight))
        return timed(lambda: run(calls), calls)
    finally:
        pool.close()


def raw_prune(pool: CurlMultiPool, base_url: str, page_size: int) -> tuple[float, int]:
    """What a prune of every checkpoint does, raw: list them (the first page, then every other
    page at once), then delete each (all queued at once; ``pool`` bounds those in flight).

    Returns:
        The seconds the listing took, and how many checkpoints were deleted.
    """
    listed = base_url + "/api/v1/checkpoints?limit={}&offset={}"
    t0 = time.perf_counter()
    pages: dict[int, Any] = {}

    def page(i: int, status: int, body: bytes) -> None:
        if status != 200:
            raise RuntimeError(f"listing answered {status}")
        pages[i] = json.loads(body)

    pool.run([("GET", listed.format(page_size, 0))], page)
    first = pages.pop(0)
    found = list(first["checkpoints"])
    step, total = len(found), first["cursor"]["total_count"]
    offsets = range(step, total, step) if step else range(0)
    pool.run([("GET", listed.format(step, offset)) for offset in offsets], page)
    for i in range(len(offsets)):
        found += pages[i]["checkpoints"]
    listing = time.perf_counter() - t0

    deletes = []
    for checkpoint in found:
        run, kind, name = checkpoint["tinker_path"].removeprefix("tinker://").split("/")
        deletes.append(
            (
                "DELETE",
                f"{base_url}/api/v1/training_runs/{quote(run, safe='')}"
                f"/checkpoints/{quote(kind, safe='')}/{quote(name, safe='')}",
            )
        )

    def deleted(i: int, status: int, body: bytes) -> None:
        if status != 204:
            raise RuntimeError(f"DELETE {deletes[i][1]} answered {status}")

    pool.run(deletes, deleted)
    return listing, len(deletes)


async def _gather(call: Callable[[], Any], calls: int, in_flight: int) -> Sample:
    async def worker(counter: Any) -> None:
        for _ in counter:
            await call()

    # Bounded: a candidate that stalls (httpcore's async pool did, here, with 256 connections)
    # fails its row within STALLED seconds rather than holding up the whole run.
    warm = iter(range(max(WARMUP, in_flight)))
    await asyncio.wait_for(asyncio.gather(*(worker(warm) for _ in range(in_flight))), STALLED)
    counter = iter(range(calls))
    cpu0, t0 = _cpu(), time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker(counter) for _ in range(in_flight))), STALLED)
    return Sample(time.perf_counter() - t0, _cpu() - cpu0, calls)


def far_httpx(url: str, calls: int, in_flight: int) -> Sample:
    """``httpx.AsyncClient`` with ``in_flight`` tasks on one event loop."""

    async def main() -> Sample:
        limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
        async with httpx.AsyncClient(headers=HEADERS, limits=limits, timeout=60) as client:

            async def one() -> None:
                (await client.get(url)).json()

            return await _gather(one, calls, in_flight)

    return asyncio.run(main())


def far_httpcore(url: str, calls: int, in_flight: int) -> Sample:
    """``httpcore.AsyncConnectionPool`` with ``in_flight`` tasks on one event loop."""
    import httpcore

    async def main() -> Sample:
        async with httpcore.AsyncConnectionPool(max_connections=in_flight) as pool:
            headers = list(HEADERS.items())

            async def one() -> None:
                response = await pool.request("GET", url, headers=headers, extensions=TIMEOUTS)
                json.loads(response.content)

            return await _gather(one, calls, in_flight)

    return asyncio.run(main())


def far_pyqwest(url: str, calls: int, in_flight: int) -> Sample:
    """``pyqwest.Client`` (reqwest and hyper on tokio) with ``in_flight`` asyncio tasks."""
    import pyqwest

    async def main() -> Sample:
        client = pyqwest.Client(pyqwest.HTTPTransport(pool_max_idle_per_host=in_flight))

        async def one() -> None:
            json.loads((await client.get(url, HEADERS)).content)

        return await _gather(one, calls, in_flight)

    return asyncio.run(main())


FAR = {
    "pycurl.CurlMulti, one thread": far_pycurl,
    "pyqwest.Client (asyncio)": far_pyqwest,
    "httpcore.AsyncConnectionPool (asyncio)": far_httpcore,
    "httpx.AsyncClient (asyncio)": far_httpx,
}

"""The measured workloads: the facade's calls and the raw httpx baselines they are compared to.

Each workload runs in this (the client) process against a server in another process and returns
a :class:`Sample`: wall seconds, the process's user+sys CPU seconds, the number of calls, and
per-call latencies where the workload is sequential. Every baseline decodes the JSON body, as
the facade does, so the comparison is "what the facade adds over httpx".
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from tinker_rest import RestClient

WARMUP = 50


@dataclass
class Sample:
    """One timed run of one workload."""

    seconds: float
    cpu: float
    calls: int
    latencies: list[float] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.calls / self.seconds

    @property
    def cpu_per_call(self) -> float:
        return self.cpu / self.calls


def _cpu() -> float:
    """This process's CPU seconds, user and system, at the clock's full resolution (os.times
    counts whole ticks of 10 ms: a smoke run's 30 sequential calls could measure 0)."""
    return time.process_time()


def timed(fn: Callable[[], Any], calls: int) -> Sample:
    """Run ``fn`` once with the collector off; measure wall and CPU time."""
    gc.collect()
    gc.disable()
    try:
        cpu0, t0 = _cpu(), time.perf_counter()
        latencies = fn()
        t1, cpu1 = time.perf_counter(), _cpu()
    finally:
        gc.enable()
    return Sample(t1 - t0, cpu1 - cpu0, calls, latencies or [])


def _limits(n: int) -> httpx.Limits:
    return httpx.Limits(max_connections=n, max_keepalive_connections=n)


def _headers(api_key: str) -> dict[str, str]:
    return {"X-API-Key": api_key, "User-Agent": "bench-raw"}


# --- raw httpx ------------------------------------------------------------------------------


def raw_sequential(base_url: str, api_key: str, path: str, calls: int) -> Sample:
    """One httpx.Client in a loop: get, then decode the JSON."""
    with httpx.Client(base_url=base_url, headers=_headers(api_key)) as client:
        for _ in range(WARMUP):
            client.get(path).json()

        def run() -> list[float]:
            latencies = []
            clock = time.perf_counter
            for _ in range(calls):
                t = clock()
                response = client.get(path)
                response.raise_for_status()
                response.json()
                latencies.append(clock() - t)
            return latencies

        return timed(run, calls)


def raw_threads(base_url: str, api_key: str, path: str, calls: int, threads: int) -> Sample:
    """One httpx.Client shared by ``threads`` threads, each taking the next call in turn."""
    with (
        httpx.Client(
            base_url=base_url, headers=_headers(api_key), limits=_limits(threads)
        ) as client,
        ThreadPoolExecutor(threads) as pool,
    ):
        list(pool.map(lambda _: client.get(path).json(), range(max(WARMUP, threads))))

        def worker(counter: Any) -> None:
            for _ in counter:
                response = client.get(path)
                response.raise_for_status()
                response.json()

        def run() -> None:
            counter = iter(range(calls))  # next() on a range iterator is atomic under the GIL
            for future in [pool.submit(worker, counter) for _ in range(threads)]:
                future.result()

        return timed(run, calls)


async def _gather_timed(call: Callable[[], Awaitable[Any]], calls: int, concurrency: int) -> Sample:
    """``calls`` awaits of ``call()`` from ``concurrency`` tasks, timed with the collector off."""

    async def worker(counter: Any) -> None:
        for _ in counter:
            await call()

    counter = iter(range(calls))  # next() on a range iterator is atomic under the GIL
    gc.collect()
    gc.disable()
    try:
        cpu0, t0 = _cpu(), time.perf_counter()
        await asyncio.gather(*(worker(counter) for _ in range(concurrency)))
        t1, cpu1 = time.perf_counter(), _cpu()
    finally:
        gc.enable()
    return Sample(t1 - t0, cpu1 - cpu0, calls)


def raw_async(base_url: str, api_key: str, path: str, calls: int, concurrency: int) -> Sample:
    """httpx.AsyncClient with ``concurrency`` tasks in flight (asyncio.gather)."""

    async def main() -> Sample:
        async with httpx.AsyncClient(
            base_url=base_url, headers=_headers(api_key), limits=_limits(concurrency)
        ) as client:

            async def one() -> None:
                response = await client.get(path)
                response.raise_for_status()
                response.json()

            await asyncio.gather(*(one() for _ in range(max(WARMUP, concurrency))))

            return await _gather_timed(one, calls, concurrency)

    return asyncio.run(main())


def interleaved(calls_by_name: dict[str, Callable[[], Any]], calls: int, chunk: int) -> dict:
    """Sequential calls of several clients, alternating in chunks so that load on the machine
    falls on all of them alike; per client, a :class:`Sample` with per-call latencies."""
    for call in calls_by_name.values():
        for _ in range(WARMUP):
            call()
    samples = {name: Sample(0.0, 0.0, 0) for name in calls_by_name}
    clock = time.perf_counter
    gc.collect()
    gc.disable()
    try:
        done = 0
        while done < calls:
            n = min(chunk, calls - done)
            for name, call in calls_by_name.items():
                sample = samples[name]
                latencies = sample.latencies
                cpu0, t0 = _cpu(), clock()
                for _ in range(n):
                    t = clock()
                    call()
                    latencies.append(clock() - t)
                sample.seconds += clock() - t0
                sample.cpu += _cpu() - cpu0
                sample.calls += n
            done += n
    finally:
        gc.enable()
    return samples


def raw_call(client: httpx.Client, path: str) -> Callable[[], Any]:
    """One raw call: get, check, decode."""

    def call() -> Any:
        response = client.get(path)
        response.raise_for_status()
        return response.json()

    return call


def raw_client(base_url: str, api_key: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers=_headers(api_key))


# --- where a call's CPU goes -------------------------------------------------------------------


def layer_calls(
    base_url: str, api_key: str, path: str, run_id: str, stack: contextlib.ExitStack
) -> dict[str, Callable[[], Any]]:
    """The same GET and JSON decode, made through each layer of the stack in turn, from the
    bare socket up to the facade; each returns the decoded body."""
    import h11

    url = httpx.URL(base_url)
    host, port = url.host, url.port or 80
    headers = _headers(api_key)
    raw_head = [(b"Host", f"{host}:{port}".encode())] + [
        (k.encode(), v.encode()) for k, v in headers.items()
    ]

    def connect() -> socket.socket:
        sock = stack.enter_context(socket.create_connection((host, port)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    floor_sock = connect()
    floor_request = b"GET %s HTTP/1.1\r\n%s\r\n" % (
        path.encode(),
        b"".join(k + b": " + v + b"\r\n" for k, v in raw_head),
    )

    def floor() -> Any:  # the canned server's answers carry a Content-Length
        floor_sock.sendall(floor_request)
        data = floor_sock.recv(65536)
        end = data.index(b"\r\n\r\n") + 4
        length = int(data[:end].lower().split(b"content-length:")[1].split(b"\r\n")[0])
        while len(data) < end + length:
            data += floor_sock.recv(65536)
        return json.loads(data[end:])

    h11_sock, h11_conn = connect(), h11.Connection(h11.CLIENT)

    def with_h11() -> Any:
        request = h11.Request(method=b"GET", target=path.encode(), headers=raw_head)
        h11_sock.sendall(h11_conn.send(request) + h11_conn.send(h11.EndOfMessage()))
        body = []
        while True:
            event = h11_conn.next_event()
            if event is h11.NEED_DATA:
                h11_conn.receive_data(h11_sock.recv(65536))
            elif isinstance(event, h11.Data):
                body.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
        h11_conn.start_next_cycle()
        return json.loads(b"".join(body))

    from bench.engines import pycurl_call

    with_libcurl, close_curl = pycurl_call(str(url.join(path)), headers)
    stack.callback(close_curl)

    def through(transport: httpx.BaseTransport) -> Callable[[], Any]:
        full = str(url.join(path))

        def call() -> Any:
            response = transport.handle_request(httpx.Request("GET", full, headers=headers))
            response.read()
            return response.json()

        return call

    client = stack.enter_context(raw_client(base_url, api_key))
    facade = stack.enter_context(RestClient(base_url, api_key, max_retries=0))
    return {
        "socket, bytes parsed by hand": floor,
        "h11 on a socket": with_h11,
        "libcurl easy handle (pycurl), in the calling thread": with_libcurl,
        "httpx.HTTPTransport (httpcore + h11)": through(stack.enter_context(httpx.HTTPTransport())),
        "httpx.Client.get": raw_call(client, path),
        "RestClient.get_training_run().result()": lambda: facade.get_training_run(run_id).result(),
    }


# --- the facade -----------------------------------------------------------------------------


def make_client(design: str, base_url: str, api_key: str, max_in_flight: int) -> RestClient:
    """The facade as it is, with ``max_in_flight`` (``design`` names the figure's row)."""
    return RestClient(base_url, api_key, max_in_flight=max_in_flight, max_retries=0)


def ours_sequential(client: RestClient, run_id: str, calls: int) -> Sample:
    """``get_training_run(...).result()`` in a loop: one call in flight."""
    for _ in range(WARMUP):
        client.get_training_run(run_id).result()

    def run() -> list[float]:
        latencies = []
        clock = time.perf_counter
        get = client.get_training_run
        for _ in range(calls):
            t = clock()
            get(run_id).result()
            latencies.append(clock() - t)
        return latencies

    return timed(run, calls)


def ours_futures(client: RestClient, run_id: str, calls: int, in_flight: int) -> Sample:
    """``calls`` futures, at most ``in_flight`` of them pending at any moment."""
    for future in [client.get_training_run(run_id) for _ in range(max(WARMUP, in_flight))]:
        future.result()

    def run() -> None:
        window = threading.BoundedSemaphore(in_flight)
        futures = []
        release = lambda _: window.release()  # noqa: E731
        for _ in range(calls):
            window.acquire()
            future = client.get_training_run(run_id)
            future.add_done_callback(release)
            futures.append(future)
        for future in futures:
            future.result()

    return timed(run, calls)


def ours_async(client: RestClient, run_id: str, calls: int, concurrency: int) -> Sample:
    """``await get_training_run_async(...)`` from ``concurrency`` tasks on one event loop."""

    async def main() -> Sample:
        await asyncio.gather(
            *(client.get_training_run_async(run_id) for _ in range(max(WARMUP, concurrency)))
        )

        return await _gather_timed(
            lambda: client.get_training_run_async(run_id), calls, concurrency
        )

    return asyncio.run(main())


# --- pagination -----------------------------------------------------------------------------


def raw_pages(base_url: str, api_key: str, page_size: int) -> Sample:
    """Page through ``GET /api/v1/checkpoints`` with httpx until the total; decode each page."""
    with httpx.Client(base_url=base_url, headers=_headers(api_key), timeout=120) as client:

        def run() -> None:
            offset, total = 0, None
            seen = 0
            while total is None or offset < total:
                params = {"limit": page_size, "offset": offset}
                page = client.get("/api/v1/checkpoints", params=params).json()
                items = page["checkpoints"]
                seen += len(items)
                total = page["cursor"]["total_count"]
                offset += len(items)
                if not items:
                    break
            run.seen = seen  # type: ignore[attr-defined]

        sample = timed(run, 1)
        sample.calls = run.seen  # type: ignore[attr-defined]
        return sample


def ours_pages(base_url: str, api_key: str, page_size: int) -> Sample:
    """``for checkpoint in client.iter_user_checkpoints(page_size=...)``."""
    with RestClient(base_url, api_key, timeout=120, max_retries=0) as client:
        seen = [0]

        def run() -> None:
            for _ in client.iter_user_checkpoints(page_size=page_size):
                seen[0] += 1

        sample = timed(run, 1)
        sample.calls = seen[0]
        return sample


def page_latency(base_url: str, api_key: str, offset: int, page_size: int, repeats: int) -> list:
    """Latency of one page at ``offset``; the body is read but not decoded (server time)."""
    with httpx.Client(base_url=base_url, headers=_headers(api_key), timeout=120) as client:
        params = {"limit": page_size, "offset": offset}
        client.get("/api/v1/checkpoints", params=params).raise_for_status()
        latencies = []
        for _ in range(repeats):
            t = time.perf_counter()
            client.get("/api/v1/checkpoints", params=params).raise_for_status()
            latencies.append(time.perf_counter() - t)
        return latencies


# --- server throughput ----------------------------------------------------------------------


def server_throughput(base_url: str, api_key: str, path: str, calls: int, threads: int) -> Sample:
    """Load the reference server with ``threads`` concurrent clients (httpx, one per thread)."""
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base_url, headers=_headers(api_key), timeout=120)
            with lock:
                clients.append(local.client)
        return local.client

    def worker(counter: Any) -> None:
        for _ in counter:
            client().get(path).raise_for_status()

    try:
        with ThreadPoolExecutor(threads) as pool:
            warm = iter(range(threads * 2))
            for future in [pool.submit(worker, warm) for _ in range(threads)]:
                future.result()

            def run() -> None:
                counter = iter(range(calls))
                for future in [pool.submit(worker, counter) for _ in range(threads)]:
                    future.result()

            return timed(run, calls)
    finally:
        for c in clients:
            c.close()

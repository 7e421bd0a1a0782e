"""Design (b), prototyped for measurement only: one event-loop thread driving httpx.AsyncClient.

:class:`LoopRestClient` is a :class:`~tinker_rest.RestClient` whose calls run as tasks on one
background event loop that shares one ``httpx.AsyncClient``, instead of on a pool of threads
sharing one ``httpx.Client``. Futures, parsing, errors and retries are the facade's own; only the
I/O mechanism differs, so the two designs can be compared call for call.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any, TypeVar

import httpx

from tinker_rest import RestClient
from tinker_rest._errors import APIConnectionError, APITimeoutError
from tinker_rest._futures import APIFuture
from tinker_rest._retry import RetryPolicy

T = TypeVar("T")


class LoopRestClient(RestClient):
    """RestClient with design (b): calls are tasks on one event-loop thread."""

    def __init__(self, *args: Any, max_connections: int = 64, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_connections = max_connections
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._aclient: httpx.AsyncClient | None = None
        self._loop_lock = threading.Lock()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._loop_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=run, name="tinker-rest-loop", daemon=True)
                thread.start()
                ready.wait()
                limits = httpx.Limits(
                    max_connections=self._max_connections,
                    max_keepalive_connections=self._max_connections,
                )
                self._aclient = httpx.AsyncClient(base_url=self.base_url, limits=limits)
                self._loop, self._loop_thread = loop, thread
            return self._loop

    def _submit(self, request: dict[str, Any], parse: Any, expect: type[T]) -> APIFuture[T]:
        loop = self._ensure_loop()
        future: APIFuture[T] = APIFuture()

        async def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                response = await self._send_async(request)
                value = self._unwrap(response, parse, expect)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(value)

        loop.call_soon_threadsafe(loop.create_task, run())
        return future

    async def _send_async(
        self, request: dict[str, Any], retry: RetryPolicy | None = None
    ) -> httpx.Response:
        """The same as RestClient._send, over the AsyncClient."""
        policy = self.retry_policy if retry is None else retry
        if request["method"].upper() not in ("GET", "HEAD"):
            headers = request.setdefault("headers", {})
            headers.setdefault("Content-Type", "application/json")
            headers.setdefault("X-Idempotency-Key", uuid.uuid4().hex)
        assert self._aclient is not None
        retries = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = await self._aclient.request(**request)
            except httpx.TimeoutException as exc:
                failure: Exception = APITimeoutError(exc.request, f"timed out: {exc!r}")
            except httpx.TransportError as exc:
                failure = APIConnectionError(exc.request, f"connection failed: {exc!r}")
            else:
                if response.status_code < 400 or not policy.should_retry(response):
                    return response
            if retries >= policy.max_retries:
                if response is not None:
                    return response
                raise failure
            await asyncio.sleep(policy.delay(retries, response))
            retries += 1

    def close(self) -> None:
        with self._loop_lock:
            loop, self._loop = self._loop, None
            aclient, self._aclient = self._aclient, None
        if loop is not None:
            if aclient is not None:
                asyncio.run_coroutine_threadsafe(aclient.aclose(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(30)
            loop.close()
        super().close()

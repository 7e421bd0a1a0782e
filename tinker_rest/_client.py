"""RestClient: every operation of the Tinker REST API, as futures and coroutines."""

from __future__ import annotations

import datetime
import email.utils
import enum
import logging
import os
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx
from tinker_rest_client.api.audit import get_audit_log as _get_audit_log
from tinker_rest_client.api.auth import whoami as _whoami
from tinker_rest_client.api.capabilities import (
    get_server_capabilities as _get_server_capabilities,
)
from tinker_rest_client.api.checkpoints import copy_weights as _copy_weights
from tinker_rest_client.api.checkpoints import (
    delete_checkpoint as _delete_checkpoint,
)
from tinker_rest_client.api.checkpoints import (
    get_checkpoint_archive_url as _get_checkpoint_archive_url,
)
from tinker_rest_client.api.checkpoints import (
    get_external_weights_urls as _get_external_weights_urls,
)
from tinker_rest_client.api.checkpoints import (
    get_weights_info_by_tinker_path as _get_weights_info,
)
from tinker_rest_client.api.checkpoints import (
    list_checkpoints as _list_checkpoints,
)
from tinker_rest_client.api.checkpoints import (
    list_user_checkpoints as _list_user_checkpoints,
)
from tinker_rest_client.api.checkpoints import (
    publish_checkpoint as _publish_checkpoint,
)
from tinker_rest_client.api.checkpoints import (
    set_checkpoint_ttl as _set_checkpoint_ttl,
)
from tinker_rest_client.api.checkpoints import (
    unpublish_checkpoint as _unpublish_checkpoint,
)
from tinker_rest_client.api.samplers import get_sampler as _get_sampler
from tinker_rest_client.api.sessions import (
    assign_session_project as _assign_session_project,
)
from tinker_rest_client.api.sessions import export_session_trace as _export_session_trace
from tinker_rest_client.api.sessions import get_session as _get_session
from tinker_rest_client.api.sessions import list_sessions as _list_sessions
from tinker_rest_client.api.sessions import search_sessions as _search_sessions
from tinker_rest_client.api.training_runs import get_training_run as _get_training_run
from tinker_rest_client.api.training_runs import list_training_runs as _list_training_runs
from tinker_rest_client.client import Client
from tinker_rest_client.models import (
    AssignSessionProjectRequest,
    CopyWeightsRequest,
    SessionTraceExportResponseStatus,
    SetCheckpointTtlRequest,
    WeightsInfoRequest,
)
from tinker_rest_client.types import UNSET

from tinker_rest._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    MissingAPIKeyError,
    TraceExportError,
    status_error,
)
from tinker_rest._futures import APIFuture, WorkerPool
from tinker_rest._models import settle
from tinker_rest._paths import TinkerPath
from tinker_rest._retry import RetryPolicy
from tinker_rest._transport import api_transport
from tinker_rest._version import __version__
from tinker_rest.types import (
    AccessScope,
    AuditEventType,
    AuditLogResponse,
    Checkpoint,
    CheckpointArchiveUrlResponse,
    CheckpointKind,
    CheckpointsListResponse,
    CopyWeightsResponse,
    ExternalWeightsUrlsResponse,
    GetSamplerResponse,
    GetServerCapabilitiesResponse,
    GetSessionResponse,
    ListSessionsResponse,
    SessionSearchRequest,
    SessionSearchResponse,
    SessionSummary,
    SessionTraceExportResponse,
    TrainingRun,
    TrainingRunsResponse,
    WeightsInfoResponse,
    WhoamiResponse,
)

if TYPE_CHECKING:
    from tinker_rest._download import DownloadEvent, DownloadProgress
    from tinker_rest._storage import Progress as StorageProgress
    from tinker_rest._storage import PruneResult, StorageReport

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_TIMEOUT", "RestClient", "ServiceClient"]

logger = logging.getLogger("tinker_rest")

DEFAULT_BASE_URL = "https://tinker.thinkingmachines.dev/services/tinker-prod"
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
DEFAULT_MAX_WORKERS = 16
DEFAULT_ARCHIVE_WAIT = 300.0
ARCHIVE_URL_VALIDITY = datetime.timedelta(minutes=15)
DEFAULT_TRACE_DEADLINE = 600.0
TRACE_POLL_INTERVAL = 5.0

Scope = Literal["owned", "accessible"]
AuditEvents = Literal["all", "checkpoints", "projects", "teams", "organizations"]
T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)
Parse = Callable[..., object]


def _setting(value: str | None, env: str) -> str | None:
    """An argument, else the environment variable; an empty string counts as unset."""
    return value or os.environ.get(env) or None


def _choice(enum_type: type[E], value: object, name: str) -> E:
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in enum_type)
        raise ValueError(f"{name} must be one of {allowed}, not {value!r}") from None


def _checkpoint_args(path: TinkerPath) -> tuple[str, CheckpointKind, str]:
    """The three path segments that name a checkpoint in a URL."""
    return path.training_run_id, CheckpointKind(path.kind), path.name


class RestClient:
    """A client for the Tinker REST API.

    Each method sends one request and returns an :class:`APIFuture` at once: call
    ``.result(timeout)`` to wait for the value from any thread, or ``await`` it from a coroutine.
    Each also has an ``_async`` twin that is a coroutine returning the value.

    Concurrency contract: calls run on a pool of ``max_workers`` threads owned by this client and
    started as calls arrive, over one pool of keep-alive connections. One client may be used from
    many threads and event loops at once. Waiting on a future from inside one of the pool's own
    threads (a done-callback) raises ``RuntimeError`` rather than deadlock; blocking on
    ``.result()`` inside a running event loop warns once. ``close()`` (or leaving a ``with`` /
    ``async with`` block) lets running calls finish and cancels queued ones; a program that ends
    without it still completes the calls it made.

    Why threads and not an event loop, measured by ``make bench`` against the same loopback
    server in one run: a background event-loop thread driving ``httpx.AsyncClient`` took about
    3x the latency of raw ``httpx`` for sequential calls and delivered under a fifth of its
    throughput with 64 calls in flight; this pool, over tinker-rest's own HTTP/1.1 transport,
    is faster than raw ``httpx`` on both (the README's performance section has the table). A
    thread waiting on a call that no worker has started yet runs it itself, which spares
    sequential ``method(...).result()`` both thread handoffs. The ``_async`` twins await the same
    pool, so both paths share one mechanism.

    ``max_workers`` (16) bounds the calls in flight. On loopback, where a call is all CPU, fewer
    threads contend less for the GIL; against the hosted service, where a call is mostly
    waiting on the network, more in flight means proportionally more calls a second.

    Every call ends: connect and read timeouts (5 s and 60 s by default), at most ``max_retries``
    retries of failures worth retrying (see :class:`RetryPolicy`), and ``result(timeout)``.

    Example:
        >>> client = RestClient()  # TINKER_BASE_URL and TINKER_API_KEY from the environment
        >>> client.get_training_run("sess-7f3a:train:0").result().base_model
        'Qwen/Qwen3-8B'
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        max_workers: int = DEFAULT_MAX_WORKERS,
        archive_wait: float = DEFAULT_ARCHIVE_WAIT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Make a client. Sends no request.

        Args:
            base_url: the service's URL; else ``TINKER_BASE_URL``, else the hosted service.
            api_key: the API key; else ``TINKER_API_KEY``.
            timeout: seconds, or an ``httpx.Timeout`` for connect, read, write and pool apart.
            max_retries: retries after a failed first attempt; 0 turns retries off.
            max_workers: the most calls in flight at once.
            archive_wait: the most seconds to wait for an archive the service is still building.
            transport: an ``httpx`` transport to send requests through, for tests and proxies.

        Raises:
            MissingAPIKeyError: no API key was given and ``TINKER_API_KEY`` is unset.
        """
        key = _setting(api_key, "TINKER_API_KEY")
        if key is None:
            raise MissingAPIKeyError(
                "no API key: pass api_key=... or set the TINKER_API_KEY environment variable"
            )
        self.base_url = (_setting(base_url, "TINKER_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.retry_policy = RetryPolicy(max_retries=max_retries)
        self.archive_wait = archive_wait
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._headers = {
            "X-API-Key": key,
            "User-Agent": f"tinker-rest/{__version__}",
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
        }
        self._limits = httpx.Limits(
            max_connections=max_workers, max_keepalive_connections=max_workers
        )
        self._timeout_extension = {"timeout": self._timeout.as_dict()}
        self._transport = self._given_transport = transport
        # The generated parsers take a client only to read its raise_on_unexpected_status.
        self._api = Client(base_url=self.base_url)
        self._http_client: httpx.Client | None = None
        self._http_lock = threading.Lock()
        self._pool = WorkerPool(max_workers)

    def __repr__(self) -> str:
        return f"RestClient(base_url={self.base_url!r})"

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Let running calls finish, cancel queued ones, and close the connections."""
        self._pool.close()
        with self._http_lock:
            http, self._http_client = self._http_client, None
            transport, self._transport = self._transport, None
        if http is not None:
            http.close()  # and its transport: the one given to this client, or its own
        if transport is not None and (http is None or transport is not self._given_transport):
            transport.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        import asyncio

        await asyncio.to_thread(self.close)

    # -- the seam: every call goes through _submit, _send and _unwrap --------------------

    def _connection(self) -> httpx.BaseTransport:
        """The transport, and its connection pool, that every call shares; made on first use."""
        transport = self._transport
        if transport is None:
            with self._http_lock:
                if self._transport is None:
                    self._transport = api_transport(self.base_url, self._limits)
                transport = self._transport
        return transport

    def _http(self) -> httpx.Client:
        """An ``httpx.Client`` for downloads: streamed bodies, from wherever the signed URL
        points, through the transport given to the client if one was (else httpx's own,
        which also honours proxy settings in the environment)."""
        with self._http_lock:
            if self._http_client is None:
                self._http_client = httpx.Client(
                    transport=self._given_transport,
                    limits=self._limits,
                    timeout=self._timeout,
                    headers={"User-Agent": self._headers["User-Agent"]},
                )
            return self._http_client

    def _submit(self, request: dict[str, Any], parse: Parse, expect: type[T]) -> APIFuture[T]:
        """Run one operation on the pool: send the request, then parse or raise."""
        return self._pool.submit(lambda: self._unwrap(self._send(request), parse, expect))

    def _send(self, request: dict[str, Any], retry: RetryPolicy | None = None) -> httpx.Response:
        """Send a request built by a generated ``_get_kwargs``, retrying as the policy says.

        The generated operations build the request and parse the response; this is the one
        place that does I/O, so it is where retries live and where every non-GET request gets
        its ``Content-Type`` and one ``X-Idempotency-Key`` for all of its attempts.

        It hands the request straight to the transport rather than through
        ``httpx.Client.request``: the client's URL merging, cookie and auth layers cost about
        40% of a call's CPU on loopback (``make bench``), and none of them is used here.
        """
        policy = self.retry_policy if retry is None else retry
        method = request["method"].upper()
        headers = {**self._headers, **request.get("headers", {})}
        if method not in ("GET", "HEAD"):
            headers.setdefault("Content-Type", "application/json")
            headers.setdefault("X-Idempotency-Key", uuid.uuid4().hex)
        url = self.base_url + request["url"]
        if params := request.get("params"):
            url += "?" + urllib.parse.urlencode(params)
        outgoing = httpx.Request(
            method,
            url,
            headers=headers,
            json=request.get("json"),
            extensions=self._timeout_extension,
        )
        transport = self._connection()
        retries = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = transport.handle_request(outgoing)
                try:
                    response.read()
                finally:
                    response.close()
            except httpx.TimeoutException as exc:
                failure: Exception = APITimeoutError(outgoing, f"timed out: {exc!r}")
                response = None
            except httpx.TransportError as exc:
                failure = APIConnectionError(outgoing, f"connection failed: {exc!r}")
                response = None
            else:
                response.request = outgoing
                if response.status_code < 400 or not policy.should_retry(response):
                    return response
            if retries >= policy.max_retries:
                if response is not None:
                    return response  # _unwrap raises the status error
                raise failure
            delay = policy.delay(retries, response)
            logger.debug("retrying %s %s in %.2fs", method, request["url"], delay)
            time.sleep(delay)
            retries += 1

    def _unwrap(self, response: httpx.Response, parse: Parse, expect: type[T]) -> T:
        """The parsed value of a successful response; the matching error for any other."""
        if not response.is_success:
            raise status_error(response)
        if expect is type(None):
            return None  # the body of a 2xx is ignored here
        try:
            parsed = parse(client=self._api, response=response)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise APIResponseValidationError(response, repr(exc)) from exc
        if not isinstance(parsed, expect):
            raise APIResponseValidationError(response, f"expected {expect.__name__}")
        settle(parsed)
        return parsed

    # -- training runs ---------------------------------------------------------------------

    def get_training_run(
        self, training_run_id: str, access_scope: Scope = "owned"
    ) -> APIFuture[TrainingRun]:
        """Get one training run.

        ``GET /api/v1/training_runs/{training_run_id}``

        Args:
            training_run_id: the run's id, such as ``"sess-7f3a:train:0"``.
            access_scope: ``"owned"`` for the caller's own runs; ``"accessible"`` adds runs in
                the caller's projects.

        Returns:
            A future of the :class:`TrainingRun`.

        Raises:
            NotFoundError: (from the future) no such run, or not visible to the caller.

        Example:
            >>> run = client.get_training_run("sess-7f3a:train:0").result()
            >>> print(run.base_model, run.lora_rank)
        """
        request = _get_training_run._get_kwargs(
            training_run_id, access_scope=_choice(AccessScope, access_scope, "access_scope")
        )
        return self._submit(request, _get_training_run._parse_response, TrainingRun)

    async def get_training_run_async(
        self, training_run_id: str, access_scope: Scope = "owned"
    ) -> TrainingRun:
        """Coroutine twin of :meth:`get_training_run`."""
        return await self.get_training_run(training_run_id, access_scope)

    def get_training_run_by_tinker_path(
        self, tinker_path: str, access_scope: Scope = "owned"
    ) -> APIFuture[TrainingRun]:
        """Get the training run a checkpoint belongs to.

        ``GET /api/v1/training_runs/{training_run_id}``, the run id taken from the path.

        Raises:
            InvalidTinkerPathError: at once, when ``tinker_path`` is malformed.
        """
        path = TinkerPath.parse(tinker_path)
        return self.get_training_run(path.training_run_id, access_scope)

    async def get_training_run_by_tinker_path_async(
        self, tinker_path: str, access_scope: Scope = "owned"
    ) -> TrainingRun:
        """Coroutine twin of :meth:`get_training_run_by_tinker_path`."""
        return await self.get_training_run_by_tinker_path(tinker_path, access_scope)

    def list_training_runs(
        self,
        limit: int = 20,
        offset: int = 0,
        access_scope: Scope = "owned",
        project_id: str | None = None,
    ) -> APIFuture[TrainingRunsResponse]:
        """List one page of training runs.

        ``GET /api/v1/training_runs``

        Args:
            limit: the most runs in the page.
            offset: how many runs to skip.
            access_scope: ``"owned"`` or ``"accessible"``.
            project_id: only runs in this project; every project when None (not sent).

        Returns:
            A future of the page; ``cursor.total_count`` counts every run. See
            :meth:`iter_training_runs` to walk all of them.

        Example:
            >>> page = client.list_training_runs(limit=50).result()
            >>> print(len(page.training_runs), "of", page.cursor.total_count)
        """
        request = _list_training_runs._get_kwargs(
            limit=limit,
            offset=offset,
            access_scope=_choice(AccessScope, access_scope, "access_scope"),
            **({} if project_id is None else {"project_id": project_id}),
        )
        return self._submit(request, _list_training_runs._parse_response, TrainingRunsResponse)

    async def list_training_runs_async(
        self,
        limit: int = 20,
        offset: int = 0,
        access_scope: Scope = "owned",
        project_id: str | None = None,
    ) -> TrainingRunsResponse:
        """Coroutine twin of :meth:`list_training_runs`."""
        return await self.list_training_runs(limit, offset, access_scope, project_id)

    # -- checkpoints -----------------------------------------------------------------------

    def get_weights_info_by_tinker_path(self, tinker_path: str) -> APIFuture[WeightsInfoResponse]:
        """Describe the model behind a checkpoint; works for any published checkpoint too.

        ``POST /api/v1/weights_info``

        Raises:
            InvalidTinkerPathError: at once, when ``tinker_path`` is malformed.
        """
        path = TinkerPath.parse(tinker_path)
        request = _get_weights_info._get_kwargs(body=WeightsInfoRequest(tinker_path=str(path)))
        return self._submit(request, _get_weights_info._parse_response, WeightsInfoResponse)

    async def get_weights_info_by_tinker_path_async(self, tinker_path: str) -> WeightsInfoResponse:
        """Coroutine twin of :meth:`get_weights_info_by_tinker_path`."""
        return await self.get_weights_info_by_tinker_path(tinker_path)

    def list_checkpoints(self, training_run_id: str) -> APIFuture[CheckpointsListResponse]:
        """List every checkpoint of one training run, training and sampler alike.

        ``GET /api/v1/training_runs/{training_run_id}/checkpoints``

        Example:
            >>> for checkpoint in client.list_checkpoints("sess-7f3a:train:0").result().checkpoints:
            ...     print(checkpoint.checkpoint_type, checkpoint.tinker_path)
        """
        request = _list_checkpoints._get_kwargs(training_run_id)
        return self._submit(request, _list_checkpoints._parse_response, CheckpointsListResponse)

    async def list_checkpoints_async(self, training_run_id: str) -> CheckpointsListResponse:
        """Coroutine twin of :meth:`list_checkpoints`."""
        return await self.list_checkpoints(training_run_id)

    def list_user_checkpoints(
        self, limit: int = 100, offset: int = 0
    ) -> APIFuture[CheckpointsListResponse]:
        """List one page of the checkpoints of all of the caller's runs, newest first.

        ``GET /api/v1/checkpoints``

        Returns:
            A future of the page, with a cursor. See :meth:`iter_user_checkpoints`.
        """
        request = _list_user_checkpoints._get_kwargs(limit=limit, offset=offset)
        return self._submit(
            request, _list_user_checkpoints._parse_response, CheckpointsListResponse
        )

    async def list_user_checkpoints_async(
        self, limit: int = 100, offset: int = 0
    ) -> CheckpointsListResponse:
        """Coroutine twin of :meth:`list_user_checkpoints`."""
        return await self.list_user_checkpoints(limit, offset)

    def delete_checkpoint(self, training_run_id: str, checkpoint_id: str) -> APIFuture[None]:
        """Delete a checkpoint and its files. Only the run's owner may.

        ``DELETE /api/v1/training_runs/{training_run_id}/checkpoints/{kind}/{name}``

        Args:
            training_run_id: the run's id.
            checkpoint_id: ``"<kind>/<name>"``, such as ``"weights/0001"``.

        Raises:
            InvalidTinkerPathError: at once, when the ids cannot name a checkpoint.
        """
        return self._delete(TinkerPath.from_checkpoint_id(training_run_id, checkpoint_id))

    async def delete_checkpoint_async(self, training_run_id: str, checkpoint_id: str) -> None:
        """Coroutine twin of :meth:`delete_checkpoint`."""
        return await self.delete_checkpoint(training_run_id, checkpoint_id)

    def delete_checkpoint_from_tinker_path(self, tinker_path: str) -> APIFuture[None]:
        """Delete the checkpoint a tinker path names. Only the run's owner may.

        ``DELETE /api/v1/training_runs/{training_run_id}/checkpoints/{kind}/{name}``
        """
        return self._delete(TinkerPath.parse(tinker_path))

    async def delete_checkpoint_from_tinker_path_async(self, tinker_path: str) -> None:
        """Coroutine twin of :meth:`delete_checkpoint_from_tinker_path`."""
        return await self.delete_checkpoint_from_tinker_path(tinker_path)

    def _delete(self, path: TinkerPath) -> APIFuture[None]:
        request = _delete_checkpoint._get_kwargs(*_checkpoint_args(path))
        return self._submit(request, _delete_checkpoint._parse_response, type(None))

    def publish_checkpoint_from_tinker_path(self, tinker_path: str) -> APIFuture[None]:
        """Make a checkpoint public. Only the run's owner may.

        ``POST /api/v1/training_runs/{training_run_id}/checkpoints/{kind}/{name}/publish``

        Raises:
            InvalidTinkerPathError: at once, when ``tinker_path`` is malformed.
            ConflictError: (from the future) the checkpoint is already public.

        Example:
            >>> client.publish_checkpoint_from_tinker_path("tinker://run-id/weights/0001").result()
        """
        request = _publish_checkpoint._get_kwargs(*_checkpoint_args(TinkerPath.parse(tinker_path)))
        return self._submit(request, _publish_checkpoint._parse_response, type(None))

    async def publish_checkpoint_from_tinker_path_async(self, tinker_path: str) -> None:
        """Coroutine twin of :meth:`publish_checkpoint_from_tinker_path`."""
        return await self.publish_checkpoint_from_tinker_path(tinker_path)

    def unpublish_checkpoint_from_tinker_path(self, tinker_path: str) -> APIFuture[None]:
        """Make a public checkpoint private again. Only the run's owner may.

        ``DELETE /api/v1/training_runs/{training_run_id}/checkpoints/{kind}/{name}/publish``

        Raises:
            InvalidTinkerPathError: at once, when ``tinker_path`` is malformed.
            ConflictError: (from the future) the checkpoint is already private.
        """
        path = TinkerPath.parse(tinker_path)
        request = _unpublish_checkpoint._get_kwargs(*_checkpoint_args(path))
        return self._submit(request, _unpublish_checkpoint._parse_response, type(None))

    async def unpublish_checkpoint_from_tinker_path_async(self, tinker_path: str) -> None:
        """Coroutine twin of :meth:`unpublish_checkpoint_from_tinker_path`."""
        return await self.unpublish_checkpoint_from_tinker_path(tinker_path)

    def set_checkpoint_ttl_from_tinker_path(
        self, tinker_path: str, ttl_seconds: int | None
    ) -> APIFuture[None]:
        """Make a checkpoint expire ``ttl_seconds`` from now, or never with ``None``.

        ``PUT /api/v1/training_runs/{training_run_id}/checkpoints/{kind}/{name}/ttl``

        The service accepts from one hour (3600) to ten years (315360000). Only the run's owner
        may set it.

        Raises:
            InvalidTinkerPathError: at once, when ``tinker_path`` is malformed.
            TypeError: at once, when ``ttl_seconds`` is neither an int nor None.
            BadRequestError: (from the future) the TTL is out of range.

        Example:
            >>> client.set_checkpoint_ttl_from_tinker_path("tinker://run-id/weights/0001", 86400)
        """
        path = TinkerPath.parse(tinker_path)
        if ttl_seconds is not None and (
            isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int)
        ):
            raise TypeError(f"ttl_seconds must be an int or None, not {ttl_seconds!r}")
        request = _set_checkpoint_ttl._get_kwargs(
            *_checkpoint_args(path), body=SetCheckpointTtlRequest(ttl_seconds=ttl_seconds)
        )
        return self._submit(request, _set_checkpoint_ttl._parse_response, type(None))

    async def set_checkpoint_ttl_from_tinker_path_async(
        self, tinker_path: str, ttl_seconds: int | None
    ) -> None:
        """Coroutine twin of :meth:`set_checkpoint_ttl_from_tinker_path`."""
        return await self.set_checkpoint_ttl_from_tinker_path(tinker_path, ttl_seconds)

    def get_checkpoint_archive_url(
        self, training_run_id: str, checkpoint_id: str
    ) -> APIFuture[CheckpointArchiveUrlResponse]:
        """Get a signed URL from which the checkpoint's files download as one archive.

        ``GET /api/v1/training_runs/{training_run_id}/checkpoints/{kind}/{name}/archive``

        The service answers with the URL in a JSON body or as a redirect (not followed); both
        come back as the same response, with ``url``, ``expires`` and ``expires_at``. While the
        service is still building the archive, this waits and asks again, for at most
        ``archive_wait`` seconds.

        Example:
            >>> archive = client.get_checkpoint_archive_url("run-id", "weights/0001").result()
            >>> print(archive.url, archive.expires_at)
        """
        path = TinkerPath.from_checkpoint_id(training_run_id, checkpoint_id)
        return self._archive_url(path)

    async def get_checkpoint_archive_url_async(
        self, training_run_id: str, checkpoint_id: str
    ) -> CheckpointArchiveUrlResponse:
        """Coroutine twin of :meth:`get_checkpoint_archive_url`."""
        return await self.get_checkpoint_archive_url(training_run_id, checkpoint_id)

    def get_checkpoint_archive_url_from_tinker_path(
        self, tinker_path: str
    ) -> APIFuture[CheckpointArchiveUrlResponse]:
        """Like :meth:`get_checkpoint_archive_url`, for the checkpoint a tinker path names.

        ``GET /api/v1/training_runs/{training_run_id}/checkpoints/{kind}/{name}/archive``
        """
        return self._archive_url(TinkerPath.parse(tinker_path))

    async def get_checkpoint_archive_url_from_tinker_path_async(
        self, tinker_path: str
    ) -> CheckpointArchiveUrlResponse:
        """Coroutine twin of :meth:`get_checkpoint_archive_url_from_tinker_path`."""
        return await self.get_checkpoint_archive_url_from_tinker_path(tinker_path)

    def _archive_url(self, path: TinkerPath) -> APIFuture[CheckpointArchiveUrlResponse]:
        request = _get_checkpoint_archive_url._get_kwargs(*_checkpoint_args(path))
        return self._pool.submit(lambda: self._wait_for_archive(request, str(path)))

    def _wait_for_archive(self, request: dict[str, Any], name: str) -> CheckpointArchiveUrlResponse:
        """Ask for the archive URL until it is ready or ``archive_wait`` has passed."""
        # A 503 here means "still building": this loop waits for it, so the retry layer must not.
        policy = self.retry_policy.without(503)
        deadline = time.monotonic() + self.archive_wait
        polls = 0
        while True:
            response = self._send(request, policy)
            if response.status_code == 302:
                return _archive_from_redirect(response)
            remaining = deadline - time.monotonic()
            if response.status_code != 503 or remaining <= 0:
                parse = _get_checkpoint_archive_url._parse_response
                return self._unwrap(response, parse, CheckpointArchiveUrlResponse)
            wait = min(self.retry_policy.delay(polls, response), remaining)
            logger.info("the archive of %s is being built; asking again in %.1fs", name, wait)
            time.sleep(wait)
            polls += 1

    # -- sessions and samplers -------------------------------------------------------------

    def get_session(
        self, session_id: str, access_scope: Scope = "owned"
    ) -> APIFuture[GetSessionResponse]:
        """Get a session with the ids of its training runs and samplers.

        ``GET /api/v1/sessions/{session_id}``

        Example:
            >>> session = client.get_session("sess-7f3a").result()
            >>> print(session.training_run_ids, session.sampler_ids)
        """
        request = _get_session._get_kwargs(
            session_id, access_scope=_choice(AccessScope, access_scope, "access_scope")
        )
        return self._submit(request, _get_session._parse_response, GetSessionResponse)

    async def get_session_async(
        self, session_id: str, access_scope: Scope = "owned"
    ) -> GetSessionResponse:
        """Coroutine twin of :meth:`get_session`."""
        return await self.get_session(session_id, access_scope)

    def list_sessions(
        self, limit: int = 20, offset: int = 0, access_scope: Scope = "owned"
    ) -> APIFuture[ListSessionsResponse]:
        """List one page of session ids, newest first.

        ``GET /api/v1/sessions``

        See :meth:`iter_sessions` to walk all of them.
        """
        request = _list_sessions._get_kwargs(
            limit=limit,
            offset=offset,
            access_scope=_choice(AccessScope, access_scope, "access_scope"),
        )
        return self._submit(request, _list_sessions._parse_response, ListSessionsResponse)

    async def list_sessions_async(
        self, limit: int = 20, offset: int = 0, access_scope: Scope = "owned"
    ) -> ListSessionsResponse:
        """Coroutine twin of :meth:`list_sessions`."""
        return await self.list_sessions(limit, offset, access_scope)

    def assign_session_project(self, session_id: str, project_id: str) -> APIFuture[None]:
        """Move a session, with its runs and samplers, into a project.

        ``PUT /api/v1/sessions/{session_id}/project``

        A session can move between projects but never out of one.

        Raises:
            PermissionDeniedError: (from the future) the caller may not use that project.
        """
        request = _assign_session_project._get_kwargs(
            session_id, body=AssignSessionProjectRequest(project_id=project_id)
        )
        return self._submit(request, _assign_session_project._parse_response, type(None))

    async def assign_session_project_async(self, session_id: str, project_id: str) -> None:
        """Coroutine twin of :meth:`assign_session_project`."""
        return await self.assign_session_project(session_id, project_id)

    def get_sampler(self, sampler_id: str) -> APIFuture[GetSamplerResponse]:
        """Get a sampler: its base model and the checkpoint it serves.

        ``GET /api/v1/samplers/{sampler_id}``

        Example:
            >>> sampler = await client.get_sampler("sess-7f3a:sample:0")
            >>> print(sampler.base_model, sampler.model_path)
        """
        request = _get_sampler._get_kwargs(sampler_id)
        return self._submit(request, _get_sampler._parse_response, GetSamplerResponse)

    async def get_sampler_async(self, sampler_id: str) -> GetSamplerResponse:
        """Coroutine twin of :meth:`get_sampler`."""
        return await self.get_sampler(sampler_id)

    # -- audit log -------------------------------------------------------------------------

    def get_audit_log(
        self,
        event_type: AuditEvents = "all",
        day: datetime.date | None = None,
    ) -> APIFuture[AuditLogResponse]:
        """Read one UTC day of the organization's audit log, oldest first. Needs the admin role.

        ``GET /api/v1/audit``

        Args:
            event_type: ``"all"``, or only ``"checkpoints"``, ``"projects"``, ``"teams"`` or
                ``"organizations"`` events.
            day: the UTC day, midnight to midnight; today when None.

        Raises:
            PermissionDeniedError: (from the future) the caller is not an admin.

        Example:
            >>> log = client.get_audit_log(day=date(2026, 1, 15)).result()
            >>> for entry in log.entries: print(entry.timestamp, entry.event)
        """
        if isinstance(day, datetime.datetime):
            day = day.astimezone(datetime.UTC).date() if day.tzinfo else day.date()
        elif day is not None and not isinstance(day, datetime.date):
            raise TypeError(f"day must be a datetime.date or None, not {day!r}")
        request = _get_audit_log._get_kwargs(
            event_type=_choice(AuditEventType, event_type, "event_type"),
            **({} if day is None else {"day": day}),
        )
        return self._submit(request, _get_audit_log._parse_response, AuditLogResponse)

    async def get_audit_log_async(
        self,
        event_type: AuditEvents = "all",
        day: datetime.date | None = None,
    ) -> AuditLogResponse:
        """Coroutine twin of :meth:`get_audit_log`."""
        return await self.get_audit_log(event_type, day)

    # -- auto-pagination -------------------------------------------------------------------

    def iter_training_runs(
        self, *, page_size: int = 100, access_scope: Scope = "owned", limit: int | None = None
    ) -> Iterator[TrainingRun]:
        """Every training run, fetched a page at a time as the loop needs them.

        ``GET /api/v1/training_runs``, repeatedly.

        Args:
            page_size: runs per request.
            access_scope: ``"owned"`` or ``"accessible"``.
            limit: stop after this many runs; None for all.
        """

        def page(size: int, offset: int) -> tuple[list[TrainingRun], int | None]:
            result = self.list_training_runs(size, offset, access_scope).result()
            return result.training_runs, result.cursor.total_count

        return _paginate(page, page_size, limit)

    def iter_user_checkpoints(
        self, *, page_size: int = 100, limit: int | None = None
    ) -> Iterator[Checkpoint]:
        """Every checkpoint of the caller's runs, newest first, a page at a time.

        ``GET /api/v1/checkpoints``, repeatedly.
        """

        def page(size: int, offset: int) -> tuple[list[Checkpoint], int | None]:
            result = self.list_user_checkpoints(size, offset).result()
            return result.checkpoints, result.cursor.total_count if result.cursor else None

        return _paginate(page, page_size, limit)

    def iter_sessions(
        self, *, page_size: int = 100, access_scope: Scope = "owned", limit: int | None = None
    ) -> Iterator[str]:
        """Every session id, newest first, a page at a time.

        ``GET /api/v1/sessions``, repeatedly; the list has no total, so it ends at a short page.
        """

        def page(size: int, offset: int) -> tuple[list[str], int | None]:
            return self.list_sessions(size, offset, access_scope).result().sessions, None

        return _paginate(page, page_size, limit)

    # -- downloads -------------------------------------------------------------------------

    def download_checkpoint(
        self,
        tinker_path: str,
        dest: str | os.PathLike[str] = ".",
        *,
        extract: bool = True,
        force: bool = False,
        progress: DownloadProgress | None = None,
        on_event: Callable[[DownloadEvent], None] | None = None,
        max_unpacked_bytes: int | None = None,
    ) -> Path:
        """Download a checkpoint's files into the directory ``dest``; return where they are.

        ``GET /api/v1/training_runs/{training_run_id}/checkpoints/{kind}/{name}/archive``, then
        the signed URL it gives, streamed and resumed after broken connections and stalls,
        and in a later call after Ctrl-C or any failure, when the archive is still the same
        (see :mod:`tinker_rest._download`). An ``external_weights`` checkpoint comes file by
        file from ``get_external_weights_urls`` instead (:mod:`tinker_rest._external_download`;
        ``extract`` does not apply). Blocks until done.

        Args:
            tinker_path: the checkpoint, ``tinker://<run id>/<kind>/<name>``.
            dest: the directory to download into; made if missing.
            extract: extract the archive into ``dest/<run id>_<kind>_<name>`` (True), or keep
                it as the tar file ``dest/<run id>_<kind>_<name>.tar`` (False).
            force: replace that directory or file when it already exists.
            progress: called as ``progress(done, total_or_None)`` with the bytes of the current
                phase (downloading, then extracting).
            on_event: called as each phase starts (``waiting``, ``downloading``,
                ``extracting``) and before each retry (``retrying``), with a
                :class:`~tinker_rest._download.DownloadEvent`.
            max_unpacked_bytes: the most bytes the extracted files may hold; by default four
                times the archive's size, at least 16 MiB.

        Returns:
            The path of the extracted directory, or of the tar file.

        Raises:
            InvalidTinkerPathError: at once, when ``tinker_path`` is malformed.
            TargetExistsError: the target exists and ``force`` is false.
            UnsafeArchiveError: the archive holds a link, a device, a sparse file, a path
                leaving the target or colliding names, or unpacks too big; nothing is kept.
            ArchiveIncompleteError: the download kept failing; ``<target>.part`` stays, and
                the next call resumes it.

        Example:
            >>> where = client.download_checkpoint("tinker://run-id/weights/0001", "models")
            >>> sorted(p.name for p in where.iterdir())
        """
        # Loaded on first use: tarfile and friends cost `import tinker_rest` ~10 ms otherwise.
        from tinker_rest._download import download_archive, target_name

        path = TinkerPath.parse(tinker_path)
        name = target_name(path)
        if path.kind == "external_weights":
            from tinker_rest._external_download import download_external_weights

            return download_external_weights(
                self._http(),
                lambda: self.get_external_weights_urls(str(path)).result(),
                Path(dest) / name,
                force=force,
                progress=progress,
            )
        target = Path(dest) / (name if extract else f"{name}.tar")

        def url() -> str:
            return self._archive_url(path).result().url

        return download_archive(
            self._http(),
            url,
            target,
            extract=extract,
            force=force,
            progress=progress,
            on_event=on_event,
            max_unpacked_bytes=max_unpacked_bytes,
        )

    async def download_checkpoint_async(
        self,
        tinker_path: str,
        dest: str | os.PathLike[str] = ".",
        *,
        extract: bool = True,
        force: bool = False,
        progress: DownloadProgress | None = None,
        on_event: Callable[[DownloadEvent], None] | None = None,
        max_unpacked_bytes: int | None = None,
    ) -> Path:
        """Coroutine twin of :meth:`download_checkpoint`; the download runs in a thread."""
        import asyncio

        return await asyncio.to_thread(
            self.download_checkpoint,
            tinker_path,
            dest,
            extract=extract,
            force=force,
            progress=progress,
            on_event=on_event,
            max_unpacked_bytes=max_unpacked_bytes,
        )

    # -- storage -----------------------------------------------------------------------------

    def storage_report(
        self,
        *,
        training_run_ids: Sequence[str] | None = None,
        progress: StorageProgress | None = None,
        by: Literal["run", "project"] = "run",
    ) -> StorageReport:
        """Bytes, checkpoint counts and monthly cost per training run or project, biggest first.

        ``GET /api/v1/checkpoints``, every page at once (or each named run's listing), beside
        ``GET /api/v1/billing/usage/checkpoints/current`` for the storage rate and, by project,
        ``POST /api/v1/sessions/search`` and ``GET /api/v1/sessions/{id}`` for each session in
        a project. Blocks until done.

        The costs are filled when the caller may read the rate (admins); otherwise
        ``report.rate_unavailable`` says why they are not.

        Args:
            training_run_ids: only these runs; every run of the caller's when None.
            progress: called as ``progress(checkpoints_listed, total_or_None)``, or
                ``progress(runs_listed, runs)`` with ``training_run_ids``.
            by: ``"run"``: a row per training run; ``"project"``: a row per project, the runs
                in none under ``"(no project)"``.

        Raises:
            ValueError: at once, for a run id that cannot name a run (empty, ``.``, ``..``,
                holding ``/``), or another ``by``.

        Example:
            >>> report = client.storage_report(by="project")
            >>> for row in report.rows[:5]: print(row.key, row.size_bytes, report.cost(row))
        """
        from tinker_rest import _storage

        return _storage.storage_report(self, training_run_ids, progress, by=by)

    def prune_checkpoints(
        self,
        *,
        keep_last: int | None = None,
        older_than: datetime.timedelta | str | None = None,
        checkpoint_type: Literal["training", "sampler", "external"] | None = None,
        training_run_ids: Sequence[str] | None = None,
        keep_public: bool = True,
        set_ttl_seconds: int | None = None,
        dry_run: bool = False,
        progress: StorageProgress | None = None,
    ) -> PruneResult:
        """Apply a retention policy: delete (or expire) the checkpoints it does not keep.

        ``GET /api/v1/checkpoints`` (or each named run's listing), then
        ``DELETE .../checkpoints/{kind}/{name}`` (or ``PUT .../ttl``) for each checkpoint to
        go, all at once within the client's in-flight limit. Blocks until done. A checkpoint
        already gone counts as done, so running the same policy again after an interruption
        finishes the job.

        Args:
            keep_last: keep the newest N checkpoints (by time) of each run.
            older_than: only remove checkpoints older than this (a timedelta or ``"30d"``).
            checkpoint_type: only look at checkpoints of this type.
            training_run_ids: only these runs; every run of the caller's when None.
            keep_public: never remove published checkpoints (the default).
            set_ttl_seconds: instead of deleting, let the service expire them this many seconds
                from now (3600 to 315360000).
            dry_run: only plan; change nothing.
            progress: called as ``progress(done, total)`` while it lists and while it prunes.

        Returns:
            A :class:`PruneResult`: the plan (``plan.delete``, ``plan.keep``,
            ``plan.bytes_freed``), what was done, what failed and, if it stopped early because
            the key was refused or the service could not be reached, why (``stopped``) and what
            was never sent (``not_attempted``).

        Raises:
            ValueError: at once, for a policy with neither ``keep_last`` nor ``older_than``,
                a bad run id, or an argument out of range.
            NotOwnedError: a run of ``training_run_ids`` is not the caller's own.
            KeyboardInterrupt: after cancelling what was not yet sent, on Ctrl-C.
            TinkerRestError: listing the checkpoints failed (nothing was changed).

        Example:
            >>> result = client.prune_checkpoints(keep_last=3, dry_run=True)
            >>> print(len(result.plan.delete), "to delete,", result.plan.bytes_freed, "bytes")
        """
        from tinker_rest import _storage

        runs = _storage.check_run_ids(training_run_ids)
        policy = _storage.RetentionPolicy(
            keep_last=keep_last,
            older_than=_storage.parse_duration(older_than)
            if isinstance(older_than, str)
            else older_than,
            checkpoint_type=checkpoint_type,
            training_run_ids=None if runs is None else frozenset(runs),
            keep_public=keep_public,
        )
        if set_ttl_seconds is not None:
            _storage.check_ttl(set_ttl_seconds)
        checkpoints = _storage.list_checkpoints(self, runs, progress, owned=True)
        plan = _storage.plan_prune(checkpoints, policy)
        if dry_run:
            return _storage.PruneResult(
                plan=plan, done=(), failed=(), dry_run=True, set_ttl_seconds=set_ttl_seconds
            )
        result = _storage.carry_out(self, plan, set_ttl_seconds=set_ttl_seconds, progress=progress)
        if result.stopped == "interrupted":
            raise KeyboardInterrupt
        return result

    # -- beyond the seed (the rest of the official SDK 0.38 surface) ------------------------

    def whoami(self) -> APIFuture[WhoamiResponse]:
        """Tell who the API key belongs to: user URN, organization URN and email.

        ``GET /api/v1/auth/apikey/me``

        Example:
            >>> me = client.whoami().result()
            >>> print(me.email, me.org_urn)
        """
        return self._submit(_whoami._get_kwargs(), _whoami._parse_response, WhoamiResponse)

    async def whoami_async(self) -> WhoamiResponse:
        """Coroutine twin of :meth:`whoami`."""
        return await self.whoami()

    def get_server_capabilities(self) -> APIFuture[GetServerCapabilitiesResponse]:
        """List the models the service supports, with what each can do.

        ``GET /api/v1/get_server_capabilities``

        Example:
            >>> caps = client.get_server_capabilities().result()
            >>> print([m.model_name for m in caps.supported_models])
        """
        request = _get_server_capabilities._get_kwargs()
        parse = _get_server_capabilities._parse_response
        return self._submit(request, parse, GetServerCapabilitiesResponse)

    async def get_server_capabilities_async(self) -> GetServerCapabilitiesResponse:
        """Coroutine twin of :meth:`get_server_capabilities` (the official SDK has none)."""
        return await self.get_server_capabilities()

    def copy_weights(
        self,
        path: str,
        destination_project_id: str | None = None,
        *,
        ttl_seconds: int | None = None,
        weights_access_token: str | None = None,
    ) -> APIFuture[str]:
        """Copy a checkpoint into a project, as a new training run; the value is its tinker path.

        ``POST /api/v1/copy_weights``

        The copy shares the source's stored bytes, cannot be trained on, and has its own expiry
        (``ttl_seconds``, or none: the source's is not inherited).

        Args:
            path: the checkpoint to copy, ``tinker://<run id>/<kind>/<name>``.
            destination_project_id: the project to copy into; else ``TINKER_PROJECT_ID``.
            ttl_seconds: seconds until the copy expires, 3600 to 315360000; None for never.
            weights_access_token: a token for weights held under another account. It travels
                only in the ``X-Tinker-Weights-Access-Token`` header and is never logged.

        Raises:
            InvalidTinkerPathError: at once, when ``path`` is malformed.
            ValueError: at once, with no project id given or in the environment, or a
                ``ttl_seconds`` out of range.
            PermissionDeniedError: (from the future) the caller may not write to the project.
            NotFoundError: (from the future) no such checkpoint, or not readable by the caller.

        Example:
            >>> copy = client.copy_weights("tinker://run-id/weights/0001", "proj-1").result()
        """
        source = TinkerPath.parse(path)
        project = _setting(destination_project_id, "TINKER_PROJECT_ID")
        if project is None:
            raise ValueError("Provide destination_project_id or set TINKER_PROJECT_ID")
        if ttl_seconds is not None and not (
            isinstance(ttl_seconds, int) and TTL_RANGE[0] <= ttl_seconds <= TTL_RANGE[1]
        ):
            raise ValueError(
                f"ttl_seconds must be an int from {TTL_RANGE[0]} to {TTL_RANGE[1]} or None, "
                f"not {ttl_seconds!r}"
            )
        body = CopyWeightsRequest(
            source_path=str(source),
            destination_project_id=project,
            ttl_seconds=UNSET if ttl_seconds is None else ttl_seconds,
        )
        token = UNSET if weights_access_token is None else weights_access_token
        request = _copy_weights._get_kwargs(body=body, x_tinker_weights_access_token=token)
        parse = _copy_weights._parse_response
        return self._pool.submit(
            lambda: self._unwrap(self._send(request), parse, CopyWeightsResponse).tinker_path
        )

    async def copy_weights_async(
        self,
        path: str,
        destination_project_id: str | None = None,
        *,
        ttl_seconds: int | None = None,
        weights_access_token: str | None = None,
    ) -> str:
        """Coroutine twin of :meth:`copy_weights`."""
        return await self.copy_weights(
            path,
            destination_project_id,
            ttl_seconds=ttl_seconds,
            weights_access_token=weights_access_token,
        )

    def get_external_weights_urls(self, tinker_path: str) -> APIFuture[ExternalWeightsUrlsResponse]:
        """Get a signed URL for each file of an ``external_weights`` checkpoint.

        ``GET /api/v1/training_runs/{run}/checkpoints/external_weights/{name}/``
        ``external_weights_urls``

        The URLs need no API key and stop working at ``expires``; ``urls`` is keyed by each
        file's ``/``-separated path relative to the checkpoint.

        Raises:
            InvalidTinkerPathError: at once, when ``tinker_path`` is malformed.
            ValueError: at once, when the checkpoint is not of kind ``external_weights``.

        Example:
            >>> urls = client.get_external_weights_urls("tinker://run/external_weights/x").result()
            >>> print(sorted(urls.urls), urls.expires)
        """
        path = TinkerPath.parse(tinker_path)
        if path.kind != "external_weights":
            raise ValueError(
                f"get_external_weights_urls needs an external_weights checkpoint, not {path.kind} "
                f"({tinker_path}); use get_checkpoint_archive_url_from_tinker_path for those"
            )
        request = _get_external_weights_urls._get_kwargs(path.training_run_id, path.name)
        parse = _get_external_weights_urls._parse_response
        return self._submit(request, parse, ExternalWeightsUrlsResponse)

    async def get_external_weights_urls_async(
        self, tinker_path: str
    ) -> ExternalWeightsUrlsResponse:
        """Coroutine twin of :meth:`get_external_weights_urls`."""
        return await self.get_external_weights_urls(tinker_path)

    def export_session_trace(
        self,
        session_id: str,
        *,
        deadline: float = DEFAULT_TRACE_DEADLINE,
        poll_interval: float = TRACE_POLL_INTERVAL,
    ) -> APIFuture[str]:
        """Export a session's trace (Chrome JSON, which Perfetto opens); the value is its URL.

        ``GET /api/v1/sessions/{session_id}/trace_export``, asked again every ``poll_interval``
        seconds while the service answers ``pending``. The URL is signed, needs no API key and
        lasts about an hour; asking again reuses a trace that is still up to date.

        Args:
            session_id: the session.
            deadline: the most seconds to wait for the trace (10 minutes).
            poll_interval: seconds between asks (5, as the official SDK).

        Raises:
            ValueError: at once, for a deadline or interval that is not positive.
            TraceExportError: (from the future) the export failed; the message is the service's.
            TimeoutError: (from the future) the trace was not ready within ``deadline``.
            NotFoundError: (from the future) no such session, or not visible to the caller.

        Example:
            >>> url = client.export_session_trace("sess-7f3a").result()
        """
        if not deadline > 0 or not poll_interval > 0:
            raise ValueError("deadline and poll_interval must be positive")
        request = _export_session_trace._get_kwargs(session_id)
        return self._pool.submit(
            lambda: self._poll_trace(request, session_id, deadline, poll_interval)
        )

    async def export_session_trace_async(
        self,
        session_id: str,
        *,
        deadline: float = DEFAULT_TRACE_DEADLINE,
        poll_interval: float = TRACE_POLL_INTERVAL,
    ) -> str:
        """Coroutine twin of :meth:`export_session_trace`."""
        return await self.export_session_trace(
            session_id, deadline=deadline, poll_interval=poll_interval
        )

    def _poll_trace(
        self, request: dict[str, Any], session_id: str, deadline: float, interval: float
    ) -> str:
        """Ask for a trace export until it is ready or failed, for at most ``deadline`` s."""
        parse = _export_session_trace._parse_response
        give_up = time.monotonic() + deadline
        while True:
            state = self._unwrap(self._send(request), parse, SessionTraceExportResponse)
            if state.status == SessionTraceExportResponseStatus.READY and state.url:
                return state.url
            if state.status == SessionTraceExportResponseStatus.FAILED:
                raise TraceExportError(f"trace export of {session_id} failed: {state.error}")
            remaining = give_up - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the trace of {session_id} was not ready in {deadline}s")
            logger.info("the trace of %s is being built; asking again", session_id)
            time.sleep(min(interval, remaining))

    def search_sessions(
        self, request: SessionSearchRequest | Mapping[str, Any]
    ) -> APIFuture[SessionSearchResponse]:
        """Search sessions: one page, newest first, every given filter holding (experimental).

        ``POST /api/v1/sessions/search``

        Args:
            request: a :class:`SessionSearchRequest`, or a dict of its fields:
                ``session_id``, ``display_name``, ``project_ids``, ``user_metadata``, ``owner``
                (``{"type": "own"|"accessible"}`` or ``{"type": "user", "owner_urns": [...]}``),
                ``statuses`` (``[{"type": "client_finished", "reasons": ["success"]}]``),
                ``limit`` (1 to 200) and ``cursor`` (the last page's ``next_cursor``).

        Raises:
            ValueError: at once, for a request the service would refuse.

        Example:
            >>> page = client.search_sessions({"display_name": "sweep"}).result()
            >>> print([s.session_id for s in page.sessions], page.next_cursor)
        """
        body = _search_request(request)
        req = _search_sessions._get_kwargs(body=body)
        return self._submit(req, _search_sessions._parse_response, SessionSearchResponse)

    def iter_search_sessions(
        self, request: SessionSearchRequest | Mapping[str, Any] | None = None
    ) -> Iterator[SessionSummary]:
        """Every session a search matches, newest first, following ``next_cursor``.

        ``POST /api/v1/sessions/search``, repeatedly.
        """
        body = _search_request(request or {})

        def pages() -> Iterator[SessionSummary]:
            while True:
                page = self.search_sessions(body).result()
                yield from page.sessions
                if page.next_cursor is None:
                    return
                body.cursor = page.next_cursor

        return pages()


# The range of a checkpoint's time to live, as the service checks it.
TTL_RANGE = (3600, 315_360_000)
SEARCH_LIMIT = (1, 200)


def _search_request(request: SessionSearchRequest | Mapping[str, Any]) -> SessionSearchRequest:
    """A session search checked as the service would check it, as a fresh request."""
    if isinstance(request, SessionSearchRequest):
        request = request.to_dict()
    if not isinstance(request, Mapping):
        raise TypeError(f"request must be a SessionSearchRequest or a dict, not {request!r}")
    try:
        body = SessionSearchRequest.from_dict(dict(request))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a session search request: {exc}") from exc
    if isinstance(body.limit, int) and not SEARCH_LIMIT[0] <= body.limit <= SEARCH_LIMIT[1]:
        raise ValueError(f"limit must be from {SEARCH_LIMIT[0]} to {SEARCH_LIMIT[1]}")
    if body.display_name == "":
        raise ValueError("display_name must not be empty")
    owner_urns = getattr(body.owner, "owner_urns", None)
    if owner_urns is not None and not 1 <= len(owner_urns) <= 10:
        raise ValueError("owner.owner_urns must list 1 to 10 URNs")
    if isinstance(body.statuses, list) and not body.statuses:
        raise ValueError("statuses must list at least one status, or be None")
    return body


def _paginate(
    page: Callable[[int, int], tuple[list[T], int | None]], page_size: int, limit: int | None
) -> Iterator[T]:
    """Yield items page by page until the total, a short page, or ``limit`` items."""
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, not {page_size}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be 0 or more, not {limit}")

    def pages() -> Iterator[T]:
        offset = 0
        while limit is None or offset < limit:
            size = page_size if limit is None else min(page_size, limit - offset)
            items, total = page(size, offset)
            yield from items
            offset += len(items)
            if len(items) < size or (total is not None and offset >= total):
                return

    return pages()


def _archive_from_redirect(response: httpx.Response) -> CheckpointArchiveUrlResponse:
    """The archive URL from a 302: ``Location``, and ``Expires`` or 15 minutes from now."""
    location = response.headers.get("location")
    if not location:
        raise APIResponseValidationError(response, "a 302 without a Location header")
    expires: datetime.datetime | None = None
    if header := response.headers.get("expires"):
        try:
            expires = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            expires = None
    if expires is None:
        expires = datetime.datetime.now(datetime.UTC) + ARCHIVE_URL_VALIDITY
    url = str(response.request.url.join(location))
    return CheckpointArchiveUrlResponse(url=url, expires=expires, expires_at=expires)


class ServiceClient:
    """The entry point the official SDK's examples start from; here it only makes RestClients.

    Example:
        >>> rest_client = ServiceClient().create_rest_client()
    """

    def __init__(self, base_url: str | None = None, api_key: str | None = None, **options: Any):
        """Keep the settings for :meth:`create_rest_client`; see :class:`RestClient`."""
        self.base_url = base_url
        self.api_key = api_key
        self._options = options

    def create_rest_client(self) -> RestClient:
        """A new :class:`RestClient` with this service client's settings."""
        return RestClient(self.base_url, self.api_key, **self._options)

"""RestClient: every operation of the Tinker REST API, as futures and coroutines."""

from __future__ import annotations

import datetime
import email.utils
import enum
import functools
import json
import logging
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

import httpx
from tinker_rest_client.api import (
    audit,
    auth,
    capabilities,
    checkpoints,
    samplers,
    sessions,
    training_runs,
)
from tinker_rest_client.models import (
    AccessScope,
    AssignSessionProjectRequest,
    AuditEventType,
    CheckpointKind,
    CopyWeightsRequest,
    SetCheckpointTtlRequest,
    WeightsInfoRequest,
)
from tinker_rest_client.models import SessionSearchRequest as SearchBody
from tinker_rest_client.types import UNSET

from tinker_rest._engine import DEFAULT_MAX_RESPONSE_BYTES, UNSENDABLE, Engine, Outgoing
from tinker_rest._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    MissingAPIKeyError,
    TraceExportError,
    status_error,
)
from tinker_rest._futures import APIFuture
from tinker_rest._paths import TinkerPath, check_url_segments
from tinker_rest._retry import RetryPolicy
from tinker_rest._storage import check_ttl
from tinker_rest._twin import async_twin
from tinker_rest._version import __version__

if TYPE_CHECKING:
    from tinker_rest._download import DownloadEvent, DownloadProgress
    from tinker_rest._storage import Progress as StorageProgress
    from tinker_rest._storage import PruneResult, StorageReport
    from tinker_rest.types import (
        AuditLogResponse,
        Checkpoint,
        CheckpointArchiveUrlResponse,
        CheckpointsListResponse,
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

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_TIMEOUT", "RestClient", "ServiceClient"]

logger = logging.getLogger("tinker_rest")

DEFAULT_BASE_URL = "https://tinker.thinkingmachines.dev/services/tinker-prod"
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
DEFAULT_MAX_IN_FLIGHT = 1024
DEFAULT_MAX_CONNECTIONS = DEFAULT_MAX_IN_FLIGHT  # one per call in flight over HTTP/1.1
DEFAULT_ARCHIVE_WAIT = 300.0
ARCHIVE_URL_VALIDITY = datetime.timedelta(minutes=15)
DEFAULT_TRACE_DEADLINE = 600.0
TRACE_POLL_INTERVAL = 5.0

Scope = Literal["owned", "accessible"]
AuditEvents = Literal["all", "checkpoints", "projects", "teams", "organizations"]
T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)
Parse = Callable[[httpx.Response], object]
# What a call's generator yields to the engine: a request to send, or seconds to wait.
Exchange = Generator[Outgoing | float, httpx.Response | None, T]


# What urlencode leaves as it is (quote_plus's always-safe characters).
_PLAIN = re.compile(r"[A-Za-z0-9_.\-~]*")


def _query(params: Mapping[str, Any]) -> str:
    """``urllib.parse.urlencode(params)``, without its quoting where nothing needs quoting (the
    common case: an enum, a number, an id); the same string either way."""
    if all(
        (type(v) is int or (type(v) is str and _PLAIN.fullmatch(v))) and _PLAIN.fullmatch(k)
        for k, v in params.items()
    ):
        return "&".join(f"{k}={v}" for k, v in params.items())
    return urllib.parse.urlencode(params)


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

    Concurrency contract: every call of one client runs on one engine thread that drives
    libcurl's multi interface (see :mod:`tinker_rest._engine`); a call in flight holds no
    thread, so a program that starts 1,000 calls has them in flight together (``max_in_flight``,
    1024 by default; more wait in order). Over TLS the engine speaks HTTP/2 where the service
    offers it, and the calls share a few connections; over HTTP/1.1 each call in flight needs a
    connection, at most ``max_connections`` (1024) to one host, which bounds the calls in flight
    too. Retries and archive polling wait on the engine's timers, not in a thread. One client
    may be used from many threads and event loops at once. Waiting on a future from the engine
    thread (a done-callback) raises ``RuntimeError`` rather than deadlock; blocking on
    ``.result()`` inside a running event loop warns once. ``close()`` (or leaving a ``with`` /
    ``async with`` block) lets running calls finish and cancels waiting ones; a program that
    ends without it still completes the calls it made.

    Why this design, measured by ``scripts/bench.py`` in one run (the README's performance
    section has the tables): libcurl made a sequential call for a third or less of the client
    CPU of pyqwest, httpcore or httpx, and one thread driving a ``CurlMulti`` carried as many
    calls a second as any candidate (and 40 times httpx's async pool) with 256 in flight
    against a server 50 ms away, where the previous 16 worker threads carried at most 16 calls
    at a time. There this client carries 0.9 or more of raw libcurl's calls a second; what
    caps both is CPU, not the network, so the engine keeps its own per-call work small (one
    generator per call, futures completed together once per turn of its loop, handles that
    keep their options, sockets polled with ``epoll`` directly).

    Every call ends: each attempt has a deadline over the whole exchange (``timeout``, 60 s;
    5 s to connect), at most ``max_retries`` retries of failures worth retrying (see
    :class:`RetryPolicy`), a response body is read to at most ``max_response_bytes``
    (decompressed), at most a few interim (1xx) responses are skipped, and
    ``result(timeout)`` bounds the wait.

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
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        archive_wait: float = DEFAULT_ARCHIVE_WAIT,
        transport: httpx.BaseTransport | None = None,
        max_workers: int | None = None,
    ) -> None:
        """Make a client. Sends no request.

        Args:
            base_url: the service's URL; else ``TINKER_BASE_URL``, else the hosted service.
            api_key: the API key; else ``TINKER_API_KEY``.
            timeout: seconds one attempt may take, the whole exchange; or an ``httpx.Timeout``,
                whose ``read`` is that deadline and ``connect`` the one to connect.
            max_retries: retries after a failed first attempt; 0 turns retries off.
            max_in_flight: the most calls in flight at once; more wait their turn.
            max_connections: the most connections to the service's host.
            max_response_bytes: the most bytes of a response body, decompressed; a larger one
                raises :class:`ResponseTooLargeError`. Downloads are not bounded by it.
            archive_wait: the most seconds to wait for an archive the service is still building.
            transport: an ``httpx`` transport to send through instead of libcurl, for tests and
                custom routing; it runs on the engine thread, one request at a time.
            max_workers: the name ``max_in_flight`` had before; still accepted.

        Raises:
            MissingAPIKeyError: no API key was given and ``TINKER_API_KEY`` is unset.
            ValueError: the API key holds a character no header can carry (CR, LF, NUL).
        """
        key = _setting(api_key, "TINKER_API_KEY")
        if key is None:
            raise MissingAPIKeyError(
                "no API key: pass api_key=... or set the TINKER_API_KEY environment variable"
            )
        if UNSENDABLE.search(key):
            raise ValueError(
                "the API key contains a line break or NUL, which no header can carry; "
                "check TINKER_API_KEY or api_key for a stray newline"
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
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._given_transport = transport
        self._http_client: httpx.Client | None = None
        self._http_lock = threading.Lock()
        self._engine = Engine(
            max_in_flight=max_in_flight if max_workers is None else max_workers,
            max_connections=max_connections,
            timeout=self._timeout.read or DEFAULT_TIMEOUT.read or 60.0,
            connect_timeout=self._timeout.connect or DEFAULT_TIMEOUT.connect or 5.0,
            max_response_bytes=max_response_bytes,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"RestClient(base_url={self.base_url!r})"

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Let running calls finish, cancel waiting ones, and close the connections."""
        self._engine.close()
        with self._http_lock:
            http, self._http_client = self._http_client, None
            transport, self._given_transport = self._given_transport, None
        if http is not None:
            http.close()  # and its transport: the one given to this client, or its own
        elif transport is not None:
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
        """Run one operation on the engine: send the request, then parse or raise.

        Raises:
            ValueError: at once, when an id in the request's path cannot be one segment.
        """
        answer = functools.partial(self._unwrap, parse=parse, expect=expect)
        return self._engine.run(self._exchange(request, answer=answer))

    def _send(self, request: dict[str, Any], retry: RetryPolicy | None = None) -> httpx.Response:
        """Send a request built by a generated ``build_request`` and wait for its response,
        retrying as the policy says; the response is whole (status, headers, content)."""
        return self._engine.run(self._exchange(request, retry)).result()

    @overload
    def _exchange(
        self, request: dict[str, Any], retry: RetryPolicy | None = None
    ) -> Exchange[httpx.Response]: ...

    @overload
    def _exchange(
        self,
        request: dict[str, Any],
        retry: RetryPolicy | None = None,
        *,
        answer: Callable[[httpx.Response], T],
    ) -> Exchange[T]: ...

    def _exchange(
        self,
        request: dict[str, Any],
        retry: RetryPolicy | None = None,
        *,
        answer: Callable[[httpx.Response], Any] | None = None,
    ) -> Exchange[Any]:
        """The attempts of one request, as the engine runs them: the last response, or what
        ``answer`` makes of it.

        The generated operations build the request and parse the response; this is the one
        place that turns a request dict into bytes on the wire, so it is where retries live and
        where every non-GET request gets its ``Content-Type`` and one ``X-Idempotency-Key`` for
        all of its attempts. Malformed input is refused here, before the generator starts:
        a path segment no id may be, and a header value no header can carry.

        Raises:
            ValueError: at once, for those.
        """
        policy = self.retry_policy if retry is None else retry
        check_url_segments(request["url"])
        method = request["method"].upper()
        headers = self._headers
        if extra := request.get("headers"):
            headers = {**headers, **extra}
            for name, value in extra.items():
                if UNSENDABLE.search(str(value)):
                    raise ValueError(f"the {name} header contains CR, LF or NUL: {value!r}")
        if method not in ("GET", "HEAD"):
            headers = {
                "Content-Type": "application/json",
                # 128 random bits as 32 hex digits, the form of uuid4().hex without building
                # a UUID (5.3 against 1.0 µs a call, timeit; a prune makes thousands).
                "X-Idempotency-Key": os.urandom(16).hex(),
                **headers,
            }
        url = self.base_url + request["url"]
        if params := request.get("params"):
            url += "?" + _query(params)
        body = b""
        if (payload := request.get("json")) is not None:
            # As httpx encodes json=: compact, UTF-8, no NaN.
            body = json.dumps(
                payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
        outgoing = Outgoing(method, url, headers, body)
        return self._attempts(outgoing, policy, request["url"], answer)

    @staticmethod
    def _attempts(
        outgoing: Outgoing,
        policy: RetryPolicy,
        route: str,
        answer: Callable[[httpx.Response], Any] | None,
    ) -> Exchange[Any]:
        """One generator for the whole call (the engine resumes it once per attempt and wait):
        a generator wrapping this one cost a frame and a resumption per step on the engine's
        thread, which is what caps calls a second against a far service (``make bench``)."""
        retries = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = yield outgoing
                assert response is not None
            except httpx.LocalProtocolError:
                raise  # a request that cannot be sent: sending it again would not help
            except httpx.TimeoutException as exc:
                failure: Exception = APITimeoutError(outgoing.httpx_request(), f"timed out: {exc}")
            except httpx.TransportError as exc:
                failure = APIConnectionError(outgoing.httpx_request(), f"connection failed: {exc}")
            else:
                if response.status_code < 400 or not policy.should_retry(response):
                    return response if answer is None else answer(response)
            if not policy.may_retry(retries):
                if response is not None:
                    return response if answer is None else answer(response)  # raises
                raise failure
            delay = policy.delay(retries, response)
            logger.debug("retrying %s %s in %.2fs", outgoing.method, route, delay)
            yield delay
            retries += 1

    def _unwrap(self, response: httpx.Response, parse: Parse, expect: type[T]) -> T:
        """The parsed value of a successful response; the matching error for any other."""
        if not response.is_success:
            raise status_error(response)
        if expect is type(None):
            return None  # the body of a 2xx is ignored here
        try:
            parsed = parse(response)
        except ValueError as exc:  # pydantic's ValidationError, and a body that is not JSON
            raise APIResponseValidationError(response, str(exc)) from exc
        if not isinstance(parsed, expect):
            raise APIResponseValidationError(response, f"expected {expect.__name__}")
        return parsed

    # -- operations: build the request with the generated builder, then _call or _call_none --

    def _call(self, request: dict[str, Any], model: str) -> APIFuture[Any]:
        """Send a request built by a generated ``build_request``; its value is a ``model``."""
        return self._submit(request, *_result(model))

    def _call_none(self, request: dict[str, Any]) -> APIFuture[None]:
        """Send a request built by a generated ``build_request``; its value is None."""
        return self._submit(request, _no_body, type(None))

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
        request = training_runs.get_training_run.build_request(
            training_run_id, access_scope=_choice(AccessScope, access_scope, "access_scope")
        )
        return self._call(request, "TrainingRun")

    get_training_run_async = async_twin(get_training_run)

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

    get_training_run_by_tinker_path_async = async_twin(get_training_run_by_tinker_path)

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
        request = training_runs.list_training_runs.build_request(
            limit=limit,
            offset=offset,
            access_scope=_choice(AccessScope, access_scope, "access_scope"),
            **({} if project_id is None else {"project_id": project_id}),
        )
        return self._call(request, "TrainingRunsResponse")

    list_training_runs_async = async_twin(list_training_runs)

    # -- checkpoints -----------------------------------------------------------------------

    def get_weights_info_by_tinker_path(self, tinker_path: str) -> APIFuture[WeightsInfoResponse]:
        """Describe the model behind a checkpoint; works for any published checkpoint too.

        ``POST /api/v1/weights_info``

        Raises:
            InvalidTinkerPathError: at once, when ``tinker_path`` is malformed.
        """
        body = WeightsInfoRequest(tinker_path=str(TinkerPath.parse(tinker_path)))
        request = checkpoints.get_weights_info_by_tinker_path.build_request(body=body)
        return self._call(request, "WeightsInfoResponse")

    get_weights_info_by_tinker_path_async = async_twin(get_weights_info_by_tinker_path)

    def list_checkpoints(self, training_run_id: str) -> APIFuture[CheckpointsListResponse]:
        """List every checkpoint of one training run, training and sampler alike.

        ``GET /api/v1/training_runs/{training_run_id}/checkpoints``

        Example:
            >>> for checkpoint in client.list_checkpoints("sess-7f3a:train:0").result().checkpoints:
            ...     print(checkpoint.checkpoint_type, checkpoint.tinker_path)
        """
        request = checkpoints.list_checkpoints.build_request(training_run_id)
        return self._call(request, "CheckpointsListResponse")

    list_checkpoints_async = async_twin(list_checkpoints)

    def list_user_checkpoints(
        self, limit: int = 100, offset: int = 0
    ) -> APIFuture[CheckpointsListResponse]:
        """List one page of the checkpoints of all of the caller's runs, newest first.

        ``GET /api/v1/checkpoints``

        Returns:
            A future of the page, with a cursor. See :meth:`iter_user_checkpoints`.
        """
        request = checkpoints.list_user_checkpoints.build_request(limit=limit, offset=offset)
        return self._call(request, "CheckpointsListResponse")

    list_user_checkpoints_async = async_twin(list_user_checkpoints)

    def delete_checkpoint(self, training_run_id: str, checkpoint_id: str) -> APIFuture[None]:
        """Delete a checkpoint and its files. Only the run's owner may.

        ``DELETE /api/v1/training_runs/{training_run_id}/checkpoints/{kind}/{name}``

        Args:
            training_run_id: the run's id.
            checkpoint_id: ``"<kind>/<name>"``, such as ``"weights/0001"``.

        Raises:
            InvalidTinkerPathError: at once, when the ids cannot name a checkpoint.
        """
        path = TinkerPath.from_checkpoint_id(training_run_id, checkpoint_id)
        return self._call_none(checkpoints.delete_checkpoint.build_request(*_checkpoint_args(path)))

    delete_checkpoint_async = async_twin(delete_checkpoint)

    def delete_checkpoint_from_tinker_path(self, tinker_path: str) -> APIFuture[None]:
        """Delete the checkpoint a tinker path names. Only the run's owner may.

        ``DELETE /api/v1/training_runs/{training_run_id}/checkpoints/{kind}/{name}``

        Raises:
            InvalidTinkerPathError: at once, when ``tinker_path`` is malformed.
        """
        path = TinkerPath.parse(tinker_path)
        return self._call_none(checkpoints.delete_checkpoint.build_request(*_checkpoint_args(path)))

    delete_checkpoint_from_tinker_path_async = async_twin(delete_checkpoint_from_tinker_path)

    def publish_checkpoint_from_tinker_path(self, tinker_path: str) -> APIFuture[None]:
        """Make a checkpoint public. Only the run's owner may.

        ``POST /api/v1/training_runs/{training_run_id}/checkpoints/{kind}/{name}/publish``

        Raises:
            InvalidTinkerPathError: at once, when ``tinker_path`` is malformed.
            ConflictError: (from the future) the checkpoint is already public.

        Example:
            >>> client.publish_checkpoint_from_tinker_path("tinker://run-id/weights/0001").result()
        """
        path = TinkerPath.parse(tinker_path)
        return self._call_none(
            checkpoints.publish_checkpoint.build_request(*_checkpoint_args(path))
        )

    publish_checkpoint_from_tinker_path_async = async_twin(publish_checkpoint_from_tinker_path)

    def unpublish_checkpoint_from_tinker_path(self, tinker_path: str) -> APIFuture[None]:
        """Make a public checkpoint private again. Only the run's owner may.

        ``DELETE /api/v1/training_runs/{training_run_id}/checkpoints/{kind}/{name}/publish``

        Raises:
            InvalidTinkerPathError: at once, when ``tinker_path`` is malformed.
            ConflictError: (from the future) the checkpoint is already private.
        """
        path = TinkerPath.parse(tinker_path)
        request = checkpoints.unpublish_checkpoint.build_request(*_checkpoint_args(path))
        return self._call_none(request)

    unpublish_checkpoint_from_tinker_path_async = async_twin(unpublish_checkpoint_from_tinker_path)

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
        body = SetCheckpointTtlRequest(ttl_seconds=ttl_seconds)
        request = checkpoints.set_checkpoint_ttl.build_request(*_checkpoint_args(path), body=body)
        return self._call_none(request)

    set_checkpoint_ttl_from_tinker_path_async = async_twin(set_checkpoint_ttl_from_tinker_path)

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

    get_checkpoint_archive_url_async = async_twin(get_checkpoint_archive_url)

    def get_checkpoint_archive_url_from_tinker_path(
        self, tinker_path: str
    ) -> APIFuture[CheckpointArchiveUrlResponse]:
        """Like :meth:`get_checkpoint_archive_url`, for the checkpoint a tinker path names.

        ``GET /api/v1/training_runs/{training_run_id}/checkpoints/{kind}/{name}/archive``
        """
        return self._archive_url(TinkerPath.parse(tinker_path))

    get_checkpoint_archive_url_from_tinker_path_async = async_twin(
        get_checkpoint_archive_url_from_tinker_path
    )

    def _archive_url(self, path: TinkerPath) -> APIFuture[CheckpointArchiveUrlResponse]:
        return self._engine.run(self._wait_for_archive(path))

    def _archive_url_only(self, path: TinkerPath) -> APIFuture[str]:
        """Only the URL, for a download: read from the JSON without the result models, whose
        first use loads pydantic (a tenth of a 1 GiB download's time in ``make bench``)."""
        return self._engine.run(self._wait_for_archive(path, url_only=True))

    @overload
    def _wait_for_archive(self, path: TinkerPath) -> Exchange[CheckpointArchiveUrlResponse]: ...

    @overload
    def _wait_for_archive(self, path: TinkerPath, url_only: Literal[True]) -> Exchange[str]: ...

    def _wait_for_archive(self, path: TinkerPath, url_only: bool = False) -> Exchange[Any]:
        """Ask for the archive URL until it is ready or ``archive_wait`` has passed: the
        :class:`CheckpointArchiveUrlResponse`, or with ``url_only`` the URL alone.

        The waits between polls come from the client's :class:`RetryPolicy` (the server's
        ``Retry-After`` when sane, else its backoff), on the engine's timers.
        """
        request = checkpoints.get_checkpoint_archive_url.build_request(*_checkpoint_args(path))
        # A 503 here means "still building": this loop waits for it, so the retry layer must not.
        policy = self.retry_policy.without(503)
        deadline = time.monotonic() + self.archive_wait
        polls = 0
        while True:
            response = yield from self._exchange(request, policy)
            if response.status_code == 302:
                if url_only:
                    return _redirect_target(response)[0]
                return _archive_from_redirect(response)
            remaining = deadline - time.monotonic()
            if response.status_code != 503 or remaining <= 0:
                if url_only:
                    return self._unwrap(response, _url_field, str)
                return self._unwrap(response, *_result("CheckpointArchiveUrlResponse"))
            wait = min(self.retry_policy.delay(polls, response), remaining)
            logger.info("the archive of %s is being built; asking again in %.1fs", path, wait)
            yield wait
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
        request = sessions.get_session.build_request(
            session_id, access_scope=_choice(AccessScope, access_scope, "access_scope")
        )
        return self._call(request, "GetSessionResponse")

    get_session_async = async_twin(get_session)

    def list_sessions(
        self, limit: int = 20, offset: int = 0, access_scope: Scope = "owned"
    ) -> APIFuture[ListSessionsResponse]:
        """List one page of session ids, newest first.

        ``GET /api/v1/sessions``

        See :meth:`iter_sessions` to walk all of them.
        """
        request = sessions.list_sessions.build_request(
            limit=limit,
            offset=offset,
            access_scope=_choice(AccessScope, access_scope, "access_scope"),
        )
        return self._call(request, "ListSessionsResponse")

    list_sessions_async = async_twin(list_sessions)

    def assign_session_project(self, session_id: str, project_id: str) -> APIFuture[None]:
        """Move a session, with its runs and samplers, into a project.

        ``PUT /api/v1/sessions/{session_id}/project``

        A session can move between projects but never out of one.

        Raises:
            PermissionDeniedError: (from the future) the caller may not use that project.
        """
        body = AssignSessionProjectRequest(project_id=project_id)
        return self._call_none(sessions.assign_session_project.build_request(session_id, body=body))

    assign_session_project_async = async_twin(assign_session_project)

    def get_sampler(self, sampler_id: str) -> APIFuture[GetSamplerResponse]:
        """Get a sampler: its base model and the checkpoint it serves.

        ``GET /api/v1/samplers/{sampler_id}``

        Example:
            >>> sampler = await client.get_sampler("sess-7f3a:sample:0")
            >>> print(sampler.base_model, sampler.model_path)
        """
        return self._call(samplers.get_sampler.build_request(sampler_id), "GetSamplerResponse")

    get_sampler_async = async_twin(get_sampler)

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
        request = audit.get_audit_log.build_request(
            event_type=_choice(AuditEventType, event_type, "event_type"),
            **({} if day is None else {"day": day}),
        )
        return self._call(request, "AuditLogResponse")

    get_audit_log_async = async_twin(get_audit_log)

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
            return self._archive_url_only(path).result()

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
            progress: called as ``progress(done, total)`` while it lists and while it prunes
                (during the prune every tenth of a second, and once more at the end).

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
        return self._call(auth.whoami.build_request(), "WhoamiResponse")

    whoami_async = async_twin(whoami)

    def get_server_capabilities(self) -> APIFuture[GetServerCapabilitiesResponse]:
        """List the models the service supports, with what each can do.

        ``GET /api/v1/get_server_capabilities``

        Example:
            >>> caps = client.get_server_capabilities().result()
            >>> print([m.model_name for m in caps.supported_models])
        """
        request = capabilities.get_server_capabilities.build_request()
        return self._call(request, "GetServerCapabilitiesResponse")

    get_server_capabilities_async = async_twin(get_server_capabilities)

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
        if ttl_seconds is not None:
            check_ttl(ttl_seconds)
        body = CopyWeightsRequest(
            source_path=str(source),
            destination_project_id=project,
            ttl_seconds=UNSET if ttl_seconds is None else ttl_seconds,
        )
        token = UNSET if weights_access_token is None else weights_access_token
        request = checkpoints.copy_weights.build_request(
            body=body, x_tinker_weights_access_token=token
        )
        parse, _ = _result("CopyWeightsResponse")

        def tinker_path(response: httpx.Response) -> object:
            return getattr(parse(response), "tinker_path", None)

        return self._submit(request, tinker_path, str)

    copy_weights_async = async_twin(copy_weights)

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
        request = checkpoints.get_external_weights_urls.build_request(
            path.training_run_id, path.name
        )
        return self._call(request, "ExternalWeightsUrlsResponse")

    get_external_weights_urls_async = async_twin(get_external_weights_urls)

    def export_session_trace(
        self,
        session_id: str,
        *,
        deadline: float = DEFAULT_TRACE_DEADLINE,
        poll_interval: float = TRACE_POLL_INTERVAL,
    ) -> APIFuture[str]:
        """Export a session's trace (Chrome JSON, which Perfetto opens); the value is its URL.

        ``GET /api/v1/sessions/{session_id}/trace_export``, asked again every ``poll_interval``
        seconds (on the engine's timers) while the service answers ``pending``. The URL is
        signed, needs no API key and lasts about an hour; asking again reuses a trace that is
        still up to date.

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
        request = sessions.export_session_trace.build_request(session_id)
        check_url_segments(request["url"])
        return self._engine.run(self._poll_trace(request, session_id, deadline, poll_interval))

    export_session_trace_async = async_twin(export_session_trace)

    def _poll_trace(
        self, request: dict[str, Any], session_id: str, deadline: float, interval: float
    ) -> Exchange[str]:
        """Ask for a trace export until it is ready or failed, for at most ``deadline`` s."""
        give_up = time.monotonic() + deadline
        while True:
            response = yield from self._exchange(request)
            state = cast(
                "SessionTraceExportResponse",
                self._unwrap(response, *_result("SessionTraceExportResponse")),
            )
            if state.status == "ready" and state.url:
                return state.url
            if state.status == "failed":
                raise TraceExportError(f"trace export of {session_id} failed: {state.error}")
            remaining = give_up - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the trace of {session_id} was not ready in {deadline}s")
            logger.info("the trace of %s is being built; asking again", session_id)
            yield min(interval, remaining)

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
        body = SearchBody.from_dict(_search_request(request))
        return self._call(
            sessions.search_sessions.build_request(body=body), "SessionSearchResponse"
        )

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
                body["cursor"] = page.next_cursor.model_dump(mode="json")

        return pages()


@functools.cache
def _result(model: str) -> tuple[Parse, type[Any]]:
    """The parser of the result model named ``model``, and its class.

    ``model`` names a class of :mod:`tinker_rest.types`. By name, because those are pydantic
    models and pydantic costs ``import tinker_rest`` more than httpx itself does (``make bench``'s
    import figure); they load on the first call instead (``tests/test_import.py``).
    """
    from tinker_rest import _models

    cls = _models.result_model(model)
    return functools.partial(_models.parse, cls), cls


def _no_body(response: httpx.Response) -> None:
    """The value of an operation that answers with no content."""


SEARCH_LIMIT = (1, 200)


def _search_request(request: SessionSearchRequest | Mapping[str, Any]) -> dict[str, Any]:
    """A session search checked as the service would check it, as fresh JSON fields."""
    from tinker_rest import types

    if isinstance(request, types.SessionSearchRequest):
        request = request.model_dump(mode="json", exclude_none=True)
    if not isinstance(request, Mapping):
        raise TypeError(f"request must be a SessionSearchRequest or a dict, not {request!r}")
    try:
        body = types.SessionSearchRequest.model_validate(dict(request))
    except ValueError as exc:  # pydantic's ValidationError
        raise ValueError(f"not a session search request: {exc}") from exc
    if not SEARCH_LIMIT[0] <= body.limit <= SEARCH_LIMIT[1]:
        raise ValueError(f"limit must be from {SEARCH_LIMIT[0]} to {SEARCH_LIMIT[1]}")
    if body.display_name == "":
        raise ValueError("display_name must not be empty")
    owner_urns = getattr(body.owner, "owner_urns", None)
    if owner_urns is not None and not 1 <= len(owner_urns) <= 10:
        raise ValueError("owner.owner_urns must list 1 to 10 URNs")
    if isinstance(body.statuses, list) and not body.statuses:
        raise ValueError("statuses must list at least one status, or be None")
    return body.model_dump(mode="json", exclude_none=True)


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
    """The archive URL from a 302, as the result model."""
    from tinker_rest.types import CheckpointArchiveUrlResponse

    url, expires = _redirect_target(response)
    return CheckpointArchiveUrlResponse(url=url, expires=expires, expires_at=expires)


def _url_field(response: httpx.Response) -> str:
    """The ``url`` of an archive URL's JSON body.

    Raises:
        ValueError: the body is not JSON, or has no string ``url``.
    """
    body = json.loads(response.content)
    url = body.get("url") if isinstance(body, dict) else None
    if not isinstance(url, str):
        raise ValueError("the answer has no url")
    return url


def _redirect_target(response: httpx.Response) -> tuple[str, datetime.datetime]:
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
    return str(response.request.url.join(location)), expires


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

"""Faults a real server cannot produce on demand, injected with httpx.MockTransport.

Every test here checks the one retry layer: what is retried, how often, how long it waits, and
that every call ends.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tinker_rest import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    ConflictError,
    InternalServerError,
    MissingAPIKeyError,
    RateLimitError,
    RestClient,
    RetryPolicy,
    ServiceClient,
)

PATH = "tinker://sess-1:train:0/weights/0001"
RUN = {
    "training_run_id": "sess-1:train:0",
    "base_model": "Qwen/Qwen3-8B",
    "model_owner": "alice",
    "is_lora": True,
    "last_request_time": "2026-01-15T10:00:00Z",
}

Handler = Callable[[httpx.Request], httpx.Response]


class Script:
    """A transport that answers from a list of responses (or exceptions), recording requests."""

    def __init__(self, *steps: httpx.Response | Exception | Handler) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        if callable(step) and not isinstance(step, httpx.Response):
            return step(request)
        return step


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the waits the retry policy asks for, and wait none of them."""
    recorded: list[float] = []
    delay = RetryPolicy.delay

    def record(self: RetryPolicy, *args: object, **kwargs: object) -> float:
        recorded.append(delay(self, *args, **kwargs))  # type: ignore[arg-type]
        return 0.0

    monkeypatch.setattr(RetryPolicy, "delay", record)
    return recorded


@pytest.fixture
def make_client() -> Iterator[Callable[..., RestClient]]:
    clients: list[RestClient] = []

    def make(script: Script, **options: object) -> RestClient:
        client = RestClient(
            "http://tinker.test", "tml-test", transport=httpx.MockTransport(script), **options
        )  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_scripted_503s_then_success(make_client, sleeps) -> None:
    script = Script(httpx.Response(503), httpx.Response(503), httpx.Response(200, json=RUN))
    run = make_client(script).get_training_run("sess-1:train:0").result(timeout=10)
    assert run.base_model == "Qwen/Qwen3-8B"
    assert len(script.requests) == 3
    assert len(sleeps) == 2
    # Exponential backoff with jitter: 0.5 s then 1 s, each less up to a quarter.
    assert 0.375 <= sleeps[0] <= 0.5 and 0.75 <= sleeps[1] <= 1.0


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy()
    nominal = [0.5, 1, 2, 4, 8, 8, 8]
    for retries_done, expected in enumerate(nominal):
        assert 0.75 * expected <= policy.delay(retries_done) <= expected


def test_429_honours_retry_after(make_client, sleeps) -> None:
    script = Script(
        httpx.Response(429, headers={"Retry-After": "7"}, json={"detail": "slow down"}),
        httpx.Response(429, headers={"retry-after-ms": "250"}, json={"detail": "slow down"}),
        httpx.Response(200, json=RUN),
    )
    make_client(script).get_training_run("sess-1:train:0").result(timeout=10)
    assert sleeps == [7.0, 0.25]


def test_a_retry_after_beyond_the_cap_falls_back_to_backoff(make_client, sleeps) -> None:
    script = Script(
        httpx.Response(503, headers={"Retry-After": "3600"}), httpx.Response(200, json=RUN)
    )
    make_client(script).get_training_run("sess-1:train:0").result(timeout=10)
    assert sleeps and sleeps[0] <= 0.5


def test_retries_are_bounded_and_the_last_error_is_raised(make_client, sleeps) -> None:
    script = Script(httpx.Response(429, json={"detail": "slow down"}))
    future = make_client(script, max_retries=2).get_training_run("sess-1:train:0")
    with pytest.raises(RateLimitError, match="429 Too Many Requests: slow down"):
        future.result(timeout=10)
    assert len(script.requests) == 3


def test_max_retries_zero_turns_retries_off(make_client, sleeps) -> None:
    script = Script(httpx.Response(503, json={"detail": "down"}))
    with pytest.raises(InternalServerError):
        make_client(script, max_retries=0).get_training_run("r").result(timeout=10)
    assert len(script.requests) == 1 and sleeps == []


def test_a_conflict_is_never_retried(make_client, sleeps) -> None:
    script = Script(httpx.Response(409, json={"detail": "Checkpoint is already public"}))
    with pytest.raises(ConflictError) as raised:
        make_client(script).publish_checkpoint_from_tinker_path(PATH).result(timeout=10)
    assert len(script.requests) == 1
    assert raised.value.status_code == 409
    assert raised.value.detail == "Checkpoint is already public"
    assert "POST /api/v1/training_runs/sess-1:train:0/checkpoints/weights/0001/publish" in str(
        raised.value
    )


def test_a_conflict_is_final_even_when_the_server_says_retry(make_client, sleeps) -> None:
    script = Script(
        httpx.Response(409, headers={"x-should-retry": "true"}, json={"detail": "public"}),
        httpx.Response(204),
    )
    with pytest.raises(ConflictError):
        make_client(script).publish_checkpoint_from_tinker_path(PATH).result(timeout=10)
    assert len(script.requests) == 1 and sleeps == []


@pytest.mark.parametrize("key", ["tml-key\r\nX-Evil: 1", "tml-key\n", "tml\0key"])
def test_an_api_key_no_header_can_carry_is_refused_at_once(key: str) -> None:
    with pytest.raises(ValueError, match="line break or NUL"):
        RestClient("http://tinker.test", key)


@pytest.mark.parametrize(
    ("call", "said"),
    [
        (lambda c: c.list_checkpoints(".."), "relative path segment"),
        (lambda c: c.list_checkpoints("."), "relative path segment"),
        (lambda c: c.get_training_run("a/b"), "contains '/'"),
        (lambda c: c.get_session(".."), "relative path segment"),
        (lambda c: c.get_sampler("x/../y"), "contains '/'"),
        (lambda c: c.delete_checkpoint("..", "weights/0001"), "relative path segment"),
        (lambda c: c.get_checkpoint_archive_url("run", "weights/.."), "relative path segment"),
    ],
)
def test_ids_that_are_not_one_segment_are_refused_before_any_request(
    make_client, call: Callable[[RestClient], object], said: str
) -> None:
    script = Script(httpx.Response(200, json={"checkpoints": []}))
    with pytest.raises(ValueError, match=said):
        call(make_client(script))
    assert script.requests == []


def test_x_should_retry_overrides_the_status(make_client, sleeps) -> None:
    never = Script(httpx.Response(503, headers={"x-should-retry": "false"}))
    with pytest.raises(InternalServerError):
        make_client(never).get_training_run("r").result(timeout=10)
    assert len(never.requests) == 1

    anyway = Script(
        httpx.Response(400, headers={"x-should-retry": "true"}, json={"detail": "flaky"}),
        httpx.Response(200, json=RUN),
    )
    make_client(anyway).get_training_run("r").result(timeout=10)
    assert len(anyway.requests) == 2


def test_every_attempt_of_a_call_carries_the_same_idempotency_key(make_client, sleeps) -> None:
    script = Script(httpx.ConnectError("reset by peer"), httpx.Response(502), httpx.Response(204))
    client = make_client(script)
    client.set_checkpoint_ttl_from_tinker_path(PATH, 86400).result(timeout=10)
    keys = {r.headers["X-Idempotency-Key"] for r in script.requests}
    assert len(script.requests) == 3 and len(keys) == 1
    # ... and a new call gets a new key.
    client.set_checkpoint_ttl_from_tinker_path(PATH, None).result(timeout=10)
    assert script.requests[-1].headers["X-Idempotency-Key"] not in keys
    assert script.requests[-1].content == b'{"ttl_seconds":null}'


def test_connection_resets_are_retried_then_raised(make_client, sleeps) -> None:
    script = Script(httpx.ConnectError("connection reset by peer"))
    with pytest.raises(APIConnectionError, match="connection reset by peer") as raised:
        make_client(script, max_retries=2).list_sessions().result(timeout=10)
    assert not isinstance(raised.value, APITimeoutError)
    assert len(script.requests) == 3


def test_read_timeouts_are_retried_then_raised(make_client, sleeps) -> None:
    script = Script(httpx.ReadTimeout("read timed out"), httpx.Response(200, json=RUN))
    assert make_client(script).get_training_run("r").result(timeout=10).is_lora
    always = Script(httpx.ReadTimeout("read timed out"))
    with pytest.raises(APITimeoutError):
        make_client(always, max_retries=1).get_training_run("r").result(timeout=10)
    assert len(always.requests) == 2


def test_a_server_that_never_answers_fails_the_future_in_bounded_time() -> None:
    """A real socket that accepts connections and never says a word."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        with RestClient(f"http://127.0.0.1:{port}", "tml-x", timeout=0.3, max_retries=1) as client:
            client.retry_policy = RetryPolicy(max_retries=1, initial_delay=0.01)
            future = client.get_training_run("sess-1:train:0")
            with pytest.raises(APITimeoutError, match="timed out"):
                future.result(timeout=30)


def test_non_get_requests_carry_json_content_type_and_the_headers(make_client) -> None:
    script = Script(httpx.Response(204))
    make_client(script).delete_checkpoint("sess-1:train:0", "weights/0001").result(timeout=10)
    request = script.requests[0]
    assert request.method == "DELETE"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-API-Key"] == "tml-test"
    assert request.headers["User-Agent"].startswith("tinker-rest/")
    assert "Authorization" not in request.headers
    # The checkpoint id travels as two path segments, never as weights%2F0001.
    assert request.url.raw_path.endswith(b"/checkpoints/weights/0001")


def test_get_requests_always_send_access_scope(make_client) -> None:
    script = Script(
        httpx.Response(
            200, json={"training_runs": [], "cursor": {"offset": 0, "limit": 20, "total_count": 0}}
        )
    )
    make_client(script).list_training_runs().result(timeout=10)
    assert dict(script.requests[0].url.params) == {
        "limit": "20",
        "offset": "0",
        "access_scope": "owned",
    }
    assert "X-Idempotency-Key" not in script.requests[0].headers


# -- the archive URL ------------------------------------------------------------------------


def test_archive_url_from_a_redirect_with_expires(make_client) -> None:
    script = Script(
        httpx.Response(
            302,
            headers={
                "Location": "https://storage.test/a.tar?sig=abc",
                "Expires": "Thu, 15 Jan 2026 10:15:00 GMT",
            },
        )
    )
    archive = make_client(script).get_checkpoint_archive_url_from_tinker_path(PATH).result(10)
    assert archive.url == "https://storage.test/a.tar?sig=abc"
    assert archive.expires == datetime.datetime(2026, 1, 15, 10, 15, tzinfo=datetime.UTC)
    assert archive.expires_at == archive.expires
    assert len(script.requests) == 1  # the redirect is read, not followed


def test_archive_url_redirect_without_expires_lasts_15_minutes(make_client) -> None:
    script = Script(httpx.Response(302, headers={"Location": "https://storage.test/a.tar"}))
    before = datetime.datetime.now(datetime.UTC)
    archive = make_client(script).get_checkpoint_archive_url("sess-1:train:0", "weights/0001")
    expires = archive.result(10).expires
    assert before + datetime.timedelta(minutes=14) < expires
    assert expires < before + datetime.timedelta(minutes=16)


def test_archive_url_redirect_without_location_is_an_error(make_client) -> None:
    script = Script(httpx.Response(302))
    with pytest.raises(APIResponseValidationError, match="without a Location"):
        make_client(script).get_checkpoint_archive_url_from_tinker_path(PATH).result(10)


def test_archive_url_waits_while_the_archive_is_built(make_client, sleeps) -> None:
    building = httpx.Response(503, headers={"Retry-After": "2"}, json={"detail": "building"})
    ready = httpx.Response(
        200, json={"url": "http://s.test/a.tar", "expires": "2026-01-15T10:15:00Z"}
    )
    script = Script(building, building, building, building, building, ready)
    archive = make_client(script).get_checkpoint_archive_url_from_tinker_path(PATH).result(10)
    assert archive.url == "http://s.test/a.tar" and archive.expires_at == archive.expires
    # Five polls, each waiting what the server asked; past max_retries, since it is not an error.
    assert sleeps == [2.0] * 5


def test_archive_wait_is_bounded(make_client) -> None:
    script = Script(
        httpx.Response(503, headers={"Retry-After": "0.05"}, json={"detail": "building"})
    )
    future = make_client(script, archive_wait=0.3).get_checkpoint_archive_url_from_tinker_path(PATH)
    with pytest.raises(InternalServerError, match="503 Service Unavailable: building"):
        future.result(timeout=10)
    assert 2 <= len(script.requests) <= 10


# -- construction, futures and lifecycle ----------------------------------------------------


def test_a_missing_api_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="TINKER_API_KEY"):
        RestClient("http://tinker.test")
    monkeypatch.setenv("TINKER_API_KEY", "")
    with pytest.raises(MissingAPIKeyError):
        ServiceClient().create_rest_client()


def test_settings_resolve_argument_then_environment_then_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TINKER_API_KEY", "tml-env")
    monkeypatch.setenv("TINKER_BASE_URL", "http://env.test/base/")
    assert RestClient().base_url == "http://env.test/base"
    assert RestClient("http://arg.test/").base_url == "http://arg.test"
    monkeypatch.setenv("TINKER_BASE_URL", "")
    assert RestClient().base_url == "https://tinker.thinkingmachines.dev/services/tinker-prod"
    assert ServiceClient("http://svc.test").create_rest_client().base_url == "http://svc.test"


def test_construction_sends_nothing_and_starts_no_threads() -> None:
    script = Script(httpx.Response(200, json=RUN))
    before = threading.active_count()
    client = RestClient("http://tinker.test", "tml-x", transport=httpx.MockTransport(script))
    assert script.requests == [] and threading.active_count() == before
    client.close()


def test_waiting_inside_a_worker_thread_raises_instead_of_deadlocking(make_client) -> None:
    gate = threading.Event()

    def slow(request: httpx.Request) -> httpx.Response:
        gate.wait(5)
        return httpx.Response(200, json=RUN)

    client = make_client(Script(slow), max_workers=1)
    errors: list[BaseException] = []
    called = threading.Event()

    def callback(_: object) -> None:
        try:
            client.get_training_run("r").result()
        except RuntimeError as exc:
            errors.append(exc)
        finally:
            called.set()

    first = client.get_training_run("r")
    first.add_done_callback(callback)
    gate.set()
    first.result(timeout=10)
    # result() returns once the value is set; the done-callbacks run after that.
    assert called.wait(10)
    assert errors and "deadlock" in str(errors[0])


def test_blocking_inside_an_event_loop_warns_once(
    make_client, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tinker_rest._futures

    monkeypatch.setattr(tinker_rest._futures, "_warned_in_loop", False)

    def slow(request: httpx.Request) -> httpx.Response:
        time.sleep(0.05)
        return httpx.Response(200, json=RUN)

    client = make_client(Script(slow))

    async def main() -> None:
        with pytest.warns(RuntimeWarning, match="await"):
            client.get_training_run("r").result(timeout=10)
        client.get_training_run("r").result(timeout=10)  # once: no second warning
        assert (await client.get_training_run("r")).is_lora
        assert (await client.get_training_run_async("r")).is_lora

    asyncio.run(main())


def test_a_closed_client_refuses_new_calls(make_client) -> None:
    client = make_client(Script(httpx.Response(200, json=RUN)))
    client.get_training_run("r").result(timeout=10)
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.get_training_run("r")


def test_close_cancels_queued_calls_so_every_future_ends(make_client) -> None:
    gate = threading.Event()

    def slow(request: httpx.Request) -> httpx.Response:
        gate.wait(5)
        return httpx.Response(200, json=RUN)

    client = make_client(Script(slow), max_workers=1)
    running = client.get_training_run("r")
    queued = [client.get_training_run("r") for _ in range(3)]
    closer = threading.Thread(target=client.close)
    closer.start()
    gate.set()
    closer.join(10)
    assert running.result(timeout=10).is_lora
    assert all(f.cancelled() for f in queued)


def test_bad_arguments_fail_at_call_time_with_a_clear_message(make_client) -> None:
    script = Script(httpx.Response(200, json=RUN))
    client = make_client(script)
    with pytest.raises(
        ValueError, match="access_scope must be one of 'accessible', 'owned', not 'mine'"
    ):
        client.get_training_run("r", access_scope="mine")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="event_type must be one of"):
        client.get_audit_log(event_type="everything")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ttl_seconds must be an int or None"):
        client.set_checkpoint_ttl_from_tinker_path(PATH, "1h")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"day must be a datetime\.date"):
        client.get_audit_log(day="2026-01-15")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid tinker path 'tinker://run/weights'"):
        client.publish_checkpoint_from_tinker_path("tinker://run/weights")
    assert script.requests == []


def test_a_malformed_success_body_is_a_validation_error(make_client) -> None:
    script = Script(httpx.Response(200, json={"training_run_id": "r"}))
    with pytest.raises(APIResponseValidationError, match="GET /api/v1/training_runs/r"):
        make_client(script).get_training_run("r").result(timeout=10)


def test_a_done_callback_raising_systemexit_stops_neither_the_batch_nor_the_engine(
    make_client, caplog: pytest.LogCaptureFixture
) -> None:
    """Futures are completed together once per turn of the engine's loop; a callback that
    raises past concurrent.futures' guard (which catches only Exception) must not lose the
    others of its batch, nor end the engine's thread."""
    gate = threading.Event()

    def slow(request: httpx.Request) -> httpx.Response:
        gate.wait(5)
        return httpx.Response(200, json=RUN)

    client = make_client(Script(slow), max_workers=8)

    def bad(_: object) -> None:
        raise SystemExit("from a done-callback")

    futures = [client.get_training_run("r") for _ in range(4)]
    futures[0].add_done_callback(bad)
    gate.set()
    with caplog.at_level(logging.ERROR, logger="tinker_rest"):
        runs = [f.result(timeout=10) for f in futures]
        assert (
            client.get_training_run("r").result(timeout=10).training_run_id
            == RUN["training_run_id"]
        )
    assert len(runs) == 4
    assert "done-callback" in caplog.text

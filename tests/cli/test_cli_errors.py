"""Errors that tell the user what to do: one ``Error:`` line, one ``Hint:`` line never empty.

Exit codes: 1 for errors, 2 for usage errors, 130 for Ctrl-C.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from click.testing import Result

from tinker_rest._errors import status_error
from tinker_rest.cli._app import describe

Run = Callable[..., Result]


def error_lines(result: Result) -> tuple[str, str]:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    error, hint = lines
    assert error.startswith("Error: ") and hint.startswith("Hint: ")
    assert hint.removeprefix("Hint: ").strip(), "the hint is empty"
    assert "Traceback" not in result.output
    return error, hint


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "localhost:8000", "ftp://example.test"])
def test_base_url_without_a_scheme(cli_run: Run, url: str) -> None:
    result = cli_run("--base-url", url, "--api-key", "tml-x", "run", "list")
    assert result.exit_code == 1
    error, hint = error_lines(result)
    assert "does not start with http:// or https://" in error and repr(url) in error
    assert "--base-url http://" in hint
    assert "UnsupportedProtocol" not in result.output


def test_base_url_from_the_environment_without_a_scheme(cli_run: Run) -> None:
    environment = {"TINKER_BASE_URL": "127.0.0.1:8000", "TINKER_API_KEY": "tml-x"}
    result = cli_run("run", "list", env=environment)
    assert result.exit_code == 1
    error, hint = error_lines(result)
    assert "'127.0.0.1:8000'" in error and "http://127.0.0.1:8000" in hint


def test_base_url_ending_in_api_v1(cli_run: Run, env: Any) -> None:
    url = f"{env.base_url}/api/v1/"
    result = cli_run("--base-url", url, "--api-key", env.alice_key, "run", "list")
    assert result.exit_code == 1
    error, hint = error_lines(result)
    assert "ends in /api/v1" in error
    assert f"--base-url {env.base_url}" in hint
    assert "check the id" not in hint


def test_unreachable_server_names_the_url_without_a_repr(cli_run: Run) -> None:
    # Port 9 (discard) on 127.0.0.1: nothing listens there, so the connection is refused.
    result = cli_run("--base-url", "http://127.0.0.1:9", "--api-key", "tml-x", "run", "list")
    assert result.exit_code == 1
    error, hint = error_lines(result)
    assert error == (
        "Error: could not reach the Tinker service at http://127.0.0.1:9 (the connection failed)"
    )
    assert "ConnectError" not in result.output and "(" not in hint
    assert "TINKER_BASE_URL" in hint


def test_every_status_gets_a_hint() -> None:
    # The CLI checks what it can before sending, so the reference server gives no 400 to a
    # well-formed command; describe() is checked directly for the statuses it may still see.
    request = httpx.Request("GET", "http://x.test/api/v1/training_runs")
    response = httpx.Response(400, json={"detail": "limit: too big"}, request=request)
    message, hint = describe(status_error(response), None)
    assert message == "limit: too big (HTTP 400)" and "--help" in hint
    for status in (402, 418, 422, 451, 500, 503):
        assert describe(status_error(httpx.Response(status, request=request)), None)[1]


def test_every_error_of_the_real_server_has_a_hint(env: Any) -> None:
    cases = [
        env.invoke("run", "info", "no-such-run"),  # 404
        env.invoke("run", "list", key="tml-wrong"),  # 401
        env.invoke("audit", key=env.bob_key),  # 403
        env.invoke("checkpoint", "publish", f"tinker://{env.run_b}/weights/0001"),  # not hers
    ]
    for result in cases:
        assert result.exit_code == 1, result.output
        error_lines(result)

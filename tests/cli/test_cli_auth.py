"""``auth login/logout/status``: the key stored 0600 in ~/.tinker/credentials.json, and used."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result

Run = Callable[..., Result]


def test_login_stores_the_key_for_the_owner_only_and_it_is_used(
    cli_run: Run, env: Any, home: Path
) -> None:
    login = cli_run("--base-url", env.base_url, "auth", "login", input=f"{env.alice_key}\n")
    assert login.exit_code == 0, login.output
    stored = home / ".tinker" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    data = json.loads(stored.read_text())
    # The official CLI's shape, so either CLI reads what the other stored.
    assert data["version"] == 1
    assert data["keys"][data["default"]]["key"] == env.alice_key
    assert data["keys"][data["default"]]["type"] == "manual"
    assert env.alice_key not in data["default"]

    # Neither --api-key nor TINKER_API_KEY: the stored key is used.
    runs = cli_run("--base-url", env.base_url, "-f", "json", "run", "list")
    assert runs.exit_code == 0, runs.output
    assert [r["training_run_id"] for r in json.loads(runs.stdout)["runs"]] == [env.run_a]
    # --api-key and TINKER_API_KEY still win over it.
    bob = cli_run(
        "--base-url",
        env.base_url,
        "-f",
        "json",
        "run",
        "list",
        "--access-scope",
        "owned",
        env={"TINKER_API_KEY": env.bob_key},
    )
    assert [r["training_run_id"] for r in json.loads(bob.stdout)["runs"]] == [env.run_b]

    status = cli_run("--base-url", env.base_url, "auth", "status")
    assert status.exit_code == 0, status.output
    assert status.stdout.splitlines() == [
        "Credentials available: yes",
        f"Key from: {stored}",
        "Tinker accessible: yes",
    ]

    twice = cli_run("--base-url", env.base_url, "auth", "login", input=f"{env.bob_key}\n")
    assert twice.exit_code == 1 and "auth logout" in twice.stderr

    logout = cli_run("auth", "logout")
    assert logout.exit_code == 0 and "still active" in logout.stdout
    assert json.loads(stored.read_text())["keys"] == {}
    after = cli_run("--base-url", env.base_url, "run", "list")
    assert after.exit_code == 1 and after.stderr.startswith("Error: no API key")
    again = cli_run("auth", "logout")
    assert again.exit_code == 1 and "Hint: " in again.stderr


def test_login_refuses_a_key_the_service_refuses(cli_run: Run, env: Any, home: Path) -> None:
    result = cli_run("--base-url", env.base_url, "auth", "login", input="tml-wrong\n")
    assert result.exit_code == 1 and "(HTTP 401)" in result.stderr
    assert not (home / ".tinker" / "credentials.json").exists()


def test_login_to_an_unreachable_service_stores_nothing(cli_run: Run, home: Path) -> None:
    result = cli_run("--base-url", "http://127.0.0.1:9", "auth", "login", input="tml-x\n")
    assert result.exit_code == 1 and "could not reach" in result.stderr
    assert not (home / ".tinker" / "credentials.json").exists()


def test_status_without_any_key(cli_run: Run, env: Any) -> None:
    result = cli_run("--base-url", env.base_url, "auth", "status")
    assert result.exit_code == 1
    assert result.stdout == "Credentials available: no\n"
    assert "auth login" in result.stderr


def test_status_with_a_refused_key(cli_run: Run, env: Any) -> None:
    result = cli_run("--base-url", env.base_url, "--api-key", "tml-wrong", "auth", "status")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == "Tinker accessible: no"
    assert "(HTTP 401)" in result.stderr

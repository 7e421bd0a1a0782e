"""Setup that cannot dead-end: help without the server extra, admin listings, lost demo keys."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import click
from click.testing import Result

from tinker_rest.cli import cli

Run = Callable[..., Result]

# Python run as if the 'server' extra were not installed: importing its packages fails.
WITHOUT_SERVER_EXTRA = """
import builtins, sys
BLOCKED = ("fastapi", "sqlalchemy", "uvicorn", "starlette", "alembic")
real_import = builtins.__import__
def without_server_extra(name, *args, **kwargs):
    if name.split(".")[0] in BLOCKED:
        raise ImportError(f"No module named {name!r} (the server extra is not installed)")
    return real_import(name, *args, **kwargs)
builtins.__import__ = without_server_extra
"""


def every_command(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += every_command(command, (*prefix, name))
    return found


def test_help_of_every_command_works_without_the_server_extra(tmp_path: Path) -> None:
    commands = every_command(cli)
    assert ("admin", "list-users") in commands and ("serve",) in commands
    code = WITHOUT_SERVER_EXTRA + textwrap.dedent(f"""
        from click.testing import CliRunner
        from tinker_rest.cli import cli
        runner = CliRunner()
        for argv in [[], *{[list(c) for c in commands]!r}]:
            result = runner.invoke(cli, [*argv, "--help"])
            assert result.exit_code == 0, (argv, result.output)
            assert "Usage: " in result.output, argv
        # Running a server command says which extra it needs: one line and a hint.
        result = runner.invoke(cli, ["admin", "list-users", "--db", {str(tmp_path / "x.db")!r}])
        assert result.exit_code == 1, result.output
        assert "Hint: install the 'server' extra: pip install 'tinker-rest[server]'" in (
            result.stderr
        ), result.stderr
        assert not [m for m in ("fastapi", "sqlalchemy", "uvicorn") if m in sys.modules]
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_admin_lists_users_and_keys_and_makes_a_key_by_email(cli_run: Run, tmp_path: Path) -> None:
    database = str(tmp_path / "admin.db")
    org = cli_run("admin", "create-org", "acme", "--db", database).stdout.strip()
    user = cli_run(
        "admin",
        "create-user",
        "dana@example.com",
        "--org",
        org,
        "--role",
        "admin",
        "--db",
        database,
    ).stdout.strip()

    by_email = cli_run("admin", "create-key", "dana@example.com", "--db", database)
    assert by_email.exit_code == 0, by_email.output
    by_id = cli_run("admin", "create-key", user, "--db", database)
    assert by_id.exit_code == 0
    keys = [by_email.stdout.strip(), by_id.stdout.strip()]
    assert all(k.startswith("tml-") for k in keys) and keys[0] != keys[1]

    users = cli_run("-f", "json", "admin", "list-users", "--db", database)
    assert users.exit_code == 0, users.output
    (row,) = json.loads(users.stdout)["users"]
    assert row["user_id"] == user and row["email"] == "dana@example.com"
    assert row["role"] == "admin" and row["organization_name"] == "acme"
    assert row["active_api_keys"] == 2

    assert cli_run("admin", "revoke-key", keys[0], "--db", database).exit_code == 0
    listed = cli_run("admin", "list-keys", "dana@example.com", "--db", database, "-f", "json")
    assert listed.exit_code == 0, listed.output
    api_keys = json.loads(listed.stdout)["api_keys"]
    assert [k["user_id"] for k in api_keys] == [user, user]
    assert [k["revoked_at"] is None for k in api_keys] == [False, True]
    assert not any(key in listed.stdout for key in keys)  # keys are never kept, nor shown

    table = cli_run("admin", "list-users", "--db", database)
    assert "dana@example.com" in table.stdout and "create-key EMAIL" in table.stderr

    unknown = cli_run("admin", "create-key", "nobody@example.com", "--db", database)
    assert unknown.exit_code == 2 and "admin list-users" in unknown.stderr


def test_the_created_key_works_against_the_server(cli_run: Run, env: object) -> None:
    from tinker_rest.server import TinkerServer

    server: TinkerServer = env.server  # type: ignore[attr-defined]
    (alice,) = [u for u in server.list_users() if u["email"] == "alice@example.com"]
    key = server.add_api_key(str(alice["user_id"]))
    base_url: str = env.base_url  # type: ignore[attr-defined]
    result = cli_run("--base-url", base_url, "--api-key", key, "-f", "json", "run", "list")
    assert result.exit_code == 0, result.output


def test_serve_demo_on_an_existing_database_says_how_to_get_a_key(tmp_path: Path) -> None:
    database = str(tmp_path / "demo.db")
    outputs = []
    for _ in range(2):
        # Started with port 0 and stopped by its own handle once it says it is serving.
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tinker_rest.cli",
                "serve",
                "--demo",
                "--port",
                "0",
                "--db",
                database,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines = []
        try:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if line.startswith("Serving "):
                    break
        finally:
            process.terminate()
            process.communicate(timeout=30)
        outputs.append("".join(lines))
    first, second = outputs
    assert "alice@example.com: tml-" in first
    assert "tml-" not in second
    assert "already holds data" in second
    assert f"tinker-rest admin create-key alice@example.com --db {database}" in second
    assert f"tinker-rest admin list-users --db {database}" in second

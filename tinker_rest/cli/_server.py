"""``tinker-rest serve`` and ``tinker-rest admin``: the reference server's commands.

This module imports only click, and it lives in the CLI package rather than in
``tinker_rest.server`` (whose ``__init__`` imports FastAPI, SQLAlchemy and uvicorn), so that
``--help`` of every command works without the ``server`` extra; the server stack is imported
when a command runs, and its absence is then an error saying which extra to install.

    tinker-rest serve [--host 127.0.0.1] [--port 8000] [--db PATH] [--demo]
    tinker-rest admin create-org NAME --db PATH
    tinker-rest admin create-user EMAIL --org ORG_ID [--role member|admin] --db PATH
    tinker-rest admin create-key USER --db PATH          (USER: a user id or an email)
    tinker-rest admin list-users --db PATH
    tinker-rest admin list-keys [USER] --db PATH
    tinker-rest admin revoke-key KEY --db PATH
    tinker-rest admin create-project NAME --org ORG_ID [--member USER_ID ...] --db PATH
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click
from rich.table import Table

from tinker_rest.cli import _output as out
from tinker_rest.cli._context import Settings, SettingsError, format_option, pass_settings

if TYPE_CHECKING:
    from tinker_rest.server.server import TinkerServer

ENV_DATABASE_URL = "TINKER_REST_DATABASE_URL"
DEFAULT_DB = os.path.join("tinker-rest-data", "tinker.db")


def _default_db() -> str:
    return os.environ.get(ENV_DATABASE_URL) or DEFAULT_DB


db_option = click.option(
    "--db",
    "database",
    default=_default_db,
    show_default=f"${ENV_DATABASE_URL} or {DEFAULT_DB}",
    help="SQLite file path or SQLAlchemy database URL.",
)


@contextmanager
def _opened(database: str) -> Iterator[TinkerServer]:
    """The server over ``database``, closed afterwards; a store error is a one-line error."""
    try:
        from tinker_rest.server.server import TinkerServer
        from tinker_rest.server.store import StoreError
    except ImportError as exc:
        raise SettingsError(
            f"this command runs the reference server, which is not installed ({exc})",
            "install the 'server' extra: pip install 'tinker-rest[server]'.",
        ) from None
    server = TinkerServer(database)
    try:
        yield server
    except StoreError as exc:
        raise SettingsError(
            exc.detail, "`tinker-rest admin list-users` lists the users and organizations."
        ) from exc
    finally:
        server.close()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@db_option
@click.option("--demo", is_flag=True, help="Seed demo data into an empty database.")
def serve(host: str, port: int, database: str, demo: bool) -> None:
    """Run the local Tinker-compatible reference server (needs the 'server' extra).

    \b
    Example:
      tinker-rest serve --demo --db demo-data/tinker.db
    """
    with _opened(database) as server:
        if demo and server.store.is_empty():
            data = server.seed_demo()
            click.echo("Seeded demo data. These API keys are shown only once:")
            from tinker_rest.server.beyond.weights import writable_projects

            for role, email, key, user in (
                ("admin ", data.admin_email, data.admin_key, data.admin_user_id),
                ("member", data.member_email, data.member_key, data.member_user_id),
            ):
                projects = ", ".join(writable_projects(server.store, user)) or "none"
                click.echo(f"  {role} {email}: {key}  (can write to projects: {projects})")
        elif demo:
            db = f" --db {database}" if database != _default_db() else ""
            click.echo(
                "The database already holds data; not seeding the demo again. Its API keys "
                "were shown once, when it was seeded. To get a new one:\n"
                f"  tinker-rest admin list-users{db}\n"
                f"  tinker-rest admin create-key alice@example.com{db}"
            )
        click.echo(f"Serving http://{host}:{port} (docs at /docs) from {server.database_url}")
        server.serve(host, port)


@click.group()
def admin() -> None:
    """Manage organizations, users, API keys and projects in a server database.

    These work on the database directly (the server may be running or not) and need the
    'server' extra to run.
    """


@admin.command("create-org")
@click.argument("name")
@db_option
def create_org(name: str, database: str) -> None:
    """Create an organization and print its id."""
    with _opened(database) as server:
        click.echo(server.add_organization(name))


@admin.command("create-user")
@click.argument("email")
@click.option("--org", "organization_id", required=True, help="The organization id.")
@click.option("--role", type=click.Choice(["member", "admin"]), default="member", show_default=True)
@db_option
def create_user(email: str, organization_id: str, role: str, database: str) -> None:
    """Create a user and print its id."""
    with _opened(database) as server:
        click.echo(server.add_user(email, organization_id=organization_id, role=role))


def _user_id(server: TinkerServer, user: str) -> str:
    """The id of the user named by id or by email; an unknown one is a usage error."""
    for row in server.list_users():
        if user in (row["user_id"], row["email"]):
            return str(row["user_id"])
    raise click.BadParameter(
        f"no user has the id or email {user!r}; `tinker-rest admin list-users` lists them",
        param_hint="USER",
    )


@admin.command("create-key")
@click.argument("user")
@db_option
def create_key(user: str, database: str) -> None:
    """Create an API key for a user, by id or email, and print it (shown only this once).

    \b
    Example:
      tinker-rest admin create-key alice@example.com --db demo-data/tinker.db
    """
    with _opened(database) as server:
        click.echo(server.add_api_key(_user_id(server, user)))


@admin.command("list-users")
@db_option
@format_option
@pass_settings
def list_users(settings: Settings, database: str) -> None:
    """List the users: id, email, role, organization and how many active keys each has."""
    with _opened(database) as server:
        users = server.list_users()
    if settings.json:
        out.echo_json({"users": users})
        return
    table = Table(title=out.title("Users", len(users), None), title_justify="left")
    for header in ("User id", "Email", "Role", "Organization", "Active keys", "Created"):
        table.add_column(header, overflow="fold")
    for row in users:
        table.add_row(
            *(str(row[k]) for k in ("user_id", "email", "role", "organization_name")),
            str(row["active_api_keys"]),
            out.relative_time(_when(row["created_at"])),
        )
    out.print_table(table, "A new key: tinker-rest admin create-key EMAIL")


@admin.command("list-keys")
@click.argument("user", required=False)
@db_option
@format_option
@pass_settings
def list_keys(settings: Settings, user: str | None, database: str) -> None:
    """List API keys, of one user (id or email) or of all; keys themselves are never kept."""
    with _opened(database) as server:
        keys = server.list_api_keys(_user_id(server, user) if user else None)
    if settings.json:
        out.echo_json({"api_keys": keys})
        return
    table = Table(title=out.title("API keys", len(keys), None), title_justify="left")
    for header in ("Key id", "User id", "Email", "Created", "Revoked"):
        table.add_column(header, overflow="fold")
    for row in keys:
        revoked = _when(row["revoked_at"])
        table.add_row(
            *(str(row[k]) for k in ("key_id", "user_id", "email")),
            out.relative_time(_when(row["created_at"])),
            "-" if revoked is None else out.relative_time(revoked),
        )
    out.print_table(table)


def _when(value: object) -> datetime.datetime | None:
    return value if isinstance(value, datetime.datetime) else None


@admin.command("revoke-key")
@click.argument("key")
@db_option
def revoke_key(key: str, database: str) -> None:
    """Revoke an API key."""
    with _opened(database) as server:
        server.revoke_api_key(key)
        click.echo("revoked")


@admin.command("create-project")
@click.argument("name")
@click.option("--org", "organization_id", required=True, help="The organization id.")
@click.option("--member", "members", multiple=True, help="A member's user id (repeatable).")
@db_option
def create_project(
    name: str, organization_id: str, members: tuple[str, ...], database: str
) -> None:
    """Create a project and print its id."""
    with _opened(database) as server:
        click.echo(server.add_project(name, organization_id=organization_id, members=members))

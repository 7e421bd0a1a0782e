"""``tinker-rest serve`` and ``tinker-rest admin``: click commands the main CLI mounts.

The module imports only click; the server stack (FastAPI, SQLAlchemy, uvicorn) is imported
inside the commands, so ``tinker-rest --help`` stays fast and works without the server extra.

    tinker-rest serve [--host 127.0.0.1] [--port 8000] [--db PATH] [--demo]
    tinker-rest admin create-org NAME --db PATH
    tinker-rest admin create-user EMAIL --org ORG_ID [--role member|admin] --db PATH
    tinker-rest admin create-key USER_ID --db PATH
    tinker-rest admin revoke-key KEY --db PATH
    tinker-rest admin create-project NAME --org ORG_ID [--member USER_ID ...] --db PATH
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

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


def _open(database: str) -> TinkerServer:
    try:
        from tinker_rest.server.server import TinkerServer
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise click.ClickException(
            f"the server needs the 'server' extra: pip install 'tinker-rest[server]' ({exc})"
        ) from exc
    return TinkerServer(database)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@db_option
@click.option("--demo", is_flag=True, help="Seed demo data into an empty database.")
def serve(host: str, port: int, database: str, demo: bool) -> None:
    """Run the local Tinker-compatible reference server."""
    server = _open(database)
    try:
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
            click.echo("The database already holds data; not seeding the demo again.")
        click.echo(f"Serving http://{host}:{port} (docs at /docs) from {server.database_url}")
        server.serve(host, port)
    finally:
        server.close()


@click.group()
def admin() -> None:
    """Manage organizations, users, API keys and projects in a server database."""


@admin.command("create-org")
@click.argument("name")
@db_option
def create_org(name: str, database: str) -> None:
    """Create an organization and print its id."""
    server = _open(database)
    try:
        click.echo(server.add_organization(name))
    finally:
        server.close()


@admin.command("create-user")
@click.argument("email")
@click.option("--org", "organization_id", required=True, help="The organization id.")
@click.option("--role", type=click.Choice(["member", "admin"]), default="member", show_default=True)
@db_option
def create_user(email: str, organization_id: str, role: str, database: str) -> None:
    """Create a user and print its id."""
    from tinker_rest.server.store import StoreError

    server = _open(database)
    try:
        click.echo(server.add_user(email, organization_id=organization_id, role=role))
    except StoreError as exc:
        raise click.ClickException(exc.detail) from exc
    finally:
        server.close()


@admin.command("create-key")
@click.argument("user_id")
@db_option
def create_key(user_id: str, database: str) -> None:
    """Create an API key for a user and print it (shown only this once)."""
    from tinker_rest.server.store import StoreError

    server = _open(database)
    try:
        click.echo(server.add_api_key(user_id))
    except StoreError as exc:
        raise click.ClickException(exc.detail) from exc
    finally:
        server.close()


@admin.command("revoke-key")
@click.argument("key")
@db_option
def revoke_key(key: str, database: str) -> None:
    """Revoke an API key."""
    from tinker_rest.server.store import StoreError

    server = _open(database)
    try:
        server.revoke_api_key(key)
        click.echo("revoked")
    except StoreError as exc:
        raise click.ClickException(exc.detail) from exc
    finally:
        server.close()


@admin.command("create-project")
@click.argument("name")
@click.option("--org", "organization_id", required=True, help="The organization id.")
@click.option("--member", "members", multiple=True, help="A member's user id (repeatable).")
@db_option
def create_project(
    name: str, organization_id: str, members: tuple[str, ...], database: str
) -> None:
    """Create a project and print its id."""
    from tinker_rest.server.store import StoreError

    server = _open(database)
    try:
        click.echo(server.add_project(name, organization_id=organization_id, members=members))
    except StoreError as exc:
        raise click.ClickException(exc.detail) from exc
    finally:
        server.close()

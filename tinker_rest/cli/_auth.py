"""``tinker-rest auth login/logout/status/whoami`` and ``tinker-rest version``, as the official
CLI has them.

``auth login`` asks for a key, checks it with ``whoami`` (``GET /api/v1/auth/apikey/me``), and
stores it in the credentials file (:mod:`tinker_rest.cli._credentials`), used when neither
``--api-key`` nor ``TINKER_API_KEY`` gives one. ``auth whoami`` shows whose key is in use.
"""

from __future__ import annotations

import click

from tinker_rest._client import RestClient
from tinker_rest._errors import TinkerRestError
from tinker_rest._version import __version__
from tinker_rest.cli import _credentials as credentials
from tinker_rest.cli import _output as out
from tinker_rest.cli._context import (
    Settings,
    SettingsError,
    check_base_url,
    format_option,
    pass_settings,
)


@click.command("version")
def version() -> None:
    """Show the version, as `tinker-rest <version>`."""
    click.echo(f"tinker-rest {__version__}")


@click.group("auth")
def auth_group() -> None:
    """Store, remove and check the API key this command line uses."""


@auth_group.command("login")
@pass_settings
def auth_login(settings: Settings) -> None:
    """Ask for an API key, check it against the service, and store it as the default.

    The key goes to ~/.tinker/credentials.json (readable only by you), the file the official
    CLI uses, and is used whenever neither --api-key nor TINKER_API_KEY gives a key.
    A key comes from whoever runs the service; for a local server, `tinker-rest admin
    create-key`.
    """
    if credentials.stored_key() is not None:
        raise SettingsError(
            "already logged in", "run `tinker-rest auth logout` before logging in again."
        )
    base_url = check_base_url(settings.effective_base_url())
    key = settings.api_key or click.prompt("API key", hide_input=True, err=True)
    key = key.strip()
    if not key:
        raise click.BadParameter("the API key must not be empty")
    # The service says whose key it is before it is stored.
    with RestClient(base_url, key) as client:
        me = client.whoami().result()
    path = credentials.remember(key, name=f"tinker-rest ({base_url})", note=base_url)
    click.echo(f"Logged in as {me.email or me.user_urn} ({me.org_urn}).")
    out.note(f"Stored the API key in {path}; it is used when no other key is given.")


@auth_group.command("logout")
def auth_logout() -> None:
    """Remove the stored API key (the key itself stays valid on the service)."""
    name = credentials.forget()
    if name is None:
        raise SettingsError(
            "no API key is stored",
            "there is nothing to log out from; `tinker-rest auth login` stores one.",
        )
    click.echo(f"Removed credential '{name}'. The API key is still active.")


@auth_group.command("status")
@pass_settings
def auth_status(settings: Settings) -> None:
    """Say whether a key is available, where it comes from, and whether the service takes it."""
    if settings.api_key:
        source = "--api-key or TINKER_API_KEY"
    elif credentials.stored_key() is not None:
        source = str(credentials.credentials_path())
    else:
        source = None
    click.echo(f"Credentials available: {'yes' if source else 'no'}")
    if source is None:
        raise SettingsError(
            "no Tinker credentials are available",
            "run `tinker-rest auth login`, pass --api-key or set TINKER_API_KEY.",
        )
    click.echo(f"Key from: {source}")
    try:
        settings.client().list_training_runs(limit=1).result()
    except TinkerRestError:
        click.echo("Tinker accessible: no")
        raise
    click.echo("Tinker accessible: yes")


@auth_group.command("whoami")
@format_option
@pass_settings
def auth_whoami(settings: Settings) -> None:
    """Show the user and organization the API key in use belongs to.

    JSON: the official CLI's ``{user_urn, org_urn, email}``.
    """
    me = settings.client().whoami().result()
    if settings.json:
        out.echo_json(out.to_json(me))
        return
    rows = [("Email", me.email or "-"), ("User", me.user_urn), ("Organization", me.org_urn)]
    out.print_table(out.details_table(rows))

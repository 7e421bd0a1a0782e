"""What every command shares: the settings from the global options and the lazily made client."""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Callable
from typing import Any, Literal, NoReturn, TypeVar

import click

from tinker_rest._admin import AdminClient
from tinker_rest._client import DEFAULT_BASE_URL, RestClient
from tinker_rest._errors import InvalidTinkerPathError, TinkerRestError
from tinker_rest._paths import TinkerPath
from tinker_rest.cli import _credentials as credentials

F = TypeVar("F", bound=Callable[..., Any])
Format = Literal["table", "json"]
FORMATS = ("table", "json")
Scope = Literal["owned", "accessible"]


def scope(value: str) -> Scope:
    """The ``--access-scope`` choice, typed for the client."""
    return "accessible" if value == "accessible" else "owned"


class CommandError(TinkerRestError):
    """A command that cannot do what was asked; the message says why, the hint what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


class SettingsError(CommandError):
    """A setting that cannot work, found before any request is sent; says how to fix it."""


def check_base_url(url: str) -> str:
    """The base URL without a trailing slash, once it is one the client can use.

    Raises:
        SettingsError: it has no ``http://`` or ``https://`` scheme, no host, or ends in
            ``/api/v1`` (which the client adds itself).
    """
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return _bad_base_url(
            f"the base URL {url!r} does not start with http:// or https://",
            f"write it in full, e.g. --base-url http://{url.strip().split('://')[-1]} "
            "(or set TINKER_BASE_URL so).",
        )
    path = parts.path.rstrip("/")
    if path.endswith("/api/v1"):
        fixed = urllib.parse.urlunsplit(parts._replace(path=path.removesuffix("/api/v1")))
        return _bad_base_url(
            f"the base URL {url!r} ends in /api/v1",
            f"leave /api/v1 out, which tinker-rest adds itself: --base-url {fixed}",
        )
    return url.strip().rstrip("/")


def _bad_base_url(message: str, hint: str) -> NoReturn:
    raise SettingsError(message, hint)


@dataclasses.dataclass
class Settings:
    """The global options, and the client made from them on first use."""

    base_url: str | None = None
    api_key: str | None = None
    format: Format = "table"
    _client: RestClient | None = None
    _admin: AdminClient | None = None

    @property
    def json(self) -> bool:
        """Whether output is JSON, for scripts, rather than tables, for people."""
        return self.format == "json"

    def effective_base_url(self) -> str:
        """The base URL the client talks to: ``--base-url``/``TINKER_BASE_URL`` or the default."""
        return self.base_url or DEFAULT_BASE_URL

    def effective_api_key(self) -> str | None:
        """``--api-key``/``TINKER_API_KEY``, else the key ``auth login`` stored, else None."""
        return self.api_key or credentials.stored_key()

    def client(self) -> RestClient:
        """The client; made on first use, so that ``--help`` and usage errors send nothing.

        Raises:
            SettingsError: the base URL cannot work (checked before any request).
            MissingAPIKeyError: no key was given, set or stored.
        """
        if self._client is None:
            self._client = RestClient(*self._connection())
        return self._client

    def admin(self) -> AdminClient:
        """The admin client (billing), made on first use as :meth:`client` is; same raises."""
        if self._admin is None:
            self._admin = AdminClient(*self._connection())
        return self._admin

    def _connection(self) -> tuple[str, str | None]:
        """The base URL, once checked, and the key for a client."""
        return check_base_url(self.effective_base_url()), self.effective_api_key()

    def close(self) -> None:
        """Close the clients that were made."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._admin is not None:
            self._admin.close()
            self._admin = None


pass_settings = click.make_pass_decorator(Settings, ensure=True)


def _set_format(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(Settings).format = "json" if value == "json" else "table"


def format_option(f: F) -> F:
    """``-f/--format`` on a command too, so it may come after the command's name."""
    return click.option(
        "-f",
        "--format",
        type=click.Choice(FORMATS),
        default=None,
        expose_value=False,
        callback=_set_format,
        help="Output format: tables for people or JSON for scripts (overrides the global -f).",
    )(f)


class TinkerPathType(click.ParamType):  # type: ignore[type-arg]
    """A tinker path, ``tinker://<run id>/<kind>/<name>``; a malformed one is a usage error."""

    name = "TINKER_PATH"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> TinkerPath:
        if isinstance(value, TinkerPath):
            return value
        try:
            return TinkerPath.parse(value)
        except InvalidTinkerPathError as exc:
            self.fail(str(exc), param, ctx)


TINKER_PATH = TinkerPathType()

access_scope_option = click.option(
    "--access-scope",
    type=click.Choice(["owned", "accessible"]),
    default="owned",
    show_default=True,
    help="'owned': only yours; 'accessible': also those shared with you through projects.",
)


def limit_option(default: int, what: str) -> Callable[[F], F]:
    """``--limit N``: show at most N of them; 0 shows all."""
    return click.option(
        "--limit",
        type=click.IntRange(min=0),
        default=default,
        show_default=True,
        help=f"The most {what} to show; 0 shows all of them.",
    )

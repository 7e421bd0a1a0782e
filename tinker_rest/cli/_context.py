"""What every command shares: the settings from the global options and the lazily made client."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import click

from tinker_rest._client import RestClient
from tinker_rest._errors import InvalidTinkerPathError
from tinker_rest._paths import TinkerPath

F = TypeVar("F", bound=Callable[..., Any])
Format = Literal["table", "json"]
FORMATS = ("table", "json")
Scope = Literal["owned", "accessible"]


def scope(value: str) -> Scope:
    """The ``--access-scope`` choice, typed for the client."""
    return "accessible" if value == "accessible" else "owned"


@dataclasses.dataclass
class Settings:
    """The global options, and the client made from them on first use."""

    base_url: str | None = None
    api_key: str | None = None
    format: Format = "table"
    _client: RestClient | None = None

    @property
    def json(self) -> bool:
        """Whether output is JSON, for scripts, rather than tables, for people."""
        return self.format == "json"

    def client(self) -> RestClient:
        """The client; made on first use, so that ``--help`` and usage errors send nothing."""
        if self._client is None:
            self._client = RestClient(self.base_url, self.api_key)
        return self._client

    def close(self) -> None:
        """Close the client if one was made."""
        if self._client is not None:
            self._client.close()
            self._client = None


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

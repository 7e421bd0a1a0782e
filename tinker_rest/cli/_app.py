"""The ``tinker-rest`` command: global options, error reporting, and mounting every group.

Errors never show a traceback. An API or input error prints one line,
``Error: <what went wrong> (HTTP <status>)``, and a ``Hint:`` line, and exits with 1; usage
errors exit with 2 (click's convention) and Ctrl-C with 130.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, NoReturn

import click

from tinker_rest._client import DEFAULT_BASE_URL
from tinker_rest._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    ArchiveIncompleteError,
    DownloadError,
    MissingAPIKeyError,
    TargetExistsError,
    TinkerRestError,
    UnsafeArchiveError,
)
from tinker_rest._version import __version__
from tinker_rest.cli._checkpoints import checkpoint_group
from tinker_rest.cli._context import FORMATS, Settings
from tinker_rest.cli._runs import run_group
from tinker_rest.cli._sessions import audit, sampler_group, session_group
from tinker_rest.cli._storage import prune, storage

EXIT_INTERRUPTED = 130

# Commands of the reference server, imported only when run: importing tinker_rest.server pulls
# in FastAPI and SQLAlchemy, which neither `--help` nor the client commands should pay for.
LAZY_COMMANDS = {
    "serve": (
        "tinker_rest.server.cli",
        "serve",
        "Run the local Tinker-compatible reference server.",
    ),
    "admin": (
        "tinker_rest.server.cli",
        "admin",
        "Manage organizations, users, API keys and projects of a local server.",
    ),
}


class TinkerGroup(click.Group):
    """The root group: mounts the server's commands lazily and turns errors into messages."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            # For help listings and completion: a stand-in that imports nothing.
            return click.Command(cmd_name, help=LAZY_COMMANDS[cmd_name][2])
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] in LAZY_COMMANDS:
            return args[0], _load(args[0]), args[1:]
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            _interrupted()
        except click.exceptions.Abort as exc:
            if isinstance(exc.__context__, KeyboardInterrupt):
                _interrupted()
            raise
        except TinkerRestError as exc:
            _fail(ctx, *describe(exc, ctx.find_object(Settings)))
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            _fail(ctx, f"{exc.strerror or exc}{where}", None)
        finally:
            settings = ctx.find_object(Settings)
            if settings is not None:
                settings.close()


def _load(name: str) -> click.Command:
    module_name, attribute, _ = LAZY_COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.ClickException(
            f"`tinker-rest {name}` needs the reference server: "
            f"pip install 'tinker-rest[server]' ({exc})"
        ) from None
    command = getattr(module, attribute)
    if not isinstance(command, click.Command):  # pragma: no cover - a packaging mistake
        raise click.ClickException(f"{module_name}.{attribute} is not a click command")
    return command


def _interrupted() -> NoReturn:
    click.echo("\nInterrupted.", err=True)
    raise click.exceptions.Exit(EXIT_INTERRUPTED)


def _fail(ctx: click.Context, message: str, hint: str | None) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    if hint:
        click.echo(f"Hint: {hint}", err=True)
    ctx.exit(1)


def describe(exc: TinkerRestError, settings: Settings | None) -> tuple[str, str | None]:
    """The one-line message and the hint for an error."""
    base_url = (settings.base_url if settings else None) or "TINKER_BASE_URL or the default"
    if isinstance(exc, APIStatusError):
        what = exc.detail or exc.response.reason_phrase or "the request failed"
        message = f"{what} (HTTP {exc.status_code})"
        hints = {
            401: "the API key was refused: check --api-key or the TINKER_API_KEY "
            "environment variable.",
            403: "your API key lacks the role or project access this needs "
            "(the audit log needs an admin).",
            404: "check the id; it may not exist or may not be visible to you "
            "(list commands take --access-scope accessible).",
            409: "the checkpoint is already in that state.",
            429: "too many requests; wait a moment and try again.",
        }
        hint = hints.get(exc.status_code)
        if hint is None and exc.status_code >= 500:
            hint = "the service failed; try again later."
        if exc.request_id:
            hint = f"{hint or ''} Request id: {exc.request_id}".strip()
        return message, hint
    if isinstance(exc, MissingAPIKeyError):
        return "no API key", "pass --api-key or set the TINKER_API_KEY environment variable."
    if isinstance(exc, APIConnectionError):
        return str(exc), f"is the service reachable at {base_url}? Set --base-url or " + (
            "TINKER_BASE_URL."
        )
    if isinstance(exc, APIResponseValidationError):
        return str(
            exc
        ), f"the answer does not look like the Tinker API; check --base-url ({base_url})."
    if isinstance(exc, TargetExistsError):
        return str(exc), "pass --force to replace it, or -o DIR to download elsewhere."
    if isinstance(exc, UnsafeArchiveError):
        return f"refused to extract the archive: {exc}", "nothing was kept; the archive is unsafe."
    if isinstance(exc, ArchiveIncompleteError):
        return str(exc), "nothing was kept; run the command again."
    if isinstance(exc, DownloadError):
        return str(exc), None
    return str(exc), None


def _version_message() -> str:
    return f"tinker-rest {__version__}"


@click.group(
    cls=TinkerGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--base-url",
    envvar="TINKER_BASE_URL",
    metavar="URL",
    help=f"The Tinker service.  [env: TINKER_BASE_URL; default: {DEFAULT_BASE_URL}]",
)
@click.option(
    "--api-key",
    envvar="TINKER_API_KEY",
    metavar="KEY",
    help="Your API key (tml-...).  [env: TINKER_API_KEY]",
)
@click.option(
    "-f",
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output: tables for people, or JSON for scripts.",
)
@click.version_option(
    __version__, "--version", prog_name="tinker-rest", message="%(prog)s %(version)s"
)
@click.pass_context
def cli(ctx: click.Context, base_url: str | None, api_key: str | None, output_format: str) -> None:
    """Manage Tinker training runs, checkpoints, sessions and samplers from the shell.

    \b
    Examples:
      tinker-rest run list
      tinker-rest checkpoint list --run-id sess-7f3a:train:0
      tinker-rest checkpoint download tinker://sess-7f3a:train:0/weights/0001 -o models
      tinker-rest -f json checkpoint info tinker://sess-7f3a:train:0/weights/0001
    """
    settings = ctx.ensure_object(Settings)
    settings.base_url = base_url or None
    settings.api_key = api_key or None
    settings.format = "json" if output_format == "json" else "table"


cli.add_command(run_group)
cli.add_command(checkpoint_group)
cli.add_command(session_group)
cli.add_command(sampler_group)
cli.add_command(audit)
cli.add_command(storage)
checkpoint_group.add_command(prune)


def main(argv: list[str] | None = None) -> NoReturn:
    """The console script: run ``tinker-rest`` and exit with its status."""
    try:
        status = cli.main(args=argv, prog_name="tinker-rest", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            click.echo("\nInterrupted.", err=True)
            sys.exit(EXIT_INTERRUPTED)
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("\nInterrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(status if isinstance(status, int) else 0)

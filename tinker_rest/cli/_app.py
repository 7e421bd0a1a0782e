"""The ``tinker-rest`` command: global options, error reporting, and mounting every group.

Errors never show a traceback. An API or input error prints one line,
``Error: <what went wrong> (HTTP <status>)``, and a ``Hint:`` line, and exits with 1; usage
errors exit with 2 (click's convention) and Ctrl-C with 130.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from tinker_rest._client import DEFAULT_BASE_URL
from tinker_rest._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    ArchiveIncompleteError,
    DownloadError,
    MissingAPIKeyError,
    TargetExistsError,
    TinkerRestError,
    UnsafeArchiveError,
)
from tinker_rest._version import __version__
from tinker_rest.cli._auth import auth_group, version
from tinker_rest.cli._billing import billing_group
from tinker_rest.cli._checkpoints import checkpoint_group
from tinker_rest.cli._context import FORMATS, CommandError, Settings
from tinker_rest.cli._models import model_group
from tinker_rest.cli._runs import run_group
from tinker_rest.cli._server import admin, serve
from tinker_rest.cli._sessions import audit, sampler_group, session_group
from tinker_rest.cli._storage import prune, storage

EXIT_INTERRUPTED = 130


class TinkerGroup(click.Group):
    """The root group: turns errors into one line and a hint, and Ctrl-C into exit 130."""

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
            _fail(ctx, f"{exc.strerror or exc}{where}", "check the path and its permissions.")
        finally:
            settings = ctx.find_object(Settings)
            if settings is not None:
                settings.close()


def _interrupted() -> NoReturn:
    click.echo("\nInterrupted.", err=True)
    raise click.exceptions.Exit(EXIT_INTERRUPTED)


def _fail(ctx: click.Context, message: str, hint: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    click.echo(f"Hint: {hint}", err=True)
    ctx.exit(1)


_STATUS_HINTS = {
    400: "the service refused the request as sent; check the arguments against "
    "`tinker-rest COMMAND --help`.",
    401: "the API key was refused: check --api-key, the TINKER_API_KEY environment variable "
    "or `tinker-rest auth login`.",
    403: "your API key lacks the role or project access this needs (the audit log and billing "
    "need an admin of your organization).",
    404: "check the id; it may not exist or may not be visible to you "
    "(list commands take --access-scope accessible).",
    409: "the checkpoint is already in that state.",
    422: "the service refused a value; check the arguments against `tinker-rest COMMAND --help`.",
    429: "too many requests; wait a moment and try again.",
}


def describe(exc: TinkerRestError, settings: Settings | None) -> tuple[str, str]:
    """The one-line message and the hint, never empty, for an error."""
    base_url = settings.effective_base_url() if settings else DEFAULT_BASE_URL
    if isinstance(exc, APIStatusError):
        what = exc.detail or exc.response.reason_phrase or "the request failed"
        message = f"{what} (HTTP {exc.status_code})"
        hint = _STATUS_HINTS.get(exc.status_code)
        if hint is None:
            hint = (
                "the service failed; try again later."
                if exc.status_code >= 500
                else f"the service at {base_url} refused the request."
            )
        if exc.request_id:
            hint = f"{hint} Request id: {exc.request_id}"
        return message, hint
    if isinstance(exc, CommandError):
        return str(exc), exc.hint
    if isinstance(exc, MissingAPIKeyError):
        return "no API key", (
            "pass --api-key, set the TINKER_API_KEY environment variable, "
            "or run `tinker-rest auth login`."
        )
    if isinstance(exc, APIConnectionError):
        why = "timed out" if isinstance(exc, APITimeoutError) else "the connection failed"
        return f"could not reach the Tinker service at {base_url} ({why})", (
            "check that the service is running and reachable there, "
            "and set --base-url or TINKER_BASE_URL if it lives elsewhere."
        )
    if isinstance(exc, APIResponseValidationError):
        return str(exc), (
            f"the answer does not look like the Tinker API; check --base-url ({base_url})."
        )
    if isinstance(exc, TargetExistsError):
        return str(exc), "pass --force to replace it, or -o DIR to download elsewhere."
    if isinstance(exc, UnsafeArchiveError):
        return f"refused to extract the archive: {exc}", (
            "nothing was kept; the archive is unsafe "
            "(if it is only bigger than expected, raise --max-unpacked-size)."
        )
    if isinstance(exc, ArchiveIncompleteError):
        return str(exc), "run the same command again: it resumes from the .part file it kept."
    if isinstance(exc, DownloadError):
        return str(exc), "run the same command again."
    return str(exc), "run the command with -h for its options."


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
    help="Your API key (tml-...); else the one `auth login` stored.  [env: TINKER_API_KEY]",
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
cli.add_command(auth_group)
cli.add_command(model_group)
cli.add_command(billing_group)
cli.add_command(version)
cli.add_command(serve)
cli.add_command(admin)
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

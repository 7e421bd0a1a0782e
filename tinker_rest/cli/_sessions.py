"""``tinker-rest session ...``, ``sampler info`` and ``audit``."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any, Literal

import click
import httpx
from rich.table import Table

from tinker_rest._download import DownloadEvent, download_archive
from tinker_rest.cli import _output as out
from tinker_rest.cli._context import (
    CommandError,
    Settings,
    access_scope_option,
    format_option,
    limit_option,
    pass_settings,
)
from tinker_rest.cli._context import scope as ctx_scope
from tinker_rest.types import GetSessionResponse


def _session_json(session_id: str, session: GetSessionResponse) -> dict[str, Any]:
    return {"session_id": session_id, **out.to_json(session)}


@click.group("session")
def session_group() -> None:
    """Sessions: the groups of training runs and samplers one program made."""


@session_group.command("list")
@limit_option(20, "sessions")
@access_scope_option
@format_option
@pass_settings
def session_list(settings: Settings, limit: int, access_scope: str) -> None:
    """List your sessions, newest first, with their runs and samplers."""
    client = settings.client()
    scope = ctx_scope(access_scope)
    pages = client.iter_sessions(page_size=out.PAGE_SIZE, access_scope=scope, limit=limit or None)
    if limit == 0 or limit > out.PAGE_SIZE:
        pages = out.each(pages, "Listing sessions")
    ids = list(pages)
    futures = [client.get_session(session_id, scope) for session_id in ids]
    sessions: list[GetSessionResponse | None] = [None] * len(ids)
    for index, future in out.gather(futures, "Reading sessions"):
        sessions[index] = future.result()
    found = [(i, s) for i, s in zip(ids, sessions, strict=True) if s is not None]
    if settings.json:
        out.echo_json({"sessions": [_session_json(i, s) for i, s in found]})
        return
    table = Table(title=out.title("Sessions", len(found), None), title_justify="left")
    table.add_column("Session", overflow="fold")
    table.add_column("Name", overflow="fold")
    table.add_column("Training runs", justify="right")
    table.add_column("Samplers", justify="right")
    for session_id, session in found:
        table.add_row(
            session_id,
            session.display_name or "-",
            str(len(session.training_run_ids)),
            str(len(session.sampler_ids)),
        )
    hint = None
    if limit and len(found) == limit:
        hint = "There may be more; use --limit 0 to show all, or --limit N."
    out.print_table(table, hint)


@session_group.command("info")
@click.argument("session_id")
@access_scope_option
@format_option
@pass_settings
def session_info(settings: Settings, session_id: str, access_scope: str) -> None:
    """Show one session: its name, metadata, training runs and samplers."""
    scope = ctx_scope(access_scope)
    session = settings.client().get_session(session_id, scope).result()
    if settings.json:
        out.echo_json(_session_json(session_id, session))
        return
    rows = [
        ("Session", session_id),
        ("Name", session.display_name or "-"),
        ("Training runs", "\n".join(session.training_run_ids) or "-"),
        ("Samplers", "\n".join(session.sampler_ids) or "-"),
        ("Metadata", out.metadata(session.user_metadata)),
    ]
    out.print_table(out.details_table(rows))


@session_group.command("assign-project")
@click.argument("session_id")
@click.argument("project_id")
@format_option
@pass_settings
def session_assign_project(settings: Settings, session_id: str, project_id: str) -> None:
    """Move a session, with its runs and samplers, into a project.

    A session can move from one project to another, but never out of projects again.
    """
    settings.client().assign_session_project(session_id, project_id).result()
    if settings.json:
        out.echo_json({"session_id": session_id, "project_id": project_id})
    else:
        click.echo(f"Session {session_id} is now in project {project_id}")


# How often to ask whether a trace is ready (as the official CLI), and for how long at most.
TRACE_POLL_INTERVAL = 5.0
TRACE_DEADLINE = 600.0


@session_group.command("export-trace")
@click.argument("session_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="The file to write (an existing directory: <session id>.pftrace in it).  "
    "[default: ./<session id>.pftrace]",
)
@click.option("--url-only", is_flag=True, help="Print the signed URL instead of downloading.")
@format_option
@pass_settings
def session_export_trace(
    settings: Settings, session_id: str, output: Path | None, url_only: bool
) -> None:
    """Export a session's timeline as a trace file that https://ui.perfetto.dev opens.

    The service builds the trace (this may take a while), then it is downloaded with a
    progress bar; a broken download resumes when the command is run again. The signed URL
    --url-only prints needs no API key and lasts about an hour.

    \b
    Examples:
      tinker-rest session export-trace sess-7f3a
      curl -o trace.pftrace "$(tinker-rest session export-trace sess-7f3a --url-only)"
    """
    client = settings.client()

    def export() -> str:
        try:
            return client.export_session_trace(
                session_id, deadline=TRACE_DEADLINE, poll_interval=TRACE_POLL_INTERVAL
            ).result()
        except TimeoutError:  # an OSError, which would otherwise read as a file problem
            raise CommandError(
                f"the trace of {session_id} was not ready within {TRACE_DEADLINE:g} s",
                "run the same command again later; the service keeps building it.",
            ) from None

    if not settings.json:
        out.note(f"Exporting trace for session {session_id} (this may take a while)...")
    url = export()
    urls = iter([url])
    if url_only:
        if settings.json:
            out.echo_json({"session_id": session_id, "url": url})
        else:
            click.echo(url)  # bare, for "$(tinker-rest session export-trace ID --url-only)"
        return
    target = output or Path.cwd() / f"{session_id}.pftrace"
    if target.is_dir():
        target = target / f"{session_id}.pftrace"
        if target.is_dir():
            raise CommandError(f"{target} is a directory", "pass -o with a file name.")
    with out.DownloadDisplay(target.name) as display, httpx.Client() as http:

        def event(event: DownloadEvent) -> None:
            if event.phase != "waiting":  # the trace is built already: nothing to wait for
                display.event(event)

        download_archive(
            http,
            # The URL at first; asked for again when it has expired (the trace is reused).
            lambda: next(urls, None) or export(),
            target,
            extract=False,
            force=True,  # as the official CLI, a trace file of the same name is replaced
            progress=display.progress,
            on_event=event,
        )
    size = target.stat().st_size
    if settings.json:
        out.echo_json(
            {"session_id": session_id, "destination": str(target), "file_size_bytes": size}
        )
        return
    rows = [("Session", session_id), ("Saved to", str(target)), ("Size", out.human_size(size))]
    out.print_table(out.details_table(rows, heading=f"Trace export: {session_id}"))


@click.group("sampler")
def sampler_group() -> None:
    """Samplers: the running models that serve a checkpoint."""


@sampler_group.command("info")
@click.argument("sampler_id")
@format_option
@pass_settings
def sampler_info(settings: Settings, sampler_id: str) -> None:
    """Show one sampler: its base model and the checkpoint it serves."""
    sampler = settings.client().get_sampler(sampler_id).result()
    if settings.json:
        out.echo_json(out.to_json(sampler))
        return
    rows = [
        ("Sampler", sampler.sampler_id),
        ("Base model", sampler.base_model),
        ("Checkpoint", sampler.model_path or "-"),
    ]
    out.print_table(out.details_table(rows))


@click.command("audit")
@click.option(
    "--day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="The UTC day to show, midnight to midnight.  [default: today]",
)
@click.option(
    "--event-type",
    type=click.Choice(["all", "checkpoints"]),
    default="all",
    show_default=True,
    help="Every event, or only those about checkpoints.",
)
@format_option
@pass_settings
def audit(settings: Settings, day: datetime.datetime | None, event_type: str) -> None:
    """Show a day of your organization's audit log, oldest first (needs the admin role).

    \b
    Example:
      tinker-rest audit --day 2026-01-15 --event-type checkpoints
    """
    when = day.date() if day is not None else datetime.datetime.now(datetime.UTC).date()
    kind: Literal["all", "checkpoints"] = "checkpoints" if event_type == "checkpoints" else "all"
    log = settings.client().get_audit_log(kind, when).result()
    if settings.json:
        out.echo_json(
            {
                "day": when.isoformat(),
                "event_type": kind,
                "entries": [out.to_json(e) for e in log.entries],
            }
        )
        return
    table = Table(
        title=out.title(f"Audit log of {when.isoformat()} (UTC)", len(log.entries), None),
        title_justify="left",
    )
    table.add_column("Time (UTC)", no_wrap=True)
    table.add_column("Event")
    table.add_column("By", overflow="fold")
    table.add_column("Concerning", overflow="fold")
    table.add_column("Details", overflow="fold")
    for entry in log.entries:
        details = dict(out.to_json(entry.event_details) or {})
        who = details.pop("user", None)
        table.add_row(
            entry.timestamp.astimezone(datetime.UTC).strftime("%H:%M:%S"),
            entry.event,
            str(who) if who is not None else "-",
            entry.tinker_path or entry.model_id or "-",
            ", ".join(f"{k}={v}" for k, v in details.items()) or "-",
        )
    out.print_table(table)

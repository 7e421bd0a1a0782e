"""``tinker-rest billing usage`` and ``billing checkpoint-storage``: the organization's usage.

Both read :class:`~tinker_rest.AdminClient` operations, which need the admin role. JSON is the
official CLI's shape (the response's ``model_dump()``); ``--csv`` writes the rows flattened as
the official CLI does (each event's ``event_info`` fields beside the row's own), ``-`` for
standard output. The tables pick the columns a person reads; JSON and CSV have every field.
"""

from __future__ import annotations

import csv
import datetime
import json
import sys
from collections.abc import Iterable, Sequence
from typing import IO, Any

import click
from rich.table import Table

from tinker_rest.cli import _output as out
from tinker_rest.cli._context import Settings, format_option, pass_settings


class InstantType(click.ParamType):  # type: ignore[type-arg]
    """An RFC 3339 instant with a UTC offset, such as ``2026-01-01T00:00:00Z``."""

    name = "RFC3339"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime.datetime:
        if isinstance(value, datetime.datetime):
            return value
        try:
            when = datetime.datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(
                f"{value!r} is not an RFC 3339 time, such as 2026-01-01T00:00:00Z", param, ctx
            )
        if when.tzinfo is None:
            self.fail(
                f"{value!r} has no UTC offset; write it as {value}Z or with +HH:MM", param, ctx
            )
        return when


INSTANT = InstantType()


def flat_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with their ``event_info`` fields beside their own (those it carries), for CSV."""
    flat = []
    for row in rows:
        info = row.get("event_info")
        if isinstance(info, dict):
            extra = {k: v for k, v in info.items() if v is not None}
            row = {**{k: v for k, v in row.items() if k != "event_info"}, **extra}
        flat.append(row)
    return flat


def write_csv(rows: Sequence[dict[str, Any]], path: str) -> None:
    """Write rows as CSV to ``path`` (``-``: standard output); columns in order of appearance."""
    columns = list(dict.fromkeys(key for row in rows for key in row))

    def write(stream: IO[str]) -> None:
        writer = csv.DictWriter(stream, fieldnames=columns, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})

    if path == "-":
        write(sys.stdout)
        return
    with open(path, "w", newline="", encoding="utf-8") as stream:
        write(stream)
    out.note(f"Wrote {len(rows)} row(s) to {path}")


@click.group("billing")
def billing_group() -> None:
    """Billing: the organization's usage and checkpoint storage (needs the admin role)."""


@billing_group.command("usage")
@click.argument("starting_on", type=INSTANT)
@click.argument("ending_before", type=INSTANT)
@click.option(
    "--csv",
    "csv_path",
    metavar="PATH",
    help="Write the usage rows as CSV to PATH instead ('-' for standard output).",
)
@click.option(
    "--sessions-csv",
    "sessions_csv_path",
    metavar="PATH",
    help="Also write each session's user_metadata as CSV to PATH, to join on session_id.",
)
@format_option
@pass_settings
def billing_usage(
    settings: Settings,
    starting_on: datetime.datetime,
    ending_before: datetime.datetime,
    csv_path: str | None,
    sessions_csv_path: str | None,
) -> None:
    """Show the organization's hourly usage from STARTING_ON up to ENDING_BEFORE.

    Both are RFC 3339 times with a UTC offset. One row per hour, usage type, base model,
    session and user, with the estimated cost in USD where the service knows it.

    \b
    Example:
      tinker-rest billing usage 2026-01-01T00:00:00Z 2026-01-08T00:00:00Z --csv usage.csv
    """
    if ending_before <= starting_on:
        raise click.BadParameter("must be after STARTING_ON", param_hint="ENDING_BEFORE")
    response = settings.admin().get_billing_usage(starting_on, ending_before).result()
    data = out.to_json(response)
    if sessions_csv_path is not None:
        sessions = [
            {"session_id": sid, "user_metadata": _json_or_none(s.get("user_metadata"))}
            for sid, s in data["sessions"].items()
        ]
        write_csv(sessions, sessions_csv_path)
    if csv_path is not None:
        write_csv(flat_rows(data["data"]), csv_path)
    if csv_path is not None or sessions_csv_path is not None:
        return
    if settings.json:
        out.echo_json(data)
        return
    table = Table(title=out.title("Hourly usage", len(response.data), None), title_justify="left")
    for name in ("Hour (UTC)", "Type", "Base model", "Session", "Project"):
        table.add_column(name, overflow="fold")
    table.add_column("Quantity", justify="right")
    table.add_column("Cost", justify="right")
    total = 0.0
    for row in flat_rows(data["data"]):
        cost = row.get("estimated_cost_usd")
        total += cost or 0.0
        table.add_row(
            _hour(row["bucket_start"]),
            str(row.get("type", "-")),
            row.get("base_model") or "-",
            row.get("session_id") or "-",
            row.get("project_id") or "-",
            _quantity(row),
            out.usd(cost),
        )
    table.add_section()
    table.add_row("total", "", "", "", "", "", out.usd(total))
    out.print_table(table, "Estimated costs before credits; --csv has every field.")


def _hour(instant: str) -> str:
    """An hour bucket's start in UTC, ``2026-01-15 09:00``."""
    when = datetime.datetime.fromisoformat(instant).astimezone(datetime.UTC)
    return when.strftime("%Y-%m-%d %H:%M")


def _json_or_none(value: object) -> str | None:
    return None if value is None else json.dumps(value)


def _quantity(row: dict[str, Any]) -> str:
    if row.get("token_count") is not None:
        return f"{row['token_count']:,} tokens"
    if row.get("gigabyte_hours") is not None:
        return f"{row['gigabyte_hours']:g} GB-h"
    if row.get("count") is not None:
        return f"{row['count']:,}"
    return "-"


@billing_group.command("checkpoint-storage")
@click.option("--project-id", help="Only the storage of this project.")
@click.option(
    "--csv",
    "csv_path",
    metavar="PATH",
    help="Write the rows as CSV to PATH instead ('-' for standard output).",
)
@format_option
@pass_settings
def billing_checkpoint_storage(
    settings: Settings, project_id: str | None, csv_path: str | None
) -> None:
    """Show the organization's checkpoint storage now, by project and owner, and its cost.

    Monthly costs are estimates at the service's current rate (per gigabyte, 10^9 bytes).
    `tinker-rest storage` shows your own storage by run or project.
    """
    response = settings.admin().get_current_checkpoint_storage_usage(project_id).result()
    data = out.to_json(response)
    rate = data.get("effective_rate_usd_per_gigabyte_month")
    if csv_path is not None:
        write_csv(
            [{"effective_rate_usd_per_gigabyte_month": rate, **r} for r in data["data"]], csv_path
        )
        return
    if settings.json:
        out.echo_json(data)
        return
    heading = "Checkpoint storage now" if response.data else "No checkpoint storage"
    if rate is not None:
        heading += f" (at ${rate:g} per GB-month)"
    table = Table(title=heading, title_justify="left")
    table.add_column("Project", overflow="fold")
    table.add_column("Owner", overflow="fold")
    table.add_column("Checkpoints", justify="right")
    table.add_column("Size", justify="right")
    table.add_column("Cost/month", justify="right")
    for item in data["data"]:
        table.add_row(
            item.get("project_id") or "-",
            item.get("user_email") or item.get("org_user_urn") or "-",
            str(item["checkpoint_count"]),
            out.human_size(item["size_bytes"]),
            out.usd(item.get("estimated_monthly_cost_usd")),
        )
    out.print_table(table)

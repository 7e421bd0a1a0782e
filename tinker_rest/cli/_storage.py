"""``tinker-rest storage`` and ``tinker-rest checkpoint prune``: see and prune checkpoint storage.

The work is :mod:`tinker_rest._storage`'s (the same as ``RestClient.storage_report`` and
``RestClient.prune_checkpoints``); this module only parses options, draws progress and prints.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator, Sequence
from typing import Literal

import click
from rich.table import Table

from tinker_rest import _storage
from tinker_rest.cli import _output as out
from tinker_rest.cli._context import Settings, format_option, pass_settings
from tinker_rest.types import Checkpoint

PLAN_ROWS = 20  # runs shown in a plan; -f json lists every path

_TYPES = _storage.CHECKPOINT_TYPE_NAMES


@contextlib.contextmanager
def _bar(description: str) -> Iterator[_storage.Progress]:
    """A progress bar on stderr (only on a terminal) fed as ``progress(done, total)``."""
    with out.count_progress() as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> object:
    if value is None:
        return None
    try:
        return _storage.parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _run_ids(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> object:
    try:
        return tuple(_storage.check_run_ids(value) or ())
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _ttl_duration(ctx: click.Context, param: click.Parameter, value: str | None) -> object:
    duration = _duration(ctx, param, value)
    if not isinstance(duration, datetime.timedelta):
        return None
    seconds = int(duration.total_seconds())
    try:
        _storage.check_ttl(seconds)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return seconds


# -- storage ---------------------------------------------------------------------------------


@click.command("storage")
@click.option(
    "--run-id", "run_ids", multiple=True, callback=_run_ids, help="Only this run (repeat)."
)
@click.option(
    "--by",
    type=click.Choice(["run", "project"]),
    default="run",
    show_default=True,
    help="A row per training run, or per project (runs in none: '(no project)').",
)
@click.option(
    "--top",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Show the N biggest; 0 shows every row (JSON always has all).",
)
@format_option
@pass_settings
def storage(settings: Settings, run_ids: tuple[str, ...], by: str, top: int) -> None:
    """What is taking your checkpoint storage: bytes, counts and cost per run, biggest first.

    Lists every checkpoint of yours (all pages at once) and adds them up per training run (or
    per project with --by project), with totals, how many are published, how many already
    expire and, when your key may read the storage rate (admins), the estimated monthly cost.

    \b
    Examples:
      tinker-rest storage
      tinker-rest storage --by project
      tinker-rest -f json storage | jq '.rows[0]'
    """
    client = settings.client()
    grouping: Literal["run", "project"] = "project" if by == "project" else "run"
    with _bar("Listing checkpoints") as progress:
        report = client.storage_report(
            training_run_ids=run_ids or None, progress=progress, by=grouping
        )
    if settings.json:
        out.echo_json(out.to_json(report))
        return
    rows = report.rows if top == 0 else report.rows[:top]
    count = len(report.rows)
    things = ("run" if grouping == "run" else "project") + "s" * (count != 1)
    table = Table(title=f"Checkpoint storage by {by} ({count} {things})", title_justify="left")
    table.add_column("Training run" if grouping == "run" else "Project", overflow="fold")
    table.add_column("Checkpoints", justify="right")
    table.add_column("Size", justify="right")
    table.add_column("Share", justify="right")
    priced = report.rate_usd_per_gigabyte_month is not None
    if priced:
        table.add_column("Cost/month", justify="right")
    table.add_column("Public", justify="right")
    table.add_column("Expiring", justify="right")
    table.add_column("Newest")
    whole = report.total.size_bytes or 1
    for row in [*rows, report.total]:
        if row is report.total:
            table.add_section()
        share = f"{100 * row.size_bytes / whole:.1f}%" if report.total.size_bytes else "-"
        cost = [out.usd(report.cost(row))] if priced else []
        table.add_row(
            row.key,
            str(row.checkpoints),
            out.human_size(row.size_bytes),
            share,
            *cost,
            str(row.public),
            str(row.expiring),
            out.relative_time(row.newest),
        )
    notes = []
    if len(rows) < len(report.rows):
        notes.append(f"The {len(rows)} biggest of {count} {things}; --top 0 shows all.")
    if priced:
        notes.append(
            f"Cost at the service's rate, ${report.rate_usd_per_gigabyte_month:g} per GB-month."
        )
    elif report.rate_unavailable:
        notes.append(f"No cost shown: {report.rate_unavailable}.")
    out.print_table(table, "\n".join(notes) or None)


# -- checkpoint prune ------------------------------------------------------------------------


@click.command("prune")
@click.option(
    "--keep-last",
    type=click.IntRange(min=0),
    metavar="N",
    help="Keep the newest N checkpoints (by time) of each run.",
)
@click.option(
    "--older-than",
    callback=_duration,
    metavar="DURATION",
    help="Only remove checkpoints older than this: 30d, 12h, 2w, 1d12h.",
)
@click.option(
    "--type",
    "checkpoint_type",
    type=click.Choice(sorted(_TYPES)),
    help="Only checkpoints of this type (the newest N are counted among them).",
)
@click.option(
    "--run-id",
    "run_ids",
    multiple=True,
    callback=_run_ids,
    help="Only this run (repeat); default: all.",
)
@click.option(
    "--keep-public/--include-public",
    default=True,
    show_default=True,
    help="Never prune published checkpoints, unless --include-public.",
)
@click.option(
    "--set-ttl",
    "ttl_seconds",
    callback=_ttl_duration,
    metavar="DURATION",
    help="Instead of deleting, let the service expire them after this long (1h to 10 years).",
)
@click.option("--dry-run", is_flag=True, help="Only print the plan; change nothing.")
@click.option("-y", "--yes", is_flag=True, help="Go ahead without asking.")
@format_option
@pass_settings
def prune(
    settings: Settings,
    keep_last: int | None,
    older_than: datetime.timedelta | None,
    checkpoint_type: str | None,
    run_ids: tuple[str, ...],
    keep_public: bool,
    ttl_seconds: int | None,
    dry_run: bool,
    yes: bool,
) -> None:
    """Apply a retention policy: delete the checkpoints it does not keep.

    Prints the plan first (what goes, what stays, the bytes freed) and asks, unless --yes;
    --dry-run only prints it. Deletes in parallel; a checkpoint already gone counts as done;
    failures are listed and the exit status is 1. Running the same command again after an
    interruption finishes the job.

    \b
    Examples:
      tinker-rest checkpoint prune --keep-last 3 --dry-run
      tinker-rest checkpoint prune --older-than 30d --type training --yes
      tinker-rest checkpoint prune --keep-last 1 --run-id sess-7f3a:train:0 --set-ttl 7d
    """
    if keep_last is None and older_than is None:
        raise click.UsageError("give --keep-last, --older-than or both")
    policy = _storage.RetentionPolicy(
        keep_last=keep_last,
        older_than=older_than,
        checkpoint_type=_TYPES[checkpoint_type] if checkpoint_type else None,
        training_run_ids=frozenset(run_ids) if run_ids else None,
        keep_public=keep_public,
    )
    client = settings.client()
    rate = _storage.storage_rate(client)  # beside the listing; prices the bytes freed
    with _bar("Listing checkpoints") as progress:
        checkpoints = _storage.list_checkpoints(client, run_ids or None, progress, owned=True)
    plan = _storage.plan_prune(
        checkpoints, policy, rate_usd_per_gigabyte_month=rate().usd_per_gigabyte_month
    )
    verb = "expire" if ttl_seconds is not None else "delete"
    _show_plan(settings, plan, verb)
    if dry_run or not plan.delete:
        if settings.json:
            out.echo_json(
                out.to_json(
                    _storage.PruneResult(
                        plan=plan, done=(), failed=(), dry_run=dry_run, set_ttl_seconds=ttl_seconds
                    )
                )
            )
        elif not plan.delete:
            click.echo("Nothing to prune.")
        return
    summary = _summary(plan.delete, plan.rate_usd_per_gigabyte_month)
    if not yes and not click.confirm(f"{verb.capitalize()} {summary}?", default=False, err=True):
        if settings.json:
            out.echo_json(
                out.to_json(
                    _storage.PruneResult(plan=plan, done=(), failed=(), set_ttl_seconds=ttl_seconds)
                )
            )
        out.note("Nothing changed.")
        return
    with _bar("Deleting" if ttl_seconds is None else "Setting expiry") as progress:
        result = _storage.carry_out(client, plan, set_ttl_seconds=ttl_seconds, progress=progress)
    for path, exc in result.failed:
        click.echo(f"Error: could not {verb} {path}: {exc}", err=True)
    if settings.json:
        out.echo_json(out.to_json(result))
    else:
        done = {*result.done}
        size = out.human_size(
            sum(out.checkpoint_size(c) or 0 for c in plan.delete if c.tinker_path in done)
        )
        what = f"Deleted {len(done)} of {len(plan.delete)} checkpoints ({size} freed)."
        if ttl_seconds is not None:
            what = f"Set {len(done)} of {len(plan.delete)} checkpoints to expire ({size})."
        click.echo(what)
    if result.stopped is not None:
        out.note(
            f"Stopped early ({result.stopped}); {len(result.not_attempted)} not attempted. "
            "Run the same command again to finish."
        )
        if result.stopped == "interrupted":
            raise click.exceptions.Exit(130)
    if not result.ok:
        raise click.exceptions.Exit(1)


def _summary(checkpoints: Sequence[Checkpoint], rate: float | None = None) -> str:
    size = sum(out.checkpoint_size(c) or 0 for c in checkpoints)
    count = len(checkpoints)
    cost = "" if rate is None else f", {out.usd(_storage.monthly_cost(size, rate))}/month"
    return f"{count} checkpoint{'s' * (count != 1)}, {out.human_size(size)}{cost}"


def _show_plan(settings: Settings, plan: _storage.PrunePlan, verb: str) -> None:
    """The plan for people, one row a run: how many go and stay, and the bytes freed.

    A row a run rather than a checkpoint: a prune of thousands stays readable (and a rich
    table of 2,700 rows took 10 s to draw); ``-f json`` lists every path.
    """
    runs: dict[str, list[list[Checkpoint]]] = {}
    for index, group in enumerate((plan.delete, plan.keep)):
        for ckpt in group:
            runs.setdefault(_storage.run_of(ckpt), [[], []])[index].append(ckpt)
    rate = plan.rate_usd_per_gigabyte_month
    table = Table(title=f"To {verb}: {_summary(plan.delete, rate)}", title_justify="left")
    rows = sorted(runs.items(), key=lambda item: (-len(item[1][0]), item[0]))
    table.add_column("Training run", overflow="fold")
    table.add_column(f"To {verb}", justify="right")
    table.add_column("Size", justify="right")
    table.add_column("To keep", justify="right")
    table.add_column("Oldest kept")
    for run, (gone, kept) in rows[:PLAN_ROWS]:
        table.add_row(
            run,
            str(len(gone)),
            out.human_size(sum(out.checkpoint_size(c) or 0 for c in gone)),
            str(len(kept)),
            out.relative_time(min((c.time for c in kept), default=None)),
        )
    console = out.stderr() if settings.json else out.stdout()
    console.print(table)
    if len(rows) > PLAN_ROWS:
        console.print(f"... and {len(rows) - PLAN_ROWS} more runs; -f json lists every path.")
    console.print(f"To keep: {_summary(plan.keep, rate)} (in scope of the policy).", soft_wrap=True)

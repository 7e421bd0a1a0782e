"""``tinker-rest run list`` and ``run info``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import click
from rich.table import Table

from tinker_rest.cli import _output as out
from tinker_rest.cli._context import (
    Settings,
    access_scope_option,
    format_option,
    limit_option,
    pass_settings,
)
from tinker_rest.cli._context import scope as ctx_scope
from tinker_rest.types import Checkpoint, TrainingRun, TrainingRunsResponse


@dataclasses.dataclass(frozen=True)
class Column:
    """One column ``run list`` can show."""

    header: str
    value: Callable[[TrainingRun], str]
    fold: bool = False


def _checkpoint(ckpt: object) -> str:
    return (
        "-"
        if not isinstance(ckpt, Checkpoint)
        else f"{ckpt.checkpoint_id} ({out.relative_time(ckpt.time)})"
    )


def _lora(run: TrainingRun) -> str:
    if not run.is_lora:
        return "full"
    return f"LoRA {run.lora_rank}" if run.lora_rank is not None else "LoRA"


COLUMNS: dict[str, Column] = {
    "id": Column("Training run", lambda r: r.training_run_id, fold=True),
    "base_model": Column("Base model", lambda r: r.base_model, fold=True),
    "owner": Column("Owner", lambda r: r.model_owner, fold=True),
    "lora": Column("Fine-tuning", _lora),
    "last_request": Column("Last request", lambda r: out.relative_time(r.last_request_time)),
    "last_checkpoint": Column("Last checkpoint", lambda r: _checkpoint(r.last_checkpoint)),
    "last_sampler_checkpoint": Column(
        "Last sampler checkpoint", lambda r: _checkpoint(r.last_sampler_checkpoint)
    ),
    "status": Column("Status", lambda r: "corrupted" if r.corrupted else "ok"),
    "metadata": Column("Metadata", lambda r: out.metadata(r.user_metadata)),
}
DEFAULT_COLUMNS = ("id", "base_model", "lora", "last_request", "last_checkpoint", "status")


def _parse_columns(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_COLUMNS
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in COLUMNS]
    if unknown or not names:
        raise click.BadParameter(
            f"unknown column {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(COLUMNS)}"
        )
    return names


@click.group("run")
def run_group() -> None:
    """Training runs: list them and look at one."""


@run_group.command("list")
@limit_option(20, "training runs")
@access_scope_option
@click.option(
    "--columns",
    callback=_parse_columns,
    metavar="NAME,...",
    help=f"Table columns, comma-separated, from: {', '.join(COLUMNS)}. "
    f"[default: {','.join(DEFAULT_COLUMNS)}]",
)
@format_option
@pass_settings
def run_list(settings: Settings, limit: int, access_scope: str, columns: tuple[str, ...]) -> None:
    """List your training runs, most recently used first.

    \b
    Examples:
      tinker-rest run list --limit 0
      tinker-rest run list --access-scope accessible --columns id,owner,base_model
    """
    client = settings.client()
    scope = ctx_scope(access_scope)

    def read(page: TrainingRunsResponse) -> tuple[list[TrainingRun], int | None]:
        return page.training_runs, page.cursor.total_count

    runs, total = out.fetch_listing(
        lambda size, offset: client.list_training_runs(size, offset, scope),
        read,
        limit,
        "training runs",
    )
    if settings.json:
        out.echo_json({"training_runs": [out.any_json(r) for r in runs], "total_count": total})
        return
    table = Table(title=out.title("Training runs", len(runs), total), title_justify="left")
    for name in columns:
        column = COLUMNS[name]
        table.add_column(column.header, overflow="fold" if column.fold else "ellipsis")
    for run in runs:
        table.add_row(*(COLUMNS[name].value(run) for name in columns))
    out.print_table(table, out.more_hint(len(runs), total))


@run_group.command("info")
@click.argument("training_run_id")
@access_scope_option
@format_option
@pass_settings
def run_info(settings: Settings, training_run_id: str, access_scope: str) -> None:
    """Show one training run: its model, owner and latest checkpoints.

    \b
    Example:
      tinker-rest run info sess-7f3a:train:0
    """
    scope = ctx_scope(access_scope)
    run = settings.client().get_training_run(training_run_id, scope).result()
    if settings.json:
        out.echo_json(out.any_json(run))
        return
    rows = [
        ("Training run", run.training_run_id),
        ("Base model", run.base_model),
        ("Owner", run.model_owner),
        ("Fine-tuning", _lora(run)),
        ("Status", "corrupted" if run.corrupted else "ok"),
        ("Last request", out.timestamp(run.last_request_time)),
        ("Last checkpoint", _path_and_time(run.last_checkpoint)),
        ("Last sampler checkpoint", _path_and_time(run.last_sampler_checkpoint)),
        ("Metadata", out.metadata(run.user_metadata)),
    ]
    out.print_table(out.details_table(rows))


def _path_and_time(ckpt: object) -> str:
    return (
        "-"
        if not isinstance(ckpt, Checkpoint)
        else f"{ckpt.tinker_path}\n{out.timestamp(ckpt.time)}"
    )

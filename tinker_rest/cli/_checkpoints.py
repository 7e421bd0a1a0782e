"""``tinker-rest checkpoint``: list, info, publish, unpublish, set-ttl, delete, download, push-hf.

``push-hf`` itself lives in :mod:`tinker_rest.cli._hub`.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from tinker_rest._client import RestClient
from tinker_rest._errors import (
    APIStatusError,
    AuthenticationError,
    NotFoundError,
    TinkerRestError,
)
from tinker_rest._futures import APIFuture
from tinker_rest._paths import TinkerPath
from tinker_rest._storage import CHECKPOINT_TYPE_NAMES, TTL_RANGE
from tinker_rest.cli import _output as out
from tinker_rest.cli._context import (
    TINKER_PATH,
    Settings,
    format_option,
    limit_option,
    pass_settings,
)
from tinker_rest.cli._hub import push_hf
from tinker_rest.types import Checkpoint, CheckpointsListResponse, WeightsInfoResponse

# The service's bounds on a checkpoint's time to live, checked here before any request.
TTL_MIN, TTL_MAX = TTL_RANGE

# --type accepts the checkpoint types and the kinds of tinker paths alike.
_TYPES = CHECKPOINT_TYPE_NAMES


@click.group("checkpoint")
def checkpoint_group() -> None:
    """Checkpoints: list, inspect, publish, expire, delete, download and push them to the Hub.

    A checkpoint is named by its tinker path, tinker://<run id>/<kind>/<name>, where the kind
    is weights, sampler_weights or external_weights.
    """


# -- list and info -----------------------------------------------------------------------------


@checkpoint_group.command("list")
@click.option("--run-id", help="Only this training run's checkpoints (all of them).")
@limit_option(20, "checkpoints (without --run-id)")
@format_option
@pass_settings
def checkpoint_list(settings: Settings, run_id: str | None, limit: int) -> None:
    """List checkpoints: one run's, or all of yours, newest first.

    \b
    Examples:
      tinker-rest checkpoint list --run-id sess-7f3a:train:0
      tinker-rest checkpoint list --limit 0 -f json
    """
    client = settings.client()
    if run_id is not None:
        checkpoints = client.list_checkpoints(run_id).result().checkpoints
        total: int | None = len(checkpoints)
        heading = f"Checkpoints of {run_id}"
    else:

        def read(page: CheckpointsListResponse) -> tuple[list[Checkpoint], int | None]:
            return page.checkpoints, page.cursor.total_count if page.cursor else None

        checkpoints, total = out.fetch_listing(
            lambda size, offset: client.list_user_checkpoints(size, offset),
            read,
            limit,
            "checkpoints",
        )
        heading = "Checkpoints"
    if settings.json:
        data: dict[str, Any] = {} if run_id is None else {"run_id": run_id}
        data["checkpoints"] = [out.to_json(c) for c in checkpoints]
        data["total_count"] = total  # tinker-rest's addition
        out.echo_json(data)
        return
    table = out.checkpoint_table(checkpoints, out.title(heading, len(checkpoints), total))
    out.print_table(table, out.more_hint(len(checkpoints), total))


@checkpoint_group.command("info")
@click.argument("tinker_path", type=TINKER_PATH)
@format_option
@pass_settings
def checkpoint_info(settings: Settings, tinker_path: TinkerPath) -> None:
    """Show one checkpoint: size, visibility, expiry and the model it holds.

    Works for your own checkpoints and, with fewer details, for published ones.

    \b
    Example:
      tinker-rest checkpoint info tinker://sess-7f3a:train:0/weights/0001
    """
    client = settings.client()
    listing = client.list_checkpoints(tinker_path.training_run_id)
    weights = client.get_weights_info_by_tinker_path(str(tinker_path))
    ckpt = _find(listing, tinker_path)
    info: WeightsInfoResponse | None
    try:
        info = weights.result()
    except NotFoundError:
        if ckpt is None:
            raise
        info = None
    if settings.json:
        data: dict[str, Any] = (
            out.to_json(ckpt) if ckpt is not None else {"tinker_path": str(tinker_path)}
        )
        # The official shape: the checkpoint plus the run's is_lora and lora_rank; the
        # weights' own description is tinker-rest's addition.
        data["is_lora"] = info.is_lora if info is not None else None
        data["lora_rank"] = info.lora_rank if info is not None else None
        data["weights_info"] = out.to_json(info) if info is not None else None
        out.echo_json(data)
        return
    rows = [("Tinker path", str(tinker_path)), ("Type", tinker_path.checkpoint_type)]
    if ckpt is not None:
        rows += [
            ("Size", out.human_size(out.checkpoint_size(ckpt))),
            ("Public", "yes" if ckpt.public else "no"),
            ("Created", out.timestamp(ckpt.time)),
            (
                "Expires",
                "Never" if (e := out.checkpoint_expiry(ckpt)) is None else out.timestamp(e),
            ),
            ("Metadata", out.metadata(ckpt.user_metadata)),
        ]
    if info is not None:
        rows += [
            ("Base model", info.base_model),
            ("LoRA", f"Yes (Rank {info.lora_rank})" if info.is_lora else "No"),
        ]
    out.print_table(out.details_table(rows))


def _find(listing: APIFuture[CheckpointsListResponse], path: TinkerPath) -> Checkpoint | None:
    """The checkpoint in its run's listing; None when the run is not the caller's to list."""
    try:
        checkpoints = listing.result().checkpoints
    except NotFoundError:
        return None
    return next((c for c in checkpoints if c.checkpoint_id == path.checkpoint_id), None)


# -- publish, unpublish, set-ttl ---------------------------------------------------------------


@checkpoint_group.command("publish")
@click.argument("tinker_path", type=TINKER_PATH)
@format_option
@pass_settings
def checkpoint_publish(settings: Settings, tinker_path: TinkerPath) -> None:
    """Make a checkpoint public, so that anyone with its path can use it.

    Prints nothing on success, as the official CLI does; `checkpoint info` shows the result.
    """
    settings.client().publish_checkpoint_from_tinker_path(str(tinker_path)).result()


@checkpoint_group.command("unpublish")
@click.argument("tinker_path", type=TINKER_PATH)
@format_option
@pass_settings
def checkpoint_unpublish(settings: Settings, tinker_path: TinkerPath) -> None:
    """Make a public checkpoint private again. Prints nothing on success."""
    settings.client().unpublish_checkpoint_from_tinker_path(str(tinker_path)).result()


@checkpoint_group.command("set-ttl")
@click.argument("tinker_path", type=TINKER_PATH)
@click.option(
    "--ttl",
    "ttl_seconds",
    type=click.IntRange(TTL_MIN, TTL_MAX),
    metavar="SECONDS",
    help=f"Expire this many seconds from now: {TTL_MIN} (an hour) to {TTL_MAX} (ten years).",
)
@click.option("--remove", is_flag=True, help="Remove the expiry: keep the checkpoint for good.")
@format_option
@pass_settings
def checkpoint_set_ttl(
    settings: Settings, tinker_path: TinkerPath, ttl_seconds: int | None, remove: bool
) -> None:
    """Set when a checkpoint expires (--ttl SECONDS), or remove its expiry (--remove).

    Prints nothing on success, as the official CLI does.

    \b
    Examples:
      tinker-rest checkpoint set-ttl tinker://sess-7f3a:train:0/weights/0001 --ttl 86400
      tinker-rest checkpoint set-ttl tinker://sess-7f3a:train:0/weights/0001 --remove
    """
    if (ttl_seconds is None) == (not remove):
        raise click.UsageError("give exactly one of --ttl SECONDS and --remove")
    settings.client().set_checkpoint_ttl_from_tinker_path(str(tinker_path), ttl_seconds).result()


# -- delete ------------------------------------------------------------------------------------


def _moment(_ctx: click.Context, _param: click.Parameter, value: str | None) -> object:
    """``2026-01-15`` or ``2026-01-15T10:00:00[+01:00]``; a time without a zone is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date or time such as 2026-01-15 or 2026-01-15T10:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


@checkpoint_group.command("delete")
@click.argument("tinker_paths", nargs=-1, type=TINKER_PATH, metavar="[TINKER_PATH]...")
@click.option("--run-id", help="Delete this training run's checkpoints (filtered as below).")
@click.option(
    "--type",
    "checkpoint_type",
    type=click.Choice(sorted(_TYPES)),
    help="With --run-id: only checkpoints of this type.",
)
@click.option(
    "--before",
    callback=_moment,
    metavar="DATE",
    help="With --run-id: only those created before this date or time (UTC unless given).",
)
@click.option(
    "--after",
    callback=_moment,
    metavar="DATE",
    help="With --run-id: only those created after this date or time (UTC unless given).",
)
@click.option("-y", "--yes", is_flag=True, help="Delete without asking for confirmation.")
@format_option
@pass_settings
def checkpoint_delete(
    settings: Settings,
    tinker_paths: tuple[TinkerPath, ...],
    run_id: str | None,
    checkpoint_type: str | None,
    before: datetime.datetime | None,
    after: datetime.datetime | None,
    yes: bool,
) -> None:
    """Delete checkpoints, named by their paths or chosen from one run by filters.

    Shows what will be deleted, with sizes and the total, and asks before deleting unless -y.
    Deletes in parallel; reports each failure and exits with 1 if any failed.

    \b
    Examples:
      tinker-rest checkpoint delete tinker://sess-7f3a:train:0/weights/0001
      tinker-rest checkpoint delete --run-id sess-7f3a:train:0 --type weights --before 2026-01-01
    """
    if bool(tinker_paths) == (run_id is not None):
        raise click.UsageError("give either tinker paths or --run-id, not both and not neither")
    if run_id is None and (checkpoint_type or before or after):
        raise click.UsageError("--type, --before and --after filter --run-id; add --run-id")
    client = settings.client()
    failures: list[tuple[str, TinkerRestError]] = []
    if run_id is not None:
        chosen = _select(client, run_id, checkpoint_type, before, after)
    else:
        chosen, failures = _look_up(client, tinker_paths)
    if not chosen:
        _report_failures(failures)
        if settings.json:
            out.echo_json(_delete_result([], failures))
        else:
            click.echo("No checkpoints to delete.")
        if failures:
            raise click.exceptions.Exit(1)
        return

    total = sum(out.checkpoint_size(c) or 0 for c in chosen)
    summary = f"{len(chosen)} checkpoint{'s' * (len(chosen) != 1)}, {out.human_size(total)}"
    table = out.checkpoint_table(chosen, f"To delete: {summary}")
    if settings.json:
        out.stderr().print(table)
    else:
        out.stdout().print(table)
    if not yes and not click.confirm(f"Delete {summary}?", default=False, err=True):
        note = "Nothing deleted."
        if settings.json:
            out.echo_json(_delete_result([], failures))
            out.note(note)
        else:
            click.echo(note)
        return

    paths = [c.tinker_path for c in chosen]
    futures = [client.delete_checkpoint_from_tinker_path(p) for p in paths]
    deleted: list[str] = []
    for index, future in out.gather(futures, "Deleting"):
        try:
            future.result()
        except AuthenticationError:
            raise
        except TinkerRestError as exc:
            failures.append((paths[index], exc))
        else:
            deleted.append(paths[index])
    deleted.sort(key=paths.index)
    _report_failures(failures)
    freed = sum(out.checkpoint_size(c) or 0 for c in chosen if c.tinker_path in deleted)
    if settings.json:
        out.echo_json(_delete_result(deleted, failures))
    else:
        click.echo(
            f"Deleted {len(deleted)} of {len(chosen)} checkpoints ({out.human_size(freed)})."
        )
    if failures:
        raise click.exceptions.Exit(1)


def _select(
    client: RestClient,
    run_id: str,
    checkpoint_type: str | None,
    before: datetime.datetime | None,
    after: datetime.datetime | None,
) -> list[Checkpoint]:
    """The run's checkpoints that pass every filter given."""
    wanted = _TYPES[checkpoint_type] if checkpoint_type else None
    return [
        c
        for c in client.list_checkpoints(run_id).result().checkpoints
        if (wanted is None or str(c.checkpoint_type) == wanted)
        and (before is None or c.time < before)
        and (after is None or c.time > after)
    ]


def _look_up(
    client: RestClient, paths: Sequence[TinkerPath]
) -> tuple[list[Checkpoint], list[tuple[str, TinkerRestError]]]:
    """The checkpoints the paths name, from their runs' listings; the paths not found."""
    unique = list(dict.fromkeys(paths))
    listings = {
        run: client.list_checkpoints(run)
        for run in dict.fromkeys(p.training_run_id for p in unique)
    }
    found: list[Checkpoint] = []
    missing: list[tuple[str, TinkerRestError]] = []
    for path in unique:
        try:
            listing = listings[path.training_run_id].result().checkpoints
        except AuthenticationError:
            raise
        except TinkerRestError as exc:
            missing.append((str(path), exc))
            continue
        ckpt = next((c for c in listing if c.checkpoint_id == path.checkpoint_id), None)
        if ckpt is None:
            missing.append((str(path), TinkerRestError("checkpoint not found")))
        else:
            found.append(ckpt)
    return found, missing


def _report_failures(failures: Sequence[tuple[str, TinkerRestError]]) -> None:
    for path, exc in failures:
        click.echo(f"Error: could not delete {path}: {_reason(exc)}", err=True)


def _reason(exc: TinkerRestError) -> str:
    if isinstance(exc, APIStatusError):
        return f"{exc.detail or exc.response.reason_phrase} (HTTP {exc.status_code})"
    return str(exc)


def _delete_result(
    deleted: Sequence[str], failures: Sequence[tuple[str, TinkerRestError]]
) -> dict[str, object]:
    """The official shape, ``{"deleted_count", "failed": [{"tinker_path", "error"}]}``, with
    tinker-rest's additions: the paths deleted, and each failure's status code."""
    return {
        "deleted_count": len(deleted),
        "failed": [
            {
                "tinker_path": path,
                "error": exc.detail if isinstance(exc, APIStatusError) and exc.detail else str(exc),
                "status_code": exc.status_code if isinstance(exc, APIStatusError) else None,
            }
            for path, exc in failures
        ],
        "deleted": list(deleted),
    }


# -- download ----------------------------------------------------------------------------------


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _byte_size(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    """``500M``, ``20G`` or a plain number of bytes (binary units; a trailing ``iB``/``B`` ok)."""
    if value is None:
        return None
    text = value.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = (text[:-1], text[-1]) if text[-1:] in _SIZE_UNITS else (text, "")
    try:
        size = float(number) * _SIZE_UNITS[unit]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a size such as 500M, 20G or 1048576") from None
    if size < 1:
        raise click.BadParameter(f"{value!r}: the size must be at least 1 byte")
    return int(size)


@checkpoint_group.command("download")
@click.argument("tinker_path", type=TINKER_PATH)
@click.option(
    "-o",
    "--output",
    "output_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The directory to download into; made if missing.",
)
@click.option("--force", is_flag=True, help="Replace the files of an earlier download.")
@click.option("--no-extract", is_flag=True, help="Keep the archive as a .tar file; do not unpack.")
@click.option(
    "--max-unpacked-size",
    callback=_byte_size,
    metavar="SIZE",
    help="The most the unpacked files may hold, e.g. 50G.  "
    "[default: 4x the archive, at least 16 MiB]",
)
@format_option
@pass_settings
def checkpoint_download(
    settings: Settings,
    tinker_path: TinkerPath,
    output_dir: Path,
    force: bool,
    no_extract: bool,
    max_unpacked_size: int | None,
) -> None:
    """Download a checkpoint's files into a directory named after it.

    The files go to OUTPUT/<run id>_<kind>_<name>/ (or that name with .tar under
    --no-extract). A broken or stalled connection is resumed at once; after Ctrl-C or a
    failure, running the same command again resumes from the .part file it left, if the
    service still serves the same archive (otherwise it starts again). The archive is checked
    and unpacked safely: links, devices, sparse files, colliding names, paths leaving the
    directory and archives unpacking beyond --max-unpacked-size are refused.

    \b
    Example:
      tinker-rest checkpoint download tinker://sess-7f3a:train:0/weights/0001 -o models
    """
    client = settings.client()
    with out.DownloadDisplay(str(tinker_path)) as display:
        where = client.download_checkpoint(
            str(tinker_path),
            output_dir,
            extract=not no_extract,
            force=force,
            progress=display.progress,
            on_event=display.event,
            max_unpacked_bytes=max_unpacked_size,
        )
    if settings.json:
        size = sum(p.stat().st_size for p in where.rglob("*") if p.is_file())
        out.echo_json(
            {
                "checkpoint_path": str(tinker_path),
                "destination": str(where),
                "file_size_bytes": where.stat().st_size if no_extract else size,
                "extracted": not no_extract,  # tinker-rest's addition
            }
        )
    else:
        click.echo(f"Downloaded {tinker_path} to {where}")


checkpoint_group.add_command(push_hf)

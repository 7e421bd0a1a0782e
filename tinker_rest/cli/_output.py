"""How results look: rich tables for people, JSON for scripts, progress bars on stderr."""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from tinker_rest._futures import APIFuture
from tinker_rest.types import Checkpoint

if TYPE_CHECKING:
    from tinker_rest._download import DownloadEvent

T = TypeVar("T")
P = TypeVar("P")

PAGE_SIZE = 100
_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def stdout() -> Console:
    """A console on standard output, made per command so it follows redirections.

    No markup, emoji or highlighting: values are shown as they are (run ids hold ``:train:``,
    which rich would otherwise turn into an emoji).
    """
    return Console(highlight=False, markup=False, emoji=False)


def stderr() -> Console:
    """A console on standard error, for progress bars and notes that must not mix with data."""
    return Console(stderr=True, highlight=False, markup=False, emoji=False)


def note(text: str) -> None:
    """A line for the person at the terminal, on stderr, so it never spoils piped output."""
    stderr().print(text, soft_wrap=True)


def echo_json(data: object) -> None:
    """Print one JSON document: datetimes in ISO 8601, keys in the order given."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default))


def _json_default(value: object) -> object:
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def human_size(size: int | None) -> str:
    """``1536`` → ``1.5 KiB``; unknown → ``-``."""
    if size is None:
        return "-"
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            break
    return f"{value:.1f} {unit}"


def usd(amount: float | None) -> str:
    """``$1.23``; below a cent two significant digits (``$0.0042``); unknown → ``-``."""
    if amount is None:
        return "-"
    return f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.2g}"


def relative_time(when: datetime.datetime | None, now: datetime.datetime | None = None) -> str:
    """``3 hours ago`` or ``in 2 days``; unknown → ``-``."""
    if when is None:
        return "-"
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    now = now or datetime.datetime.now(datetime.UTC)
    seconds = (when - now).total_seconds()
    span = abs(seconds)
    if span < 45:
        return "just now"
    count, unit = 0, "year"
    for limit, size, name in (
        (90 * 60, 60, "minute"),
        (36 * 3600, 3600, "hour"),
        (45 * 86400, 86400, "day"),
        (365 * 86400, 30 * 86400, "month"),
        (float("inf"), 365 * 86400, "year"),
    ):
        if span < limit:
            count, unit = max(round(span / size), 1), name
            break
    text = f"{count} {unit}{'' if count == 1 else 's'}"
    return f"in {text}" if seconds > 0 else f"{text} ago"


def timestamp(when: datetime.datetime | None) -> str:
    """A relative time with the exact UTC time beside it, for detail views."""
    if when is None:
        return "-"
    exact = when.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{relative_time(when)} ({exact})"


def expiry(when: datetime.datetime | None) -> str:
    """``Never`` for a checkpoint that does not expire, else when it does."""
    return "Never" if when is None else relative_time(when)


def title(what: str, shown: int, total: int | None) -> str:
    """``Training runs (20 of 57)``, or ``(3)`` when all are shown."""
    if total is None or total <= shown:
        return f"{what} ({shown})"
    return f"{what} ({shown} of {total})"


def more_hint(shown: int, total: int | None) -> str | None:
    """What to type to see the rest, when some are not shown."""
    if total is None or total <= shown:
        return None
    return f"{total - shown} more not shown; use --limit 0 to show all, or --limit N."


def print_table(table: Table, hint: str | None = None) -> None:
    """Print a table on stdout and, under it, a hint on stderr."""
    stdout().print(table)
    if hint:
        note(hint)


def details_table(rows: Sequence[tuple[str, str]], heading: str | None = None) -> Table:
    """A two-column table of names and values, for one resource."""
    table = Table(title=heading, show_header=False, title_justify="left")
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in rows:
        table.add_row(name, value)
    return table


def checkpoint_table(checkpoints: Sequence[Checkpoint], heading: str) -> Table:
    """Checkpoints, one a row: path, type, size, visibility, age and expiry."""
    table = Table(title=heading, title_justify="left")
    table.add_column("Tinker path", overflow="fold")
    table.add_column("Type")
    table.add_column("Size", justify="right")
    table.add_column("Public")
    table.add_column("Created")
    table.add_column("Expires")
    for ckpt in checkpoints:
        table.add_row(
            ckpt.tinker_path,
            str(ckpt.checkpoint_type),
            human_size(_size(ckpt)),
            "yes" if ckpt.public else "no",
            relative_time(ckpt.time),
            expiry(_expires(ckpt)),
        )
    return table


def _size(ckpt: Checkpoint) -> int | None:
    value = ckpt.size_bytes
    return value if isinstance(value, int) else None


def _expires(ckpt: Checkpoint) -> datetime.datetime | None:
    value = ckpt.expires_at
    return value if isinstance(value, datetime.datetime) else None


checkpoint_size = _size
checkpoint_expiry = _expires


def metadata(value: object) -> str:
    """User metadata as ``key=value`` lines, or ``-``."""
    data = to_json(value)
    if not isinstance(data, dict) or not data:
        return "-"
    return "\n".join(f"{k}={v}" for k, v in data.items())


def count_progress() -> Progress:
    """A progress bar counting things done, on stderr; gone once finished.

    Shown only on a terminal, so logs and captured stderr get no half-drawn bars.
    """
    console = stderr()
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


class DownloadDisplay:
    """Shows a download's phases on stderr: one labelled bar or spinner per phase.

    On a terminal each phase (waiting for the archive to be built, downloading, extracting)
    gets its own bar; elsewhere (logs, captured stderr) each phase and each retry is one line.
    Retries after a stall or a broken connection are always printed, so a frozen bar is
    never silent. Use as a context manager; pass :meth:`progress` and :meth:`event` to
    ``RestClient.download_checkpoint``.
    """

    _LABELS: ClassVar[dict[str, str]] = {
        "waiting": "Waiting for the archive to be built",
        "downloading": "Downloading",
        "extracting": "Extracting",
    }

    def __init__(self, name: str) -> None:
        self.name = name
        self.console = stderr()
        self.bars = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
            disable=not self.console.is_terminal,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> DownloadDisplay:
        self.bars.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.__exit__(None, None, None)

    def event(self, event: DownloadEvent) -> None:
        """A phase starts (a new bar) or a retry is coming (a line above the bars)."""
        if event.phase == "retrying":
            self.console.print(f"{self.name}: {event.message}", soft_wrap=True)
            return
        label = self._LABELS[event.phase]
        if event.phase == "downloading":
            label = event.message  # "Downloading", or "Downloading (resuming at byte N)"
        if self.task is not None:
            self.bars.update(self.task, visible=False)
        self.task = self.bars.add_task(f"{label}: {self.name}", total=event.total)
        if not self.console.is_terminal:
            self.console.print(f"{label}: {self.name}", soft_wrap=True)

    def progress(self, done: int, total: int | None) -> None:
        """Bytes done in the current phase."""
        if self.task is not None:
            self.bars.update(self.task, completed=done, total=total)


def fetch_listing(
    get_page: Callable[[int, int], APIFuture[P]],
    read_page: Callable[[P], tuple[list[T], int | None]],
    limit: int,
    what: str,
) -> tuple[list[T], int | None]:
    """Fetch up to ``limit`` items (0: all) of a paginated listing; return them and the total.

    The first page tells the total; when more pages are needed they are all requested at once
    and a progress bar follows them.
    """
    first_size = min(PAGE_SIZE, limit) if limit else PAGE_SIZE
    items, total = read_page(get_page(first_size, 0).result())
    if total is None or len(items) < first_size:
        return items, total
    wanted = total if limit == 0 else min(limit, total)
    offsets = range(len(items), wanted, PAGE_SIZE)
    if not offsets:
        return items, total
    pages = [get_page(min(PAGE_SIZE, wanted - offset), offset) for offset in offsets]
    with count_progress() as progress:
        task = progress.add_task(f"Listing {what}", total=wanted, completed=len(items))
        for page in pages:
            more, _ = read_page(page.result())
            items.extend(more)
            progress.advance(task, len(more))
    return items[:wanted], total


def gather(futures: Sequence[APIFuture[T]], description: str) -> Iterator[tuple[int, APIFuture[T]]]:
    """Yield ``(index, future)`` as each finishes, with a progress bar when there are several."""
    if not futures:
        return
    index = {id(future): i for i, future in enumerate(futures)}
    bar = count_progress() if len(futures) > 1 else contextlib.nullcontext(None)
    with bar as progress:
        task = progress.add_task(description, total=len(futures)) if progress else None
        for done in concurrent.futures.as_completed(futures):
            yield index[id(done)], done  # type: ignore[misc]
            if progress is not None and task is not None:
                progress.advance(task)


def each(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Pass items through, with a spinner counting them when they come a page at a time."""
    with count_progress() as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)


def to_json(value: Any) -> Any:
    """A result model as JSON data: the one place every command turns a model into JSON.

    Official-SDK-shaped models give ``model_dump(mode="json")``; the generated attrs models
    give their wire JSON (``to_dict``); anything else is returned as it is.
    """
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return model_dump(mode="json")
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else value

"""Where checkpoint storage goes, and retention policies that prune it.

Two jobs built on the listing and delete operations, for :meth:`RestClient.storage_report`,
:meth:`RestClient.prune_checkpoints` and the ``tinker-rest storage`` / ``checkpoint prune``
commands:

- a *storage report*: bytes and checkpoint counts per training run (or per project), biggest
  first, with totals, how many are public and how many already expire, and what they cost a
  month at the storage rate the service reports (:func:`storage_rate`, readable by admins);
- a *prune*: a :class:`RetentionPolicy` turned into a :class:`PrunePlan` (what goes, what
  stays, the bytes freed) by :func:`plan_prune`, a pure function of the listing and the clock,
  then carried out at the client's full concurrency by :func:`carry_out`.

A plan depends only on what is stored now, so running the same policy again after an
interruption plans exactly what is left and finishes the job; a checkpoint already gone (404)
counts as done.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import datetime
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Literal, TypeVar

from tinker_rest._errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    TinkerRestError,
)

if TYPE_CHECKING:
    from tinker_rest._client import RestClient
    from tinker_rest._futures import APIFuture
    from tinker_rest.types import Checkpoint

__all__ = [
    "PrunePlan",
    "PruneResult",
    "RetentionPolicy",
    "StorageReport",
    "StorageRow",
    "parse_duration",
    "plan_prune",
]

T = TypeVar("T")
# The service's storage rate is per gigabyte (10^9 bytes) and month, as its size_gigabytes.
GIGABYTE = 10**9
NO_PROJECT = "(no project)"
SEARCH_PAGE = 200  # the most sessions one search page holds (the spec's maximum)
PAGE_SIZE = 1000  # the most the listing operations return in one page (the spec's maximum)
CHECKPOINT_TYPES = ("training", "sampler", "external")
# The names a checkpoint type goes by: its own, and the kind in its tinker paths.
CHECKPOINT_TYPE_NAMES = {
    **{name: name for name in CHECKPOINT_TYPES},
    "weights": "training",
    "sampler_weights": "sampler",
    "external_weights": "external",
}
Progress = Callable[[int, int | None], None]
"""Called as ``progress(done, total_or_None)`` while a listing or a prune goes on: a listing
reports each page or run, a prune every :data:`PROGRESS_EVERY` seconds and at its end."""

TTL_RANGE = (3600, 315_360_000)  # one hour to ten years, as the service accepts
MAX_DURATION = datetime.timedelta(days=100 * 365)  # no checkpoint is older than a century
STOP_AFTER_CONNECTION_FAILURES = 8  # in a row: the service is gone, the rest would fail too
PROGRESS_EVERY = 0.1  # seconds between progress reports while a prune runs

_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> datetime.timedelta:
    """A duration written as ``30d``, ``12h``, ``90m``, ``2w`` or a combination (``1d12h``).

    Raises:
        ValueError: the text is not such a duration, or it is zero.
    """
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if not parts or _DURATION.sub("", cleaned).strip():
        raise ValueError(
            f"{text!r} is not a duration: write a number and a unit, s m h d or w (e.g. 30d, 12h)"
        )
    seconds = sum(int(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a duration longer than zero")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{text!r} is longer than {MAX_DURATION.days // 365} years")
    return datetime.timedelta(seconds=seconds)


def check_ttl(ttl_seconds: int) -> None:
    """Refuse a TTL the service would refuse, before any request.

    Raises:
        ValueError: not an int from one hour (3600) to ten years (315360000).
    """
    low, high = TTL_RANGE
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int):
        raise ValueError(f"a TTL is a whole number of seconds, not {ttl_seconds!r}")
    if not low <= ttl_seconds <= high:
        raise ValueError(
            f"a TTL must be from {low} s (one hour) to {high} s (ten years), not {ttl_seconds} s"
        )


def _type_of(checkpoint: Checkpoint) -> str:
    value = checkpoint.checkpoint_type
    return str(getattr(value, "value", value))


def _size(checkpoint: Checkpoint) -> int:
    size = checkpoint.size_bytes
    return size if isinstance(size, int) else 0


def _expires(checkpoint: Checkpoint) -> datetime.datetime | None:
    expires = checkpoint.expires_at
    return expires if isinstance(expires, datetime.datetime) else None


def run_of(checkpoint: Checkpoint) -> str:
    run = checkpoint.training_run_id
    return run if isinstance(run, str) else checkpoint.tinker_path.split("/")[2]


# -- listing ---------------------------------------------------------------------------------


def check_run_ids(training_run_ids: Sequence[str] | None) -> list[str] | None:
    """The run ids, each once, after refusing what cannot name a run, before any request.

    Raises:
        TypeError: a single string was given where a sequence of ids belongs.
        ValueError: an id is empty, ``.`` or ``..``, or holds a ``/``.
    """
    if training_run_ids is None:
        return None
    if isinstance(training_run_ids, str):
        raise TypeError(f"training_run_ids is a list of ids, not the string {training_run_ids!r}")
    for run in training_run_ids:
        if not isinstance(run, str) or run in ("", ".", "..") or "/" in run:
            raise ValueError(f"{run!r} is not a training run id")
    return list(dict.fromkeys(training_run_ids))


def list_checkpoints(
    client: RestClient,
    training_run_ids: Sequence[str] | None = None,
    progress: Progress | None = None,
    *,
    owned: bool = False,
) -> list[Checkpoint]:
    """Every checkpoint of the caller's runs, or of the runs named, fetched at full concurrency.

    ``GET /api/v1/checkpoints`` (the first page tells the total and the page size the service
    gives; every other page is asked for at once), or
    ``GET /api/v1/training_runs/{id}/checkpoints`` for each run named. ``progress`` is told
    ``(checkpoints listed, total)``, or ``(runs listed, runs)`` for named runs.

    Checkpoints added or deleted by someone else while the pages are read shift the pages: the
    listing then misses or repeats some (repeats are dropped). For a prune that is safe (a
    checkpoint not listed is neither deleted nor counted as kept, so more are kept, never
    fewer) and running it again finishes the job.

    Raises:
        NotOwnedError: ``owned`` is set and a named run is not the caller's own. A run seen
            through a project lists its checkpoints, but only its owner may delete them, and the
            service answers anyone else's delete with a 404 that would pass for "already gone".
    """
    runs = check_run_ids(training_run_ids)
    if runs is not None:
        owners = [client.get_training_run(run, "owned") for run in runs] if owned else []
        listings = [client.list_checkpoints(run) for run in runs]
        for run, owner in zip(runs, owners, strict=False):
            try:
                owner.result()
            except NotFoundError:
                raise NotOwnedError(
                    f"training run {run} is not one of yours: only a run's owner can prune it"
                ) from None
        found: list[Checkpoint] = []
        for future in _as_done(listings, progress, len(listings)):
            found.extend(future.result().checkpoints)
        return found

    first = client.list_user_checkpoints(PAGE_SIZE, 0).result()
    found = list(first.checkpoints)
    total = first.cursor.total_count if first.cursor else None
    step = len(found)  # the service may give fewer than asked for in a page
    if progress is not None:
        progress(len(found), total)
    if total is None or step == 0 or step >= total:
        return found
    offsets = range(step, total, step)
    pages = [client.list_user_checkpoints(step, offset) for offset in offsets]
    for offset, future in zip(offsets, pages, strict=True):  # in order: newest first
        items = list(future.result().checkpoints)
        found.extend(items)
        # A short page before the end (checkpoints deleted meanwhile): read on from there.
        end, at = min(offset + step, total), offset
        while items and at + len(items) < end:
            at += len(items)
            items = list(client.list_user_checkpoints(end - at, at).result().checkpoints)
            found.extend(items)
        if progress is not None:
            progress(min(len(found), total), total)
    return list({c.tinker_path: c for c in found}.values())  # each once


class NotOwnedError(TinkerRestError):
    """A prune named a training run that is not the caller's own."""


def run_projects(client: RestClient) -> dict[str, str]:
    """The project of every training run in a project that the caller can see.

    ``POST /api/v1/sessions/search`` (every page), then ``GET /api/v1/sessions/{id}``

    The search is of accessible sessions, in pages of the most the service gives
    (:data:`SEARCH_PAGE`); the sessions in a project that hold checkpoints (the search says
    both) are then read all at once, since a session's runs are in its project: a session
    without checkpoints adds nothing to a report, and skipping them saves a request each. Runs
    missing from the answer are in no project.

    Measured against the reference server on loopback (200 sessions, 100 in a project, three
    checkpoints each; 2 busy shared cores, so only ratios within one run mean anything): a
    report by project took 4x to 10x a report by run, nearly all of it the 100 session reads.
    """
    search = {"owner": {"type": "accessible"}, "limit": SEARCH_PAGE}
    in_projects = [
        (summary.session_id, summary.project_id)
        for summary in client.iter_search_sessions(search)
        if summary.project_id and summary.checkpoints_count != 0
    ]
    futures = [client.get_session(session_id, "accessible") for session_id, _ in in_projects]
    projects: dict[str, str] = {}
    for (_, project), future in zip(in_projects, futures, strict=True):
        for run in future.result().training_run_ids:
            projects[run] = project
    return projects


@dataclasses.dataclass(frozen=True)
class StorageRate:
    """The storage rate the service reports, or why there is none."""

    usd_per_gigabyte_month: float | None
    unavailable: str | None = None


def storage_rate(client: RestClient) -> Callable[[], StorageRate]:
    """Ask for the organization's checkpoint storage rate, in USD per gigabyte-month, now.

    ``GET /api/v1/billing/usage/checkpoints/current``

    The operation of :meth:`AdminClient.get_current_checkpoint_storage_usage
    <tinker_rest.AdminClient.get_current_checkpoint_storage_usage>`, sent through ``client`` so
    that a report needs no second client. Only admins may read it: a 403 gives no rate and
    says why. The rate only prices the report, so any other failure (a service without the
    operation, an answer that does not parse) gives no rate either, with the error as the
    reason, rather than losing the report.

    Returns:
        At once, a function that waits for the answer: the request runs beside the listing.
    """
    from tinker_rest_client.api import billing

    answer = client._call(
        billing.get_current_checkpoint_storage_usage.build_request(),
        "CurrentCheckpointStorageUsageResponse",
    )

    def rate() -> StorageRate:
        try:
            value = answer.result().effective_rate_usd_per_gigabyte_month
        except PermissionDeniedError:
            return StorageRate(None, "reading the storage rate needs the admin role")
        except TinkerRestError as exc:
            return StorageRate(None, f"the storage rate could not be read ({exc})")
        if not isinstance(value, int | float):
            return StorageRate(None, "the service reports no storage rate")
        return StorageRate(float(value))

    return rate


def _as_done(
    futures: Sequence[APIFuture[T]], progress: Progress | None, total: int
) -> Iterable[APIFuture[T]]:
    for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
        if progress is not None:
            progress(done, total)
        yield future  # type: ignore[misc]


# -- the storage report ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StorageRow:
    """The checkpoints of one training run (or project, or all of them) and their bytes.

    ``size_bytes`` adds up the sizes the service reports; ``unknown_size`` counts the
    checkpoints it reports none for.
    """

    key: str
    checkpoints: int
    size_bytes: int
    public: int
    expiring: int
    unknown_size: int
    oldest: datetime.datetime | None
    newest: datetime.datetime | None

    def model_dump(self, mode: str = "json") -> dict[str, object]:
        """The row as plain JSON-ready values (``mode`` is pydantic's; any mode gives JSON)."""
        data = dataclasses.asdict(self)
        for name in ("oldest", "newest"):
            value = data[name]
            data[name] = value.isoformat() if isinstance(value, datetime.datetime) else None
        return data


@dataclasses.dataclass(frozen=True)
class StorageReport:
    """Storage per training run or per project, biggest first, with totals.

    The costs are filled only when the service reports a rate
    (``rate_usd_per_gigabyte_month``); ``rate_unavailable`` then says why there is none (the
    rate is readable by admins only).
    """

    by: Literal["run", "project"]
    rows: tuple[StorageRow, ...]
    total: StorageRow
    rate_usd_per_gigabyte_month: float | None = None
    rate_unavailable: str | None = None

    @property
    def estimated_monthly_cost_usd(self) -> float | None:
        """The total's monthly cost at the service's rate, or None without one."""
        return self.cost(self.total)

    def cost(self, row: StorageRow) -> float | None:
        """A row's monthly cost at the service's rate, or None without one."""
        return monthly_cost(row.size_bytes, self.rate_usd_per_gigabyte_month)

    def model_dump(self, mode: str = "json") -> dict[str, object]:
        """The report as plain JSON-ready values; each row with its monthly cost."""
        return {
            "by": self.by,
            "rows": [
                {**row.model_dump(mode), "estimated_monthly_cost_usd": self.cost(row)}
                for row in self.rows
            ],
            "total": {
                **self.total.model_dump(mode),
                "estimated_monthly_cost_usd": self.estimated_monthly_cost_usd,
            },
            "rate_usd_per_gigabyte_month": self.rate_usd_per_gigabyte_month,
            "rate_unavailable": self.rate_unavailable,
            "estimated_monthly_cost_usd": self.estimated_monthly_cost_usd,
        }


def monthly_cost(size_bytes: int, rate: float | None) -> float | None:
    """What ``size_bytes`` cost a month at ``rate`` dollars per gigabyte (10^9 B), or None."""
    return None if rate is None else size_bytes / GIGABYTE * rate


def _row(key: str, checkpoints: Sequence[Checkpoint]) -> StorageRow:
    times = [c.time for c in checkpoints]
    return StorageRow(
        key=key,
        checkpoints=len(checkpoints),
        size_bytes=sum(_size(c) for c in checkpoints),
        public=sum(1 for c in checkpoints if c.public is True),
        expiring=sum(1 for c in checkpoints if _expires(c) is not None),
        unknown_size=sum(1 for c in checkpoints if not isinstance(c.size_bytes, int)),
        oldest=min(times, default=None),
        newest=max(times, default=None),
    )


def build_report(
    checkpoints: Sequence[Checkpoint],
    *,
    by: Literal["run", "project"] = "run",
    projects: dict[str, str] | None = None,
    rate: StorageRate | None = None,
) -> StorageReport:
    """Group checkpoints by run (or by project, through ``projects``: run id -> project id).

    Runs with no project are grouped under :data:`NO_PROJECT`, ``"(no project)"``.
    """
    groups: dict[str, list[Checkpoint]] = defaultdict(list)
    for checkpoint in checkpoints:
        run = run_of(checkpoint)
        key = run if by == "run" else (projects or {}).get(run) or NO_PROJECT
        groups[key].append(checkpoint)
    rows = sorted(
        (_row(key, members) for key, members in groups.items()),
        key=lambda row: (-row.size_bytes, -row.checkpoints, row.key),
    )
    return StorageReport(
        by=by,
        rows=tuple(rows),
        total=_row("total", checkpoints),
        rate_usd_per_gigabyte_month=rate.usd_per_gigabyte_month if rate else None,
        rate_unavailable=rate.unavailable if rate else None,
    )


def storage_report(
    client: RestClient,
    training_run_ids: Sequence[str] | None = None,
    progress: Progress | None = None,
    *,
    by: Literal["run", "project"] = "run",
) -> StorageReport:
    """List the checkpoints, ask for the storage rate and (by project) map runs to projects,
    all at once, and build the report. See :meth:`RestClient.storage_report`.

    Raises:
        ValueError: ``by`` is neither ``"run"`` nor ``"project"``, or a run id is bad.
    """
    if by not in ("run", "project"):
        raise ValueError(f"by must be 'run' or 'project', not {by!r}")
    runs = check_run_ids(training_run_ids)
    rate = storage_rate(client)
    with concurrent.futures.ThreadPoolExecutor(1, "tinker-rest-projects") as mapper:
        # The search pages follow one another (a cursor each); they go beside the listing.
        projects = mapper.submit(run_projects, client) if by == "project" else None
        checkpoints = list_checkpoints(client, runs, progress)
        return build_report(
            checkpoints,
            by=by,
            projects=projects.result() if projects is not None else None,
            rate=rate(),
        )


# -- retention policies ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RetentionPolicy:
    """Which checkpoints a prune removes.

    A checkpoint goes when it is in scope (its type is ``checkpoint_type``, if given; its run
    is one of ``training_run_ids``, if given) and every rule given says it may go:
    ``keep_last``: it is not among the newest N (by time) of its run's checkpoints in scope;
    ``older_than``: it was made more than that long ago. Published checkpoints stay unless
    ``keep_public`` is False. At least one of the two rules must be given.
    """

    keep_last: int | None = None
    older_than: datetime.timedelta | None = None
    checkpoint_type: str | None = None
    training_run_ids: frozenset[str] | None = None
    keep_public: bool = True

    def __post_init__(self) -> None:
        if self.keep_last is None and self.older_than is None:
            raise ValueError("a retention policy needs keep_last, older_than or both")
        if self.keep_last is not None and (
            isinstance(self.keep_last, bool)
            or not isinstance(self.keep_last, int)
            or self.keep_last < 0
        ):
            raise ValueError(f"keep_last must be an int of 0 or more, not {self.keep_last!r}")
        if self.older_than is not None and self.older_than <= datetime.timedelta(0):
            raise ValueError(f"older_than must be longer than zero, not {self.older_than}")
        if self.checkpoint_type is not None and self.checkpoint_type not in CHECKPOINT_TYPES:
            allowed = ", ".join(CHECKPOINT_TYPES)
            raise ValueError(
                f"checkpoint_type must be one of {allowed}, not {self.checkpoint_type!r}"
            )

    def in_scope(self, checkpoint: Checkpoint) -> bool:
        """Whether the policy looks at this checkpoint at all."""
        return (self.checkpoint_type is None or _type_of(checkpoint) == self.checkpoint_type) and (
            self.training_run_ids is None or run_of(checkpoint) in self.training_run_ids
        )


@dataclasses.dataclass(frozen=True)
class PrunePlan:
    """What a policy removes and keeps, in scope, newest first within each run."""

    policy: RetentionPolicy
    now: datetime.datetime
    delete: tuple[Checkpoint, ...]
    keep: tuple[Checkpoint, ...]
    rate_usd_per_gigabyte_month: float | None = None

    @property
    def bytes_freed(self) -> int:
        """The bytes the checkpoints to delete hold (those whose size the service reports)."""
        return sum(_size(c) for c in self.delete)

    @property
    def monthly_cost_freed_usd(self) -> float | None:
        """What the checkpoints to delete cost a month, at the service's rate; None without."""
        return monthly_cost(self.bytes_freed, self.rate_usd_per_gigabyte_month)

    def model_dump(self, mode: str = "json") -> dict[str, object]:
        """The plan as plain JSON-ready values: paths to delete and to keep, bytes freed."""
        return {
            "delete": [c.tinker_path for c in self.delete],
            "keep": [c.tinker_path for c in self.keep],
            "bytes_freed": self.bytes_freed,
            "rate_usd_per_gigabyte_month": self.rate_usd_per_gigabyte_month,
            "estimated_monthly_cost_freed_usd": self.monthly_cost_freed_usd,
        }


def plan_prune(
    checkpoints: Iterable[Checkpoint],
    policy: RetentionPolicy,
    now: datetime.datetime | None = None,
    *,
    rate_usd_per_gigabyte_month: float | None = None,
) -> PrunePlan:
    """Split the checkpoints in the policy's scope into those to delete and those to keep.

    A pure function of the listing and ``now``: the same input always gives the same plan.
    ``rate_usd_per_gigabyte_month`` (the service's storage rate) prices the bytes freed.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    cutoff = None
    if policy.older_than is not None:
        try:
            cutoff = now - policy.older_than
        except OverflowError:  # before year 1: nothing is that old
            cutoff = datetime.datetime.min.replace(tzinfo=datetime.UTC)
    runs: dict[str, list[Checkpoint]] = defaultdict(list)
    for checkpoint in checkpoints:
        if policy.in_scope(checkpoint):
            runs[run_of(checkpoint)].append(checkpoint)
    delete: list[Checkpoint] = []
    keep: list[Checkpoint] = []
    for run in sorted(runs):
        # Newest first; the path breaks ties so that the plan never depends on listing order.
        members = sorted(runs[run], key=lambda c: c.tinker_path, reverse=True)
        members.sort(key=lambda c: c.time, reverse=True)
        for rank, checkpoint in enumerate(members):
            goes = (policy.keep_last is None or rank >= policy.keep_last) and (
                cutoff is None or checkpoint.time < cutoff
            )
            if goes and policy.keep_public and checkpoint.public is True:
                goes = False
            (delete if goes else keep).append(checkpoint)
    return PrunePlan(
        policy=policy,
        now=now,
        delete=tuple(delete),
        keep=tuple(keep),
        rate_usd_per_gigabyte_month=rate_usd_per_gigabyte_month,
    )


@dataclasses.dataclass(frozen=True)
class PruneResult:
    """What a prune did: the plan, the paths done (deleted or given a TTL), and the failures.

    A checkpoint that was already gone (404) counts as done. When the prune stopped early
    (Ctrl-C, the key refused, the service unreachable, the client closed), ``stopped`` says
    why and ``not_attempted`` lists the rest: never sent, or still running when it stopped
    (and so perhaps applied); running the same policy again finishes it.
    """

    plan: PrunePlan
    done: tuple[str, ...]
    failed: tuple[tuple[str, TinkerRestError], ...]
    dry_run: bool = False
    set_ttl_seconds: int | None = None
    not_attempted: tuple[str, ...] = ()
    stopped: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every checkpoint of the plan was dealt with."""
        return not self.failed and not self.not_attempted and self.stopped is None

    def model_dump(self, mode: str = "json") -> dict[str, object]:
        """The result as plain JSON-ready values."""
        return {
            **self.plan.model_dump(mode),
            "dry_run": self.dry_run,
            "action": "set_ttl" if self.set_ttl_seconds is not None else "delete",
            "set_ttl_seconds": self.set_ttl_seconds,
            "done": list(self.done),
            "failed": [{"tinker_path": p, "error": str(e)} for p, e in self.failed],
            "not_attempted": list(self.not_attempted),
            "stopped": self.stopped,
        }


def carry_out(
    client: RestClient,
    plan: PrunePlan,
    *,
    set_ttl_seconds: int | None = None,
    progress: Progress | None = None,
) -> PruneResult:
    """Delete (or give a TTL to) every checkpoint the plan deletes, at the client's full
    concurrency.

    The client bounds how many are in flight; twice that many are submitted at a time. With
    ``set_ttl_seconds``, a checkpoint that already expires sooner than that is left as it is.
    It stops early, cancelling what was not sent, on Ctrl-C, when the key is refused, when the
    client is closed, or after ``STOP_AFTER_CONNECTION_FAILURES`` connection failures in a
    row; the result says so (``stopped``, ``not_attempted``) rather than raising, so what was
    done is never lost.
    """
    targets = list(plan.delete)
    skipped: list[str] = []
    if set_ttl_seconds is not None:
        horizon = plan.now + datetime.timedelta(seconds=set_ttl_seconds)
        skipped = [c.tinker_path for c in targets if (_expires(c) or horizon) < horizon]
        gone = set(skipped)
        targets = [c for c in targets if c.tinker_path not in gone]
    done: list[str] = list(skipped)
    failed: list[tuple[str, TinkerRestError]] = []
    # Submitted in a window of twice what the client runs at once, topped up as calls end:
    # every call submitted at once held a future (eleven objects the cyclic GC tracks) per
    # checkpoint until the end, which the collections went through again and again, and which
    # for 100,000 checkpoints is a million objects. Windowed, a prune of 5,000 against the far
    # bench server took 0.87x the time (old and new code alternating, medians of six).
    running = client._engine.concurrency
    window, low = 2 * running, running
    taken = 0  # targets submitted or refused, in order; the rest were never sent
    paths: list[str] = []  # of the calls submitted, in order
    futures: list[APIFuture[None] | None] = []  # None once its outcome is taken
    index: dict[int, int] = {}  # id(future) -> its position in paths
    # The calls that ended and are not yet looked at, in the order they ended (taken from the
    # left, so that a future is let go once looked at: kept, each held its callback, which
    # held this queue, a cycle that only the GC could free).
    ended: collections.deque[concurrent.futures.Future[None]] = collections.deque()
    ends = 0  # how many calls ended (counted on the engine's thread)
    wake = threading.Event()

    def on_end(future: concurrent.futures.Future[None]) -> None:
        # On the engine's thread: the least work; a wake-up when the window runs low, at the
        # end, or at a failure, which may stop the prune.
        nonlocal ends
        ended.append(future)
        ends += 1
        outstanding = len(paths) - ends
        if (
            (outstanding <= low and taken < len(targets))
            or outstanding == 0
            or (not future.cancelled() and future.exception())
        ):
            wake.set()

    def submit() -> None:
        nonlocal taken
        while len(paths) - seen < window and taken < len(targets):
            path = targets[taken].tinker_path
            try:
                if set_ttl_seconds is None:
                    future = client.delete_checkpoint_from_tinker_path(path)
                else:
                    future = client.set_checkpoint_ttl_from_tinker_path(path, set_ttl_seconds)
            except TinkerRestError as exc:  # a name the client refuses to send (".", "..")
                failed.append((path, exc))
                taken += 1
                continue
            # Recorded before it is counted as taken: a Ctrl-C in between leaves the path
            # among those not attempted (the call may still be applied; running the policy
            # again finds it gone), never out of the result.
            index[id(future)] = len(paths)
            paths.append(path)
            futures.append(future)
            taken += 1
            future.add_done_callback(on_end)

    def outcome(i: int, future: concurrent.futures.Future[None]) -> BaseException | None:
        """Put a finished call's path among the done or the failed; its error, if any."""
        error = future.exception()
        if error is None or isinstance(error, NotFoundError):
            done.append(paths[i])  # a 404: already gone, the storage is freed either way
        elif isinstance(error, TinkerRestError):
            failed.append((paths[i], error))
        return error

    stopped: str | None = None
    failures_in_a_row = 0
    seen = 0  # calls whose outcome was looked at
    try:
        submit()
        while seen < len(paths) and stopped is None:
            # The caller's thread wakes a few times a second, when the window runs low, or
            # at a failure, rather than once per call: woken per call
            # (concurrent.futures.as_completed), it took the GIL from the engine's thread
            # thousands of times a prune (``strace -c``: 4.6 futex calls per call).
            wake.wait(PROGRESS_EVERY)
            wake.clear()
            while ended and stopped is None:
                finished = ended.popleft()
                seen += 1
                i = index.pop(id(finished))
                futures[i] = None
                if finished.cancelled():
                    if client._engine.closed:  # close() cancels the calls not yet running
                        stopped = "the client was closed"
                    continue
                error = outcome(i, finished)
                if isinstance(error, AuthenticationError):
                    stopped = f"the API key was refused: {error}"
                elif isinstance(error, APIConnectionError | APITimeoutError):
                    failures_in_a_row += 1
                    if failures_in_a_row >= STOP_AFTER_CONNECTION_FAILURES:
                        stopped = f"the service could not be reached: {error}"
                    continue
                elif isinstance(error, RuntimeError) and client._engine.closed:
                    stopped = f"the client was closed: {error}"
                elif error is not None and not isinstance(error, TinkerRestError):
                    raise error
                failures_in_a_row = 0
            if stopped is None:
                try:
                    submit()
                except RuntimeError as exc:
                    if not client._engine.closed:
                        raise
                    stopped = f"the client was closed: {exc}"
            if progress is not None:
                progress(seen + (taken - len(paths)), len(targets))
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        for i, future in enumerate(futures):
            # Queued calls are not sent; calls that ended but were not looked at yet are
            # counted for what they did.
            if future is not None and not future.cancel() and future.done():
                outcome(i, future)
    if progress is not None and stopped is None:
        progress(len(targets), len(targets))
    # What is neither done nor failed: never sent, or still running when the prune stopped
    # (which may or may not have been applied).
    accounted = set(done).union(path for path, _ in failed)
    not_attempted = [c.tinker_path for c in targets if c.tinker_path not in accounted]
    order = {p: i for i, p in enumerate(c.tinker_path for c in plan.delete)}
    done.sort(key=order.__getitem__)
    failed.sort(key=lambda item: order[item[0]])
    return PruneResult(
        plan=plan,
        done=tuple(done),
        failed=tuple(failed),
        set_ttl_seconds=set_ttl_seconds,
        not_attempted=tuple(not_attempted),
        stopped=stopped,
    )

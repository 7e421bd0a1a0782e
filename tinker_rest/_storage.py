"""Where checkpoint storage goes, and retention policies that prune it.

Two jobs built on the listing and delete operations, for :meth:`RestClient.storage_report`,
:meth:`RestClient.prune_checkpoints` and the ``tinker-rest storage`` / ``checkpoint prune``
commands:

- a *storage report*: bytes and checkpoint counts per training run (or per project), biggest
  first, with totals, how many are public and how many already expire;
- a *prune*: a :class:`RetentionPolicy` turned into a :class:`PrunePlan` (what goes, what
  stays, the bytes freed) by :func:`plan_prune`, a pure function of the listing and the clock,
  then carried out at the client's full concurrency by :func:`carry_out`.

A plan depends only on what is stored now, so running the same policy again after an
interruption plans exactly what is left and finishes the job; a checkpoint already gone (404)
counts as done.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Literal, TypeVar

from tinker_rest._errors import AuthenticationError, NotFoundError, TinkerRestError

if TYPE_CHECKING:
    from tinker_rest._client import RestClient
    from tinker_rest._futures import APIFuture
    from tinker_rest.types import Checkpoint, CheckpointsListResponse

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
GIB = 1024**3
PAGE_SIZE = 1000  # the most the listing operations return in one page (the spec's maximum)
CHECKPOINT_TYPES = ("training", "sampler", "external")
Progress = Callable[[int, int | None], None]
"""Called as ``progress(done, total_or_None)`` while a listing or a prune goes on."""

TTL_RANGE = (3600, 315_360_000)  # one hour to ten years, as the service accepts

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


def list_checkpoints(
    client: RestClient,
    training_run_ids: Sequence[str] | None = None,
    progress: Progress | None = None,
    *,
    owned: bool = False,
) -> list[Checkpoint]:
    """Every checkpoint of the caller's runs, or of the runs named, fetched at full concurrency.

    ``GET /api/v1/checkpoints`` (the first page tells the total; every other page is asked for
    at once), or ``GET /api/v1/training_runs/{id}/checkpoints`` for each run named.

    Raises:
        NotOwnedError: ``owned`` is set and a named run is not the caller's own. A run seen
            through a project lists its checkpoints, but only its owner may delete them, and the
            service answers anyone else's delete with a 404 that would pass for "already gone".
    """
    if training_run_ids is not None:
        runs = list(dict.fromkeys(training_run_ids))
        owners = [client.get_training_run(run, "owned") for run in runs] if owned else []
        listings = [client.list_checkpoints(run) for run in runs]
        for run, owner in zip(runs, owners, strict=True):
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

    def page(response: CheckpointsListResponse) -> list[Checkpoint]:
        return list(response.checkpoints)

    first = client.list_user_checkpoints(PAGE_SIZE, 0).result()
    found = page(first)
    total = first.cursor.total_count if first.cursor else None
    if progress is not None:
        progress(len(found), total)
    if total is None or len(found) < PAGE_SIZE:
        return found
    rest = [client.list_user_checkpoints(PAGE_SIZE, o) for o in range(PAGE_SIZE, total, PAGE_SIZE)]
    for future in rest:  # in order: the pages are newest first, and so is the result
        found.extend(page(future.result()))
        if progress is not None:
            progress(len(found), total)
    # Pages shift if checkpoints are added or deleted meanwhile: keep each one once.
    return list({c.tinker_path: c for c in found}.values())


class NotOwnedError(TinkerRestError):
    """A prune named a training run that is not the caller's own."""


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
    """The checkpoints of one training run (or project, or all of them) and their bytes."""

    key: str
    checkpoints: int
    size_bytes: int
    public: int
    expiring: int
    oldest: datetime.datetime | None
    newest: datetime.datetime | None

    def model_dump(self) -> dict[str, object]:
        """The row as plain JSON-ready values."""
        data = dataclasses.asdict(self)
        for name in ("oldest", "newest"):
            value = data[name]
            data[name] = value.isoformat() if isinstance(value, datetime.datetime) else None
        return data


@dataclasses.dataclass(frozen=True)
class StorageReport:
    """Storage per training run or per project, biggest first, with totals.

    ``estimated_monthly_cost_usd`` is filled only when the service reports a rate.
    """

    by: Literal["run", "project"]
    rows: tuple[StorageRow, ...]
    total: StorageRow
    rate_usd_per_gigabyte_month: float | None = None

    @property
    def estimated_monthly_cost_usd(self) -> float | None:
        """The total's monthly cost at the service's rate, or None without one."""
        return monthly_cost(self.total.size_bytes, self.rate_usd_per_gigabyte_month)

    def model_dump(self) -> dict[str, object]:
        """The report as plain JSON-ready values."""
        return {
            "by": self.by,
            "rows": [row.model_dump() for row in self.rows],
            "total": self.total.model_dump(),
            "rate_usd_per_gigabyte_month": self.rate_usd_per_gigabyte_month,
            "estimated_monthly_cost_usd": self.estimated_monthly_cost_usd,
        }


def monthly_cost(size_bytes: int, rate: float | None) -> float | None:
    """What ``size_bytes`` cost a month at ``rate`` dollars per GiB-month, or None."""
    return None if rate is None else round(size_bytes / GIB * rate, 4)


def _row(key: str, checkpoints: Sequence[Checkpoint]) -> StorageRow:
    times = [c.time for c in checkpoints]
    return StorageRow(
        key=key,
        checkpoints=len(checkpoints),
        size_bytes=sum(_size(c) for c in checkpoints),
        public=sum(1 for c in checkpoints if c.public is True),
        expiring=sum(1 for c in checkpoints if _expires(c) is not None),
        oldest=min(times, default=None),
        newest=max(times, default=None),
    )


def build_report(
    checkpoints: Sequence[Checkpoint],
    *,
    by: Literal["run", "project"] = "run",
    projects: dict[str, str | None] | None = None,
    rate_usd_per_gigabyte_month: float | None = None,
) -> StorageReport:
    """Group checkpoints by run (or by project, through ``projects``: run id -> project id).

    Runs with no project are grouped under ``"(no project)"``.
    """
    groups: dict[str, list[Checkpoint]] = defaultdict(list)
    for checkpoint in checkpoints:
        run = run_of(checkpoint)
        key = run if by == "run" else (projects or {}).get(run) or "(no project)"
        groups[key].append(checkpoint)
    rows = sorted(
        (_row(key, members) for key, members in groups.items()),
        key=lambda row: (-row.size_bytes, -row.checkpoints, row.key),
    )
    return StorageReport(
        by=by,
        rows=tuple(rows),
        total=_row("total", checkpoints),
        rate_usd_per_gigabyte_month=rate_usd_per_gigabyte_month,
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

    @property
    def bytes_freed(self) -> int:
        """The bytes the checkpoints to delete hold (those whose size the service reports)."""
        return sum(_size(c) for c in self.delete)

    def model_dump(self) -> dict[str, object]:
        """The plan as plain JSON-ready values: paths to delete and to keep, bytes freed."""
        return {
            "delete": [c.tinker_path for c in self.delete],
            "keep": [c.tinker_path for c in self.keep],
            "bytes_freed": self.bytes_freed,
        }


def plan_prune(
    checkpoints: Iterable[Checkpoint],
    policy: RetentionPolicy,
    now: datetime.datetime | None = None,
) -> PrunePlan:
    """Split the checkpoints in the policy's scope into those to delete and those to keep.

    A pure function of the listing and ``now``: the same input always gives the same plan.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    cutoff = None if policy.older_than is None else now - policy.older_than
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
    return PrunePlan(policy=policy, now=now, delete=tuple(delete), keep=tuple(keep))


@dataclasses.dataclass(frozen=True)
class PruneResult:
    """What a prune did: the plan, the paths done (deleted or given a TTL), and the failures.

    A checkpoint that was already gone (404) counts as done.
    """

    plan: PrunePlan
    done: tuple[str, ...]
    failed: tuple[tuple[str, TinkerRestError], ...]
    dry_run: bool = False
    set_ttl_seconds: int | None = None

    @property
    def ok(self) -> bool:
        """Whether every checkpoint of the plan was dealt with."""
        return not self.failed

    def model_dump(self) -> dict[str, object]:
        """The result as plain JSON-ready values."""
        return {
            **self.plan.model_dump(),
            "dry_run": self.dry_run,
            "action": "set_ttl" if self.set_ttl_seconds is not None else "delete",
            "set_ttl_seconds": self.set_ttl_seconds,
            "done": list(self.done),
            "failed": [{"tinker_path": p, "error": str(e)} for p, e in self.failed],
        }


def carry_out(
    client: RestClient,
    plan: PrunePlan,
    *,
    set_ttl_seconds: int | None = None,
    progress: Progress | None = None,
) -> PruneResult:
    """Delete (or give a TTL to) every checkpoint the plan deletes, all submitted at once.

    The client bounds how many are in flight. With ``set_ttl_seconds``, a checkpoint that
    already expires sooner than that is left as it is.

    Raises:
        AuthenticationError: the key was refused (nothing more would succeed).
    """
    targets = list(plan.delete)
    if set_ttl_seconds is not None:
        horizon = plan.now + datetime.timedelta(seconds=set_ttl_seconds)
        targets = [c for c in targets if (_expires(c) or horizon) >= horizon]
        skipped = [c.tinker_path for c in plan.delete if c not in targets]
    else:
        skipped = []
    paths = [c.tinker_path for c in targets]
    if set_ttl_seconds is None:
        futures = [client.delete_checkpoint_from_tinker_path(p) for p in paths]
    else:
        futures = [client.set_checkpoint_ttl_from_tinker_path(p, set_ttl_seconds) for p in paths]
    index = {id(future): i for i, future in enumerate(futures)}
    done: list[str] = list(skipped)
    failed: list[tuple[str, TinkerRestError]] = []
    try:
        for future in _as_done(futures, progress, len(futures)):
            path = paths[index[id(future)]]
            try:
                future.result()
            except NotFoundError:
                done.append(path)  # already gone: the storage is freed either way
            except AuthenticationError:
                raise
            except TinkerRestError as exc:
                failed.append((path, exc))
            else:
                done.append(path)
    finally:
        for future in futures:
            future.cancel()  # on an interruption, queued calls are not sent
    order = {p: i for i, p in enumerate(c.tinker_path for c in plan.delete)}
    done.sort(key=order.__getitem__)
    failed.sort(key=lambda item: order[item[0]])
    return PruneResult(
        plan=plan, done=tuple(done), failed=tuple(failed), set_ttl_seconds=set_ttl_seconds
    )

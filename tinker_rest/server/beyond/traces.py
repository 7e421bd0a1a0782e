"""Session traces: the session's recorded events as a Chrome JSON trace, which Perfetto opens.

``GET /api/v1/sessions/{id}/trace_export`` answers from the newest export of the session: a
``ready`` one whose fingerprint still matches the session is reused (with a fresh signed URL);
otherwise a new export starts, is built after the response by a background task, and the
answer is ``pending`` until it is ``ready`` or ``failed``. A ``pending`` export older than
:data:`STALE_AFTER` (its builder died with the server) is started again.

The trace shows the session (its life so far), each training run (creation to last use), each
checkpoint and each sampler (instants), on one track per run, in microseconds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from tinker_rest.server import db
from tinker_rest.server.store import Caller, Store

log = logging.getLogger("tinker_rest.server")

TRACES_ROUTE = "/api/v1/storage/traces"
STALE_AFTER = dt.timedelta(minutes=10)
# The most events one trace holds; a session with more fails its export with a clear message.
MAX_TRACE_EVENTS = 200_000


def trace_path(store: Store, trace_id: str) -> Path:
    """Where a trace's file lives."""
    return store.data_dir / "traces" / f"{trace_id}.json"


def _events(s: DbSession, session: db.Session) -> list[dict[str, Any]]:
    """The session's recorded events, as Chrome trace events."""
    runs = list(
        s.execute(
            select(db.TrainingRun)
            .where(db.TrainingRun.session_id == session.id)
            .order_by(db.TrainingRun.created_at, db.TrainingRun.id)
        ).scalars()
    )
    checkpoints = s.execute(
        select(db.Checkpoint)
        .where(db.Checkpoint.training_run_id.in_([r.id for r in runs]), Store._live())
        .order_by(db.Checkpoint.created_at, db.Checkpoint.id)
    ).scalars()
    samplers = s.execute(
        select(db.Sampler)
        .where(db.Sampler.session_id == session.id)
        .order_by(db.Sampler.created_at, db.Sampler.id)
    ).scalars()

    def us(when: dt.datetime) -> int:
        return int(when.timestamp() * 1_000_000)

    track = {run.id: index + 1 for index, run in enumerate(runs)}
    end = max([session.created_at, *(r.last_request_time for r in runs)])
    events: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": 1, "tid": 0, "args": {"name": session.id}},
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 0, "args": {"name": "session"}},
        {
            "ph": "X",
            "name": session.display_name or session.id,
            "cat": "session",
            "pid": 1,
            "tid": 0,
            "ts": us(session.created_at),
            "dur": max(us(end) - us(session.created_at), 1),
        },
    ]
    for run in runs:
        tid = track[run.id]
        events.append(
            {"ph": "M", "name": "thread_name", "pid": 1, "tid": tid, "args": {"name": run.id}}
        )
        events.append(
            {
                "ph": "X",
                "name": f"training run {run.id}",
                "cat": "training_run",
                "pid": 1,
                "tid": tid,
                "ts": us(run.created_at),
                "dur": max(us(run.last_request_time) - us(run.created_at), 1),
                "args": {"base_model": run.base_model, "lora_rank": run.lora_rank},
            }
        )
    for ckpt in checkpoints:
        events.append(
            {
                "ph": "i",
                "s": "t",
                "name": f"checkpoint {ckpt.kind}/{ckpt.name}",
                "cat": "checkpoint",
                "pid": 1,
                "tid": track[ckpt.training_run_id],
                "ts": us(ckpt.created_at),
                "args": {"size_bytes": ckpt.size_bytes},
            }
        )
    for sampler in samplers:
        events.append(
            {
                "ph": "i",
                "s": "p",
                "name": f"sampler {sampler.id}",
                "cat": "sampler",
                "pid": 1,
                "tid": 0,
                "ts": us(sampler.created_at),
                "args": {"base_model": sampler.base_model, "model_path": sampler.model_path},
            }
        )
    return events


def _fingerprint(events: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(events, sort_keys=True).encode()).hexdigest()


def export_state(
    store: Store, s: DbSession, caller: Caller, session_id: str
) -> tuple[db.TraceExport, bool]:
    """The export to answer with, and whether it is new and must be built now.

    ``GET /api/v1/sessions/{session_id}/trace_export``
    """
    session = store._visible_session(s, caller, session_id, "accessible")
    fingerprint = _fingerprint(_events(s, session))
    latest = s.execute(
        select(db.TraceExport)
        .where(db.TraceExport.session_id == session.id)
        .order_by(db.TraceExport.created_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    now = db.utcnow()
    if latest is not None and latest.fingerprint == fingerprint:
        if latest.status == "pending" and now - latest.created_at < STALE_AFTER:
            return latest, False
        if latest.status == "ready" and trace_path(store, latest.id).is_file():
            return latest, False
        if latest.status == "failed":
            return latest, False
    export = db.TraceExport(
        id=secrets.token_hex(16),
        session_id=session.id,
        status="pending",
        fingerprint=fingerprint,
        created_at=now,
    )
    s.add(export)
    return export, True


def build_trace(store: Store, trace_id: str) -> None:
    """Write an export's trace file and mark it ready, or mark it failed with the reason."""
    with store.transaction() as s:
        export = s.get(db.TraceExport, trace_id)
        if export is None:
            return
        session = s.get(db.Session, export.session_id)
        assert session is not None
        events = _events(s, session)
    target = trace_path(store, trace_id)
    error: str | None = None
    size: int | None = None
    if len(events) > MAX_TRACE_EVENTS:
        error = f"the session has {len(events)} events; a trace holds at most {MAX_TRACE_EVENTS}"
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        try:
            with partial.open("w", encoding="utf-8") as fh:
                json.dump({"traceEvents": events, "displayTimeUnit": "ms"}, fh)
            os.replace(partial, target)
            size = target.stat().st_size
        except OSError as exc:
            partial.unlink(missing_ok=True)
            log.exception("building trace %s failed", trace_id)
            error = f"the trace could not be written: {exc.strerror or exc}"
    with store.transaction() as s:
        export = s.get(db.TraceExport, trace_id)
        if export is not None:
            export.status = "failed" if error else "ready"
            export.error = error
            export.size_bytes = size


def ready_trace(store: Store, s: DbSession, trace_id: str) -> Path | None:
    """The file of a ready trace whose session still exists."""
    export = s.get(db.TraceExport, trace_id) if len(trace_id) <= 64 else None
    if export is None or export.status != "ready":
        return None
    path = trace_path(store, trace_id)
    return path if path.is_file() else None

"""Route: ``export_session_trace``."""

from __future__ import annotations

import time
from typing import Any

import tinker_rest_models as m
from fastapi import APIRouter, BackgroundTasks

from tinker_rest.server.beyond import traces
from tinker_rest.server.beyond.deps import (
    SIGNED_URL_SECONDS,
    BaseUrlDep,
    CallerDep,
    SignerDep,
    StoreDep,
)

router = APIRouter(tags=["sessions"])


@router.get(
    "/api/v1/sessions/{session_id}/trace_export", response_model=m.SessionTraceExportResponse
)
def export_session_trace(
    caller: CallerDep,
    store: StoreDep,
    signer: SignerDep,
    base_url: BaseUrlDep,
    background: BackgroundTasks,
    session_id: str,
) -> dict[str, Any]:
    """The state of the session's trace export, starting one when needed.
    ``GET /api/v1/sessions/{session_id}/trace_export``"""
    # Committed here, before the background task that builds the trace can look for it.
    with store.transaction() as s:
        export, start = traces.export_state(store, s, caller, session_id)
    if start:
        background.add_task(traces.build_trace, store, export.id)
    url = None
    if export.status == "ready":
        expires = int(time.time()) + SIGNED_URL_SECONDS
        path = f"{traces.TRACES_ROUTE}/{export.id}"
        url = f"{base_url}{path}?{signer.sign(path, expires)}"
    return {"status": export.status, "url": url, "error": export.error}

"""The benchmark harness keeps working: ``scripts/bench.py --smoke`` runs end to end.

Tiny counts, no timing assertions: only that every figure comes out, with a number.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIGURES = {
    "sequential_latency",
    "concurrent_throughput",
    "async_path",
    "no_collapse",
    "client_cpu",
    "far_service",
    "prune",
    "import",
    "pagination",
    "deep_page",
    "download",
    "server",
    "write_tail",
}


def test_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench.py"), "--smoke", "--out", str(out)],
        check=True,
        cwd=REPO,
        timeout=240,
        capture_output=True,
    )
    result = json.loads(out.read_text())
    assert result["smoke"] is True
    keys = {f["key"] for f in result["figures"]}
    assert keys == FIGURES
    assert result["loop_design_figures"] == []  # the event-loop prototype is gone
    for f in result["figures"]:
        assert isinstance(f["median"], float) and f["median"] > 0, f
        assert f["min"] <= f["median"] <= f["max"], f
        assert isinstance(f["met"], bool), f
    assert result["extra"]["max_in_flight_sweep"]["per_s"]
    assert result["engines"]["in_flight"]["threads_in_flight"] >= 1

"""`make check-generated` passes on a clean tree and fails after a hand edit (on a copy)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "generate.py"


def check(target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--target", str(target)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_drift_check_passes_on_the_committed_tree_and_fails_after_a_hand_edit(
    tmp_path: Path,
) -> None:
    copy = tmp_path / "generated"
    shutil.copytree(ROOT / "generated", copy, ignore=shutil.ignore_patterns("__pycache__"))
    clean = check(copy)
    assert clean.returncode == 0, clean.stderr

    edited = copy / "tinker_rest_client" / "models" / "checkpoint.py"
    edited.write_text(edited.read_text().replace("checkpoint_id", "checkpoint_ident", 1))
    (copy / "tinker_rest_client" / "stray.py").write_text("x = 1\n")
    drifted = check(copy)
    assert drifted.returncode == 1
    assert "checkpoint_ident" in drifted.stderr
    assert "stray.py" in drifted.stderr
    assert "make generate" in drifted.stderr

"""`import tinker_rest` stays light: it never loads the server stack."""

from __future__ import annotations

import subprocess
import sys

SERVER_STACK = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "pydantic", "yaml")


def test_import_tinker_rest_loads_no_server_module() -> None:
    code = (
        "import sys, tinker_rest, tinker_rest.types; "
        f"print(','.join(m for m in {SERVER_STACK!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""

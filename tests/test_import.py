"""`import tinker_rest` stays light: it never loads the server stack, nor pydantic until needed."""

from __future__ import annotations

import subprocess
import sys

SERVER_STACK = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "yaml")


def loaded_after(statement: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has loaded after running ``statement``."""
    code = f"import sys; {statement}; print(','.join(m for m in {modules!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return [m for m in result.stdout.strip().split(",") if m]


def test_import_tinker_rest_loads_no_server_module() -> None:
    assert loaded_after("import tinker_rest, tinker_rest.types", SERVER_STACK) == []


def test_result_models_load_with_the_types_not_with_the_package() -> None:
    # pydantic costs more import time than httpx itself (make bench's import figure); a
    # program that only makes a client pays it at its first call.
    assert loaded_after("import tinker_rest", ("pydantic",)) == []
    assert loaded_after("import tinker_rest.types", ("pydantic",)) == ["pydantic"]

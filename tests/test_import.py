"""`import tinker_rest` stays light: it never loads the server stack, nor pydantic until needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import World

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


def test_the_generated_layer_loads_only_what_the_facade_uses() -> None:
    # Its models and clients load on first use (our templates): the request builders need a
    # few enums and bodies, not all sixty models, nor the stock Client classes.
    unused = ("tinker_rest_client.client", "tinker_rest_client.models.training_run")
    assert loaded_after("import tinker_rest", unused) == []
    assert loaded_after(
        "from tinker_rest_client.models import TrainingRun; from tinker_rest_client import Client",
        unused,
    ) == list(unused)


def test_result_models_load_with_the_types_not_with_the_package() -> None:
    # pydantic costs more import time than httpx itself (make bench's import figure); a
    # program that only makes a client pays it at its first call.
    assert loaded_after("import tinker_rest", ("pydantic",)) == []
    assert loaded_after("import tinker_rest.types", ("pydantic",)) == ["pydantic"]


def test_a_download_loads_no_result_models(world: World, tmp_path: Path) -> None:
    # The archive URL is read from the JSON: a program that only downloads (the CLI's
    # `checkpoint download`) never pays pydantic's import (a tenth of a 1 GiB download's time).
    path = f"tinker://{world.run_a}/weights/0001"
    statement = (
        "from tinker_rest import RestClient; "
        f"RestClient({world.base_url!r}, {world.alice_key!r})"
        f".download_checkpoint({path!r}, {str(tmp_path)!r})"
    )
    assert loaded_after(statement, ("pydantic",)) == []
    (folder,) = tmp_path.iterdir()  # the checkpoint, extracted
    assert {p.name for p in folder.iterdir()} == set(world.files)

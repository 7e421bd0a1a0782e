"""A user's ``mypy --strict`` sees the concrete result models of the installed wheel, not Any."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tinker_rest", "tinker_rest_client", "tinker_rest_models")

USER_SCRIPT = """\
from tinker_rest import RestClient

client = RestClient("http://127.0.0.1:1", "key")
run = client.get_training_run("sess-7f3a:train:0").result()
reveal_type(run)
reveal_type(run.user_metadata)
rank: int | None = run.lora_rank
wrong: int = run.base_model
reveal_type(client.list_training_runs_async)
"""


def _wheel(tmp: Path) -> Path:
    """Build the wheel from a copy of what it ships, so the worktree gets no build/ folder."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "tinker_rest", src / "tinker_rest", ignore=ignore)
    for package in PACKAGES[1:]:
        shutil.copytree(ROOT / "generated" / package, src / "generated" / package, ignore=ignore)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp / "dist", src],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = (tmp / "dist").glob("tinker_rest-*.whl")
    return wheel


def test_the_installed_wheel_is_typed(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert {f"{package}/py.typed" for package in PACKAGES} <= set(names)

    # A fresh virtualenv with the wheel alone; its dependencies are this venv's, by a .pth
    # file (a path listed there is searched, but its own .pth files, such as this
    # checkout's editable install, are not run).
    env = tmp_path / "venv"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel],
        check=True,
        capture_output=True,
        timeout=300,
    )
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = subprocess.run(
        [python, "-c", "import tinker_rest; print(tinker_rest.__file__)"],
        cwd=tmp_path,  # not this checkout, which `python -c` would search first
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert where.startswith(purelib), where

    script = tmp_path / "user.py"
    script.write_text(USER_SCRIPT)
    result = subprocess.run(
        [
            Path(sys.executable).parent / "mypy",
            "--strict",
            "--python-executable",
            python,
            "--cache-dir",
            tmp_path / "mypy-cache",
            script,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = result.stdout.splitlines()
    assert 'user.py:5: note: Revealed type is "tinker_rest_models.TrainingRun"' in lines, lines
    assert 'user.py:6: note: Revealed type is "dict[str, str] | None"' in lines, lines
    assert any(
        line.startswith("user.py:8: error: Incompatible types in assignment")
        and 'expression has type "str", variable has type "int"' in line
        for line in lines
    ), lines
    # The _async twin, made by a decorator, keeps the method's parameters and defaults (the
    # seed's, and the official SDK's project_id).
    assert (
        'user.py:9: note: Revealed type is "def (limit: int =, offset: int =, access_scope: '
        "Literal['owned'] | Literal['accessible'] =, project_id: str | None =) -> "
        'typing.Coroutine[Any, Any, tinker_rest_models.TrainingRunsResponse]"'
    ) in lines, lines
    errors = [line for line in lines if ": error:" in line]
    assert len(errors) == 1, lines  # the one deliberate error, and nothing about Any or imports

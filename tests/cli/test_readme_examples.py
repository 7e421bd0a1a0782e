"""The README's command line examples run, as written, against a server seeded with the demo.

Each ``tinker-rest ...`` line of the README's "The command line" block is run in-process; the
``VAR=$(tinker-rest ... | jq -r '.path')`` lines are run too and their jq path read in Python,
so the examples can only use ids and checkpoint names the demo really has.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tinker_rest.cli import cli

README = Path(__file__).resolve().parents[2] / "README.md"
ASSIGNMENT = re.compile(r"^(\w+)=\$\((tinker-rest [^|]+)\| jq -r '([^']+)'\)$")


def command_block() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## The command line", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def jq_path(data: Any, path: str) -> Any:
    """A jq path such as ``.runs[0].training_run_id``."""
    for name, index in re.findall(r"\.(\w+)(?:\[(\d+)\])?", path):
        data = data[name]
        if index:
            data = data[int(index)]
    return data


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    from tinker_rest.server import TinkerServer

    database = str(tmp_path / "demo.db")
    server = TinkerServer(database)
    data = server.seed_demo()
    with server.run_in_background(host="127.0.0.1", port=0) as running:
        yield running.base_url, data.admin_key, database
    server.close()


def test_every_command_line_example_runs_against_the_demo(
    demo: tuple[str, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    base_url, key, database = demo
    monkeypatch.chdir(tmp_path)
    environment = {"TINKER_BASE_URL": base_url, "TINKER_API_KEY": key, "COLUMNS": "200"}
    variables: dict[str, str] = {}
    ran = 0

    def invoke(line: str) -> Any:
        for name, value in variables.items():
            line = line.replace(f'"${name}"', value).replace(f"${name}", value)
        argv = shlex.split(line.replace("demo-data/tinker.db", database))
        assert argv[0] == "tinker-rest", line
        result = CliRunner().invoke(cli, argv[1:], env=environment, catch_exceptions=False)
        assert result.exit_code == 0, (line, result.output)
        return result

    for line in command_block():
        if line.startswith(("export ", "tinker-rest serve")):
            continue  # the server is this test's own; the environment is set above
        if match := ASSIGNMENT.match(line):
            name, command, path = match.groups()
            value = jq_path(json.loads(invoke(command.strip()).stdout), path)
            assert isinstance(value, str) and value, line
            variables[name] = value
            continue
        command, _, jq = line.partition(" | jq ")
        result = invoke(command)
        if jq:
            assert jq_path(json.loads(result.stdout), jq.strip()) is not None, line
        ran += 1
    assert set(variables) == {"RUN", "SESSION"}
    assert ran >= 8
    assert any(p.name.endswith("_weights_0001") for p in (tmp_path / "models").iterdir())

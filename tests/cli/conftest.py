"""Fixtures for the command line tests: a reference server on 127.0.0.1 and a way to run commands.

Test modules here take everything through fixtures (``env``, ``cli_run``), since pytest runs with
``--import-mode=importlib`` and test modules cannot import one another.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tinker_rest.cli import cli

FILES = {"adapter_model.safetensors": bytes(range(256)) * 64, "adapter_config.json": b"{}"}
MANY_RUNS = 105  # more than one page of 100


@dataclasses.dataclass
class Env:
    """A running server and what was seeded into it."""

    server: Any  # tinker_rest.server.TinkerServer
    base_url: str
    alice_key: str  # admin; owns run_a (two training checkpoints and a sampler one)
    bob_key: str  # member of alice's project; owns run_b, with a public checkpoint
    carol_key: str  # owns MANY_RUNS runs, for pagination
    project_id: str
    session_a: str
    session_b: str
    run_a: str
    run_b: str
    sampler_a: str

    def invoke(
        self, *args: str, key: str | None = None, input: str | None = None, json_out: bool = False
    ) -> Result:
        """Run ``tinker-rest`` with this server's URL and a key (alice's by default)."""
        argv = ["--base-url", self.base_url, "--api-key", key or self.alice_key]
        if json_out:
            argv += ["-f", "json"]
        return run(*argv, *args, input=input)

    def json(self, *args: str, key: str | None = None) -> Any:
        """Run a command with ``-f json``; check it succeeded and parse its output."""
        result = self.invoke(*args, key=key, json_out=True)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return json.loads(result.stdout)

    files: dict[str, bytes] = dataclasses.field(default_factory=lambda: dict(FILES))
    many_runs: int = MANY_RUNS

    def add_checkpoint(self, run_id: str, kind: str, name: str) -> str:
        return str(self.server.add_checkpoint(run_id, kind, name, files=FILES))


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    """Invoke the CLI in-process, wide enough that tables never fold an id."""
    runner = CliRunner()
    environment = {"COLUMNS": "250", "TINKER_API_KEY": "", "TINKER_BASE_URL": "", **(env or {})}
    return runner.invoke(cli, list(args), input=input, env=environment, catch_exceptions=False)


@pytest.fixture(autouse=True)
def home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home directory of the test's own, so ``auth login`` never touches the real one."""
    folder = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(folder))
    return folder


@pytest.fixture
def cli_run() -> Callable[..., Result]:
    """Run the CLI with no server in particular."""
    return run


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    from tinker_rest.server import TinkerServer

    server = TinkerServer(str(tmp_path_factory.mktemp("cli-server") / "tinker.db"))
    org = server.add_organization("acme")
    alice = server.add_user("alice@example.com", organization_id=org, role="admin")
    bob = server.add_user("bob@example.com", organization_id=org, role="member")
    carol = server.add_user("carol@example.com", organization_id=org, role="member")
    project = server.add_project("research", organization_id=org, members=[alice, bob])

    session_a = server.add_session(alice, display_name="baseline sweep")
    run_a = server.add_training_run(session_a, base_model="Qwen/Qwen3-8B", lora_rank=32)
    for name in ("0001", "0002"):
        server.add_checkpoint(run_a, "weights", name, files=FILES)
    server.add_checkpoint(run_a, "sampler_weights", "final", files=FILES)
    sampler_a = server.add_sampler(
        session_a, base_model="Qwen/Qwen3-8B", model_path=f"tinker://{run_a}/sampler_weights/final"
    )
    session_b = server.add_session(bob)
    run_b = server.add_training_run(session_b, base_model="meta-llama/Llama-3.1-8B", lora_rank=8)
    server.add_checkpoint(run_b, "weights", "0001", files=FILES, public=True)
    session_c = server.add_session(carol)
    for _ in range(MANY_RUNS):
        server.add_training_run(session_c, base_model="Qwen/Qwen3-8B", lora_rank=4)

    with server.run_in_background(host="127.0.0.1", port=0) as running:
        yield Env(
            server=server,
            base_url=running.base_url,
            alice_key=server.add_api_key(alice),
            bob_key=server.add_api_key(bob),
            carol_key=server.add_api_key(carol),
            project_id=project,
            session_a=session_a,
            session_b=session_b,
            run_a=run_a,
            run_b=run_b,
            sampler_a=sampler_a,
        )
    server.close()

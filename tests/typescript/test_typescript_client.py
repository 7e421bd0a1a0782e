"""The spec serves other languages: the TypeScript client generated from it works.

generated/typescript/schema.d.ts (openapi-typescript, drift-checked by `make check-generated`) is
compiled with the smoke test ts/smoke.test.mts by the pinned `tsc --strict`, and node's own test
runner then drives it through openapi-fetch against the reference server started here.

The Node tools come from node_modules/, which `make test` installs with `npm ci` first.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinker_rest.server import TinkerServer

ROOT = Path(__file__).resolve().parents[2]
TS = ROOT / "ts"
BUILD = TS / "build"
NODE_MODULES = ROOT / "node_modules"
NEEDED = ("typescript", "openapi-fetch", "@types/node")
COMPILE_TIMEOUT = 240
SMOKE_TIMEOUT = 240


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not on PATH: the TypeScript tests need Node.js 20 and npm")
    return path


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def _run(args: list[str], timeout: int, env: dict[str, str] | None = None) -> str:
    try:
        result = subprocess.run(
            args,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        partial = "".join(_text(out) for out in (exc.stdout, exc.stderr))
        pytest.fail(f"{' '.join(args)} did not finish in {timeout}s:\n{partial}")
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}:\n{output}"
    return output


@pytest.fixture(scope="module")
def smoke_tests() -> Iterator[list[Path]]:
    """Compile ts/ with the pinned tsc (strict, see ts/tsconfig.json) into ts/build/."""
    missing = [name for name in NEEDED if not (NODE_MODULES / name / "package.json").is_file()]
    if missing:
        pytest.fail(
            f"node_modules/ lacks {', '.join(missing)}: run `npm ci` "
            "(`make test` does it through its node_modules/.installed step)"
        )
    shutil.rmtree(BUILD, ignore_errors=True)
    _run([_tool("npx"), "--no-install", "tsc", "-p", str(TS), "--strict"], COMPILE_TIMEOUT)
    compiled = sorted(BUILD.glob("*.test.mjs"))
    assert compiled, f"tsc wrote no *.test.mjs into {BUILD}"
    yield compiled


def test_typescript_compiles_strictly_with_no_errors(smoke_tests: list[Path]) -> None:
    assert "smoke.test.mjs" in [p.name for p in smoke_tests]


def test_typescript_smoke_against_reference_server(smoke_tests: list[Path], tmp_path: Path) -> None:
    with TinkerServer(str(tmp_path / "tinker.db")) as server:
        org = server.add_organization("acme")
        alice = server.add_user("alice@example.com", organization_id=org, role="admin")
        key = server.add_api_key(alice)
        session_id = server.add_session(alice)
        run_id = server.add_training_run(session_id, base_model="Qwen/Qwen3-8B", lora_rank=32)
        server.add_checkpoint(run_id, "weights", "0001", files={"adapter.safetensors": b"x" * 1000})
        server.add_checkpoint(
            run_id,
            "external_weights",
            "peft",
            files={"adapter_config.json": b'{"r": 8}', "adapter_model.safetensors": b"w" * 512},
        )
        project = server.add_project("research", organization_id=org, members=[alice])

        with server.run_in_background(host="127.0.0.1", port=0) as running:
            env = {
                **os.environ,
                "TINKER_BASE_URL": running.base_url,
                "TINKER_API_KEY": key,
                "TINKER_PROJECT_ID": project,
                "NO_COLOR": "1",
            }
            env.pop("NODE_OPTIONS", None)
            output = _run(
                [_tool("node"), "--test", "--test-reporter=tap", *map(str, smoke_tests)],
                SMOKE_TIMEOUT,
                env=env,
            )

    passed = re.search(r"^# pass (\d+)$", output, re.MULTILINE)
    failed = re.search(r"^# fail (\d+)$", output, re.MULTILINE)
    assert passed and failed, f"no summary from node --test:\n{output}"
    assert int(failed.group(1)) == 0, output
    assert int(passed.group(1)) >= 9, f"expected the nine smoke tests to run:\n{output}"

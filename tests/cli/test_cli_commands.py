"""Every ``tinker-rest`` command against the reference server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tinker_rest import RestClient
from tinker_rest.cli import main

if TYPE_CHECKING:
    from click.testing import Result

    from tests.cli.conftest import Env

    Run = Callable[..., Result]


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


def checkpoint_ids(env: Env, run_id: str, key: str | None = None) -> set[str]:
    data = env.json("checkpoint", "list", "--run-id", run_id, key=key)
    return {c["checkpoint_id"] for c in data["checkpoints"]}


# -- global options, help, errors -------------------------------------------------------------


def test_help_lists_every_command(cli_run: Run) -> None:
    for flag in ("-h", "--help"):
        result = cli_run(flag)
        assert result.exit_code == 0
        for command in ("run", "checkpoint", "session", "sampler", "audit", "serve", "admin"):
            assert f"  {command} " in result.stdout
    for group in ("run", "checkpoint", "session", "sampler"):
        assert cli_run(group, "--help").exit_code == 0
    help_text = cli_run("checkpoint", "delete", "-h").stdout
    assert "--run-id" in help_text and "--before" in help_text and "-y, --yes" in help_text


def test_version(cli_run: Run) -> None:
    from tinker_rest import __version__

    for argv in (["--version"], ["version"]):
        result = cli_run(*argv)
        assert result.exit_code == 0
        assert result.stdout == f"tinker-rest {__version__}\n"


def test_help_and_client_commands_never_import_the_server_stack(env: Env) -> None:
    code = f"""
import sys
from click.testing import CliRunner
from tinker_rest.cli import cli
runner = CliRunner()
assert runner.invoke(cli, ["--help"]).exit_code == 0
result = runner.invoke(cli, ["--base-url", {env.base_url!r}, "--api-key", {env.alice_key!r},
                             "-f", "json", "run", "list"])
assert result.exit_code == 0, result.output
loaded = [m for m in ("fastapi", "sqlalchemy", "uvicorn", "starlette") if m in sys.modules]
assert not loaded, loaded
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_server_commands_are_mounted(cli_run: Run, tmp_path: Path) -> None:
    assert "--demo" in cli_run("serve", "--help").stdout
    result = cli_run("admin", "create-org", "umbrella", "--db", str(tmp_path / "admin.db"))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()


def test_missing_api_key_names_the_variable(cli_run: Run, env: Env) -> None:
    result = cli_run("--base-url", env.base_url, "run", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no API key")
    assert "TINKER_API_KEY" in result.stderr


def test_environment_variables_configure_the_client(cli_run: Run, env: Env) -> None:
    environment = {"TINKER_BASE_URL": env.base_url, "TINKER_API_KEY": env.alice_key}
    result = cli_run("-f", "json", "run", "info", env.run_a, env=environment)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["training_run_id"] == env.run_a


def test_bad_api_key_is_one_line_and_a_hint(env: Env) -> None:
    result = env.invoke("run", "list", key="tml-not-a-real-key")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("Error: ") and lines[0].endswith("(HTTP 401)")
    assert lines[1].startswith("Hint: ") and "TINKER_API_KEY" in lines[1]
    assert "Traceback" not in result.output


def test_unreachable_server_is_an_error_not_a_traceback(cli_run: Run) -> None:
    # Port 9 (discard) on 127.0.0.1: nothing listens there, so the connection is refused.
    result = cli_run("--base-url", "http://127.0.0.1:9", "--api-key", "tml-x", "run", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and "Hint: " in result.stderr
    assert "Traceback" not in result.output


def test_usage_errors_exit_2(cli_run: Run, env: Env) -> None:
    assert env.invoke("run", "list", "--limit", "-1").exit_code == 2
    assert env.invoke("checkpoint", "info", "not-a-path").exit_code == 2
    assert env.invoke("checkpoint", "info", "tinker://run/bogus/0001").exit_code == 2
    assert env.invoke("audit", "--day", "15/01/2026").exit_code == 2
    assert env.invoke("nonsense").exit_code == 2
    assert cli_run("-f", "yaml", "run", "list").exit_code == 2


def test_ctrl_c_exits_130(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(RestClient, "get_training_run", interrupted)
    result = env.invoke("run", "info", env.run_a)
    assert result.exit_code == 130
    assert "Traceback" not in result.output
    # And through the console script's entry point.
    argv = ["--base-url", env.base_url, "--api-key", env.alice_key, "run", "info", env.run_a]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 130


def test_main_exit_codes(env: Env) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--base-url", env.base_url, "--api-key", env.alice_key, "run", "info", env.run_a])
    assert exited.value.code == 0
    with pytest.raises(SystemExit) as exited:
        main(["run", "list", "--limit", "x"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        main(["--base-url", env.base_url, "--api-key", env.alice_key, "run", "info", "nope"])
    assert exited.value.code == 1


# -- runs ------------------------------------------------------------------------------------


def test_run_list_json(env: Env) -> None:
    data = env.json("run", "list")
    assert data["total_count"] == 1
    assert list(data) == ["runs", "total_count"]  # the official key, then ours
    (run_a,) = data["runs"]
    assert run_a["training_run_id"] == env.run_a
    assert run_a["base_model"] == "Qwen/Qwen3-8B" and run_a["lora_rank"] == 32
    parse_time(run_a["last_request_time"])
    assert run_a["last_checkpoint"]["checkpoint_id"] == "weights/0002"


def test_run_list_table(env: Env) -> None:
    result = env.invoke("run", "list")
    assert result.exit_code == 0, result.output
    assert "Training runs (1)" in result.stdout
    header = next(line for line in result.stdout.splitlines() if "Run ID" in line)
    assert header.split() == [
        "┃",
        "Run",
        "ID",
        "┃",
        "Base",
        "Model",
        "┃",
        "LoRA",
        "┃",
        "Last",
        "Update",
        "┃",
        "Status",
        "┃",
    ]  # the official default columns
    assert env.run_a in result.stdout and "Qwen/Qwen3-8B" in result.stdout
    assert "Rank 32" in result.stdout and " OK " in result.stdout


def test_run_list_pages_and_limit(env: Env) -> None:
    everything = env.json("run", "list", "--limit", "0", key=env.carol_key)
    ids = [r["training_run_id"] for r in everything["runs"]]
    assert everything["total_count"] == env.many_runs
    assert len(ids) == len(set(ids)) == env.many_runs

    some = env.json("run", "list", "--limit", "101", key=env.carol_key)
    assert len(some["runs"]) == 101

    table = env.invoke("run", "list", "--limit", "3", key=env.carol_key)
    assert table.exit_code == 0
    assert f"Training runs (3 of {env.many_runs})" in table.stdout
    assert f"{env.many_runs - 3} more not shown" in table.stderr and "--limit 0" in table.stderr


def test_run_list_columns(env: Env) -> None:
    result = env.invoke("run", "list", "--columns", "id,owner")
    assert result.exit_code == 0
    assert "Owner" in result.stdout and "Base Model" not in result.stdout
    official = env.invoke(
        "run", "list", "-c", "id,model,owner,lora,updated,status,checkpoint,checkpoint_time"
    )
    assert official.exit_code == 0, official.output
    for header in ("Last Checkpoint", "Checkpoint Time", "weights/0002", "alice"):
        assert header in official.stdout
    old_names = env.invoke("run", "list", "-c", "id,base_model,last_checkpoint")
    assert old_names.exit_code == 0 and "Base Model" in old_names.stdout
    bad = env.invoke("run", "list", "--columns", "id,colour")
    assert bad.exit_code == 2 and "colour" in bad.stderr


def test_run_list_access_scope(env: Env) -> None:
    owned = env.json("run", "list", "--access-scope", "owned", key=env.bob_key)
    assert [r["training_run_id"] for r in owned["runs"]] == [env.run_b]


def test_run_info(env: Env) -> None:
    data = env.json("run", "info", env.run_a)
    assert data["training_run_id"] == env.run_a and data["is_lora"] is True
    table = env.invoke("run", "info", env.run_a)
    assert table.exit_code == 0
    assert "Qwen/Qwen3-8B" in table.stdout and f"tinker://{env.run_a}/weights/0002" in table.stdout


def test_run_info_not_found(env: Env) -> None:
    result = env.invoke("run", "info", "sess-nope:train:0")
    assert result.exit_code == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith("Error: ") and first.endswith("(HTTP 404)")
    assert "Hint: " in result.stderr


# -- checkpoints: list, info, publish, ttl ---------------------------------------------------


def test_checkpoint_list_of_a_run(env: Env) -> None:
    data = env.json("checkpoint", "list", "--run-id", env.run_a)
    assert list(data) == ["run_id", "checkpoints", "total_count"] and data["run_id"] == env.run_a
    by_id = {c["checkpoint_id"]: c for c in data["checkpoints"]}
    assert {"weights/0001", "weights/0002", "sampler_weights/final"} <= set(by_id)
    first = by_id["weights/0001"]
    assert first["tinker_path"] == f"tinker://{env.run_a}/weights/0001"
    assert first["checkpoint_type"] == "training" and first["public"] is False
    assert first["size_bytes"] > 0
    parse_time(first["time"])
    assert data["total_count"] == len(data["checkpoints"])


def test_checkpoint_list_of_the_user(env: Env) -> None:
    data = env.json("checkpoint", "list", "--limit", "2")
    assert "run_id" not in data
    assert len(data["checkpoints"]) == 2 and data["total_count"] >= 3
    times = [parse_time(c["time"]) for c in data["checkpoints"]]
    assert times == sorted(times, reverse=True)

    table = env.invoke("checkpoint", "list", "--limit", "0")
    assert table.exit_code == 0
    assert "Never" in table.stdout and "KiB" in table.stdout
    assert f"tinker://{env.run_a}/weights/0001" in table.stdout


def test_checkpoint_info(env: Env) -> None:
    path = f"tinker://{env.run_a}/weights/0001"
    data = env.json("checkpoint", "info", path)
    assert data["tinker_path"] == path and data["checkpoint_id"] == "weights/0001"
    assert data["weights_info"]["base_model"] == "Qwen/Qwen3-8B"
    assert data["weights_info"]["lora_rank"] == 32
    assert data["is_lora"] is True and data["lora_rank"] == 32  # the official keys
    table = env.invoke("checkpoint", "info", path)
    assert table.exit_code == 0 and "Never" in table.stdout and "Rank 32" in table.stdout


def test_checkpoint_info_of_someone_elses_public_checkpoint(env: Env) -> None:
    path = f"tinker://{env.run_b}/weights/0001"
    data = env.json("checkpoint", "info", path)  # alice reads bob's published checkpoint
    assert data["tinker_path"] == path
    assert data["weights_info"]["base_model"] == "meta-llama/Llama-3.1-8B"


def test_checkpoint_info_not_found(env: Env) -> None:
    result = env.invoke("checkpoint", "info", f"tinker://{env.run_a}/weights/9999")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0].endswith("(HTTP 404)")


def test_publish_and_unpublish(env: Env) -> None:
    path = env.add_checkpoint(env.run_a, "weights", "pub")
    published = env.invoke("checkpoint", "publish", path, json_out=True)
    assert published.exit_code == 0 and published.stdout == ""  # nothing on success
    listed = env.json("checkpoint", "info", path)
    assert listed["public"] is True

    again = env.invoke("checkpoint", "publish", path)
    assert again.exit_code == 1 and again.stderr.splitlines()[0].endswith("(HTTP 409)")

    result = env.invoke("checkpoint", "unpublish", path)
    assert result.exit_code == 0 and result.stdout == ""
    assert env.json("checkpoint", "info", path)["public"] is False


def test_publish_someone_elses_checkpoint_fails(env: Env) -> None:
    result = env.invoke(
        "checkpoint", "publish", f"tinker://{env.run_a}/weights/0001", key=env.bob_key
    )
    assert result.exit_code == 1 and "(HTTP 404)" in result.stderr


def test_set_ttl_and_remove(env: Env) -> None:
    path = env.add_checkpoint(env.run_a, "weights", "ttl")
    result = env.invoke("checkpoint", "set-ttl", path, "--ttl", "86400", json_out=True)
    assert result.exit_code == 0 and result.stdout == ""  # nothing on success
    expires = parse_time(env.json("checkpoint", "info", path)["expires_at"])
    left = expires - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(hours=23) < left <= datetime.timedelta(hours=24, minutes=1)
    assert "in 24 hours" in env.invoke("checkpoint", "info", path).stdout

    result = env.invoke("checkpoint", "set-ttl", path, "--remove")
    assert result.exit_code == 0 and result.stdout == ""
    assert env.json("checkpoint", "info", path)["expires_at"] is None


def test_set_ttl_needs_exactly_one_option(env: Env) -> None:
    path = f"tinker://{env.run_a}/weights/0001"
    assert env.invoke("checkpoint", "set-ttl", path).exit_code == 2
    both = env.invoke("checkpoint", "set-ttl", path, "--ttl", "3600", "--remove")
    assert both.exit_code == 2 and "exactly one" in both.stderr


@pytest.mark.parametrize("ttl", ["60", "3599", "315360001"])
def test_set_ttl_out_of_range_is_caught_before_any_request(cli_run: Run, ttl: str) -> None:
    # Port 9 on 127.0.0.1 refuses connections: a request would fail with exit 1, not 2.
    argv = ["--base-url", "http://127.0.0.1:9", "--api-key", "tml-x", "checkpoint", "set-ttl"]
    result = cli_run(*argv, "tinker://run/weights/0001", "--ttl", ttl)
    assert result.exit_code == 2, result.output
    assert "3600<=x<=315360000" in result.stderr


# -- checkpoints: delete ---------------------------------------------------------------------


def test_delete_answering_no_deletes_nothing(env: Env) -> None:
    paths = [env.add_checkpoint(env.run_a, "weights", f"keep{i}") for i in range(2)]
    result = env.invoke("checkpoint", "delete", *paths, input="n\n")
    assert result.exit_code == 0
    assert "To delete: 2 checkpoints" in result.stdout and "KiB" in result.stdout
    assert "Nothing deleted" in result.stdout
    assert {"weights/keep0", "weights/keep1"} <= checkpoint_ids(env, env.run_a)

    # An empty answer takes the default, which is no as well.
    env.invoke("checkpoint", "delete", *paths, input="\n")
    assert {"weights/keep0", "weights/keep1"} <= checkpoint_ids(env, env.run_a)


def test_delete_answering_yes(env: Env) -> None:
    path = env.add_checkpoint(env.run_a, "weights", "gone-yes")
    result = env.invoke("checkpoint", "delete", path, input="y\n")
    assert result.exit_code == 0, result.output
    assert "Deleted 1 of 1" in result.stdout
    assert "weights/gone-yes" not in checkpoint_ids(env, env.run_a)


def test_delete_paths_with_yes_and_json(env: Env) -> None:
    paths = [env.add_checkpoint(env.run_a, "weights", f"gone{i}") for i in range(5)]
    data = env.json("checkpoint", "delete", "-y", *paths)
    assert data == {"deleted_count": 5, "failed": [], "deleted": paths}
    assert not {f"weights/gone{i}" for i in range(5)} & checkpoint_ids(env, env.run_a)


def test_delete_reports_each_failure_and_exits_1(env: Env) -> None:
    good = env.add_checkpoint(env.run_a, "weights", "doomed")
    missing = f"tinker://{env.run_a}/weights/never-was"
    foreign = f"tinker://{env.run_b}/weights/0001"  # bob's: alice may not delete it
    result = env.invoke("checkpoint", "delete", "-y", good, missing, foreign, json_out=True)
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["deleted_count"] == 1 and data["deleted"] == [good]
    assert all(set(f) >= {"tinker_path", "error"} for f in data["failed"])
    assert {f["tinker_path"] for f in data["failed"]} == {missing, foreign}
    assert f"could not delete {missing}" in result.stderr
    assert f"could not delete {foreign}" in result.stderr
    assert "weights/doomed" not in checkpoint_ids(env, env.run_a)
    assert "weights/0001" in checkpoint_ids(env, env.run_b, key=env.bob_key)


def test_delete_by_run_with_filters(env: Env) -> None:
    run_id = env.server.add_training_run(env.session_a, base_model="Qwen/Qwen3-8B", lora_rank=8)
    for name in ("a", "b"):
        env.add_checkpoint(run_id, "weights", name)
    env.add_checkpoint(run_id, "sampler_weights", "s")

    # --type: only the sampler checkpoint.
    data = env.json("checkpoint", "delete", "-y", "--run-id", run_id, "--type", "sampler")
    assert data["deleted"] == [f"tinker://{run_id}/sampler_weights/s"]
    assert checkpoint_ids(env, run_id) == {"weights/a", "weights/b"}

    # --after in the future and --before in the past match nothing.
    tomorrow = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)).date()
    nothing = env.invoke("checkpoint", "delete", "-y", "--run-id", run_id, "--after", str(tomorrow))
    assert nothing.exit_code == 0 and "No checkpoints to delete" in nothing.stdout
    before = env.invoke("checkpoint", "delete", "-y", "--run-id", run_id, "--before", "2000-01-01")
    assert before.exit_code == 0 and "No checkpoints to delete" in before.stdout

    # --before tomorrow (a date-time with a zone) takes the rest.
    cutoff = f"{tomorrow}T00:00:00+00:00"
    data = env.json("checkpoint", "delete", "-y", "--run-id", run_id, "--before", cutoff)
    assert sorted(data["deleted"]) == [
        f"tinker://{run_id}/weights/a",
        f"tinker://{run_id}/weights/b",
    ]
    assert checkpoint_ids(env, run_id) == set()


def test_delete_usage_errors(env: Env) -> None:
    path = f"tinker://{env.run_a}/weights/0001"
    assert env.invoke("checkpoint", "delete").exit_code == 2
    assert env.invoke("checkpoint", "delete", path, "--run-id", env.run_a).exit_code == 2
    assert env.invoke("checkpoint", "delete", path, "--type", "training").exit_code == 2
    assert (
        env.invoke("checkpoint", "delete", "--run-id", env.run_a, "--before", "soon").exit_code == 2
    )
    assert "weights/0001" in checkpoint_ids(env, env.run_a)


# -- checkpoints: download -------------------------------------------------------------------


def test_download_extracts(env: Env, tmp_path: Path) -> None:
    path = f"tinker://{env.run_a}/weights/0001"
    result = env.invoke("checkpoint", "download", path, "-o", str(tmp_path / "models"))
    assert result.exit_code == 0, result.output
    (target,) = (tmp_path / "models").iterdir()
    assert target.is_dir() and str(target) in result.stdout
    assert {p.name: p.read_bytes() for p in target.iterdir()} == env.files


def test_download_json_no_extract_and_force(env: Env, tmp_path: Path) -> None:
    path = f"tinker://{env.run_a}/weights/0002"
    data = env.json("checkpoint", "download", path, "-o", str(tmp_path), "--no-extract")
    archive = Path(data["destination"])
    assert data["checkpoint_path"] == path and data["extracted"] is False
    assert data["file_size_bytes"] == archive.stat().st_size
    assert archive.parent == tmp_path and archive.suffix == ".tar" and archive.is_file()
    assert [p.name for p in tmp_path.iterdir()] == [archive.name]  # no .part left

    again = env.invoke("checkpoint", "download", path, "-o", str(tmp_path), "--no-extract")
    assert again.exit_code == 1
    assert "already exists" in again.stderr and "--force" in again.stderr

    archive.write_bytes(b"stale")
    forced = env.invoke(
        "checkpoint", "download", path, "-o", str(tmp_path), "--no-extract", "--force"
    )
    assert forced.exit_code == 0, forced.output
    assert archive.stat().st_size > 1024


def test_download_not_found(env: Env, tmp_path: Path) -> None:
    result = env.invoke(
        "checkpoint", "download", f"tinker://{env.run_a}/weights/zz", "-o", str(tmp_path)
    )
    assert result.exit_code == 1 and "(HTTP 404)" in result.stderr
    assert list(tmp_path.iterdir()) == []


# -- sessions, samplers, audit ---------------------------------------------------------------


def test_session_list(env: Env) -> None:
    data = env.json("session", "list")
    (session,) = data["sessions"]
    assert session["session_id"] == env.session_a
    assert session["display_name"] == "baseline sweep"
    assert env.run_a in session["training_run_ids"] and env.sampler_a in session["sampler_ids"]
    table = env.invoke("session", "list")
    assert (
        table.exit_code == 0 and env.session_a in table.stdout and "baseline sweep" in table.stdout
    )


def test_session_info(env: Env) -> None:
    data = env.json("session", "info", env.session_a)
    assert data["session_id"] == env.session_a and env.run_a in data["training_run_ids"]
    table = env.invoke("session", "info", env.session_a)
    assert table.exit_code == 0 and env.sampler_a in table.stdout
    missing = env.invoke("session", "info", "sess-missing")
    assert missing.exit_code == 1 and "(HTTP 404)" in missing.stderr


def test_session_assign_project(env: Env) -> None:
    data = env.json("session", "assign-project", env.session_b, env.project_id, key=env.bob_key)
    assert data == {"session_id": env.session_b, "project_id": env.project_id}
    # Now alice, a member of the project, can see bob's session through it.
    shared = env.json("session", "info", env.session_b, "--access-scope", "accessible")
    assert env.run_b in shared["training_run_ids"]
    refused = env.invoke("session", "assign-project", env.session_a, "proj-nope")
    assert refused.exit_code == 1 and refused.stderr.startswith("Error: ")


def test_sampler_info(env: Env) -> None:
    data = env.json("sampler", "info", env.sampler_a)
    assert data == {
        "sampler_id": env.sampler_a,
        "base_model": "Qwen/Qwen3-8B",
        "model_path": f"tinker://{env.run_a}/sampler_weights/final",
    }
    table = env.invoke("sampler", "info", env.sampler_a)
    assert table.exit_code == 0 and "sampler_weights/final" in table.stdout


def test_audit(env: Env) -> None:
    path = env.add_checkpoint(env.run_a, "weights", "audited")
    assert env.invoke("checkpoint", "publish", path).exit_code == 0
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    data = env.json("audit", "--event-type", "checkpoints", "--day", today)
    assert data["day"] == today and data["event_type"] == "checkpoints"
    events = [e for e in data["entries"] if e["tinker_path"] == path]
    assert [e["event"] for e in events] == ["checkpoint_publish"]
    parse_time(events[0]["timestamp"])
    assert all(e["event"].startswith("checkpoint_") for e in data["entries"])

    table = env.invoke("audit")
    assert table.exit_code == 0 and "checkpoint_publish" in table.stdout

    empty = env.json("audit", "--day", "2001-01-01")
    assert empty["entries"] == []


def test_audit_needs_admin(env: Env) -> None:
    result = env.invoke("audit", key=env.bob_key)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0].endswith("(HTTP 403)")
    assert "admin" in result.stderr


def test_format_option_after_the_command(env: Env) -> None:
    result = env.invoke("sampler", "info", env.sampler_a, "-f", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["sampler_id"] == env.sampler_a

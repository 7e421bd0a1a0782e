"""The commands built on the operations beyond the seed, against the demo data set.

``auth whoami``, ``model list``, ``billing usage``, ``billing checkpoint-storage``,
``session export-trace``, and ``storage --by project`` with the monthly cost, each end to end
over real HTTP on 127.0.0.1, with the official CLI's JSON shapes, and their failures: one
``Error:`` line and a ``Hint:``, exit 1; bad arguments exit 2.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tinker_rest import AdminClient, RestClient
from tinker_rest.cli import cli

RATE = 0.10  # the reference server's storage rate, USD per gigabyte-month
GIGABYTE = 10**9


class Demo:
    """A server seeded with the demo data set (alice: admin; bob: member of her project)."""

    def __init__(self, base_url: str, data: Any, server: Any) -> None:
        self.base_url = base_url
        self.data = data
        self.server = server
        self.admin_key: str = data.admin_key
        self.member_key: str = data.member_key

    def invoke(self, *args: str, key: str | None = None) -> Result:
        argv = ["--base-url", self.base_url, "--api-key", key or self.admin_key, *args]
        environment = {"COLUMNS": "250", "TINKER_API_KEY": "", "TINKER_BASE_URL": ""}
        return CliRunner().invoke(cli, argv, env=environment, catch_exceptions=False)

    def json(self, *args: str, key: str | None = None) -> Any:
        result = self.invoke("-f", "json", *args, key=key)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return json.loads(result.stdout)

    def client(self, key: str | None = None) -> RestClient:
        return RestClient(self.base_url, key or self.admin_key)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    from tinker_rest.server import TinkerServer

    server = TinkerServer(str(tmp_path_factory.mktemp("beyond-cli") / "tinker.db"))
    data = server.seed_demo()
    with server.run_in_background(host="127.0.0.1", port=0) as running:
        yield Demo(running.base_url, data, server)
    server.close()


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    from tinker_rest.cli import _sessions

    monkeypatch.setattr(_sessions, "TRACE_POLL_INTERVAL", 0.05)


def failed(result: Result, *words: str) -> None:
    """One ``Error:`` line naming ``words``, then a non-empty hint; exit status 1."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("Error: ")]
    assert len(errors) == 1 and errors[0] == len(lines) - 2, lines
    assert lines[-1].startswith("Hint: ") and len(lines[-1]) > len("Hint: "), lines
    for word in words:
        assert word in result.stderr, (word, result.stderr)


# -- auth whoami and login ------------------------------------------------------------------


def test_whoami_shows_email_user_and_organization(demo: Demo) -> None:
    with demo.client() as client:
        me = client.whoami().result()
    assert demo.json("auth", "whoami") == {
        "user_urn": me.user_urn,
        "org_urn": me.org_urn,
        "email": "alice@example.com",
    }
    table = demo.invoke("auth", "whoami")
    assert table.exit_code == 0
    rows = [line.strip("│ ").split("│") for line in table.stdout.splitlines() if "│" in line]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["Email", "alice@example.com"],
        ["User", me.user_urn],
        ["Organization", me.org_urn],
    ]
    failed(demo.invoke("auth", "whoami", key="tml-wrong"), "(HTTP 401)", "API key")


def test_login_checks_the_key_with_whoami_and_says_whose_it_is(demo: Demo, home: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["--base-url", demo.base_url, "auth", "login"],
        input=f"{demo.member_key}\n",
        env={"TINKER_API_KEY": "", "TINKER_BASE_URL": ""},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Logged in as bob@example.com (urn:tinker:org:")
    stored = json.loads((home / ".tinker" / "credentials.json").read_text())
    assert stored["keys"][stored["default"]]["key"] == demo.member_key


# -- model list -----------------------------------------------------------------------------


def test_model_list_all_and_filtered_ignoring_case(demo: Demo) -> None:
    every = demo.json("model", "list")
    names = [m["model_name"] for m in every["models"]]
    assert names == sorted(names) and "Qwen/Qwen3-8B" in names and len(names) == 4
    assert set(every["models"][0]) == {
        "model_name",
        "max_context_length",
        "trainable",
        "sampleable",
    }
    qwen = demo.json("model", "list", "QWEN")
    assert [m["model_name"] for m in qwen["models"]] == [n for n in names if "qwen" in n.lower()]
    table = demo.invoke("model", "list", "llama")
    assert table.exit_code == 0
    assert "meta-llama/Llama-3.1-8B" in table.stdout and "131072" in table.stdout
    assert "Qwen" not in table.stdout


def test_model_list_without_a_match_names_the_organization(demo: Demo) -> None:
    with demo.client() as client:
        org = client.whoami().result().org_urn
    result = demo.invoke("model", "list", "gpt-9")
    failed(result, "'gpt-9'", org, "tinker-rest model list")
    assert result.stdout == ""


# -- billing --------------------------------------------------------------------------------


def window() -> tuple[str, str]:
    now = datetime.datetime.now(datetime.UTC).replace(minute=0, second=0, microsecond=0)
    start = now - datetime.timedelta(days=1)
    return start.isoformat().replace("+00:00", "Z"), (now + datetime.timedelta(hours=2)).isoformat()


def test_billing_usage_json_is_the_responses_model_dump(demo: Demo) -> None:
    start, end = window()
    data = demo.json("billing", "usage", start, end)
    assert set(data) == {"data", "sessions", "cost_data_through"}
    with AdminClient(demo.base_url, demo.admin_key) as admin:
        response = admin.get_billing_usage(start, end).result()
    assert len(data["data"]) == len(response.data) == 10
    types = sorted(row["event_info"]["type"] for row in data["data"])
    assert types.count("training") == 3 and types.count("checkpoint") == 1
    sweep = demo.data.session_ids[0]
    assert data["sessions"][sweep] == {"user_metadata": {"team": "research"}}


def test_billing_usage_table_adds_up_the_costs(demo: Demo) -> None:
    start, end = window()
    rows = demo.json("billing", "usage", start, end)["data"]
    total = sum(row["estimated_cost_usd"] or 0 for row in rows)
    result = demo.invoke("billing", "usage", start, end)
    assert result.exit_code == 0, result.stderr
    assert "Hourly usage (10)" in result.stdout
    assert "360,000 tokens" in result.stdout
    first = datetime.datetime.fromisoformat(rows[0]["bucket_start"]).astimezone(datetime.UTC)
    assert f"│ {first:%Y-%m-%d %H:%M} │ {rows[0]['event_info']['type']}" in result.stdout
    last = next(line for line in result.stdout.splitlines() if line.startswith("│ total"))
    assert last.rstrip(" │").endswith(f"${total:,.2f}")


def test_billing_usage_csv_flattens_event_info_and_sessions_csv(demo: Demo, tmp_path: Path) -> None:
    start, end = window()
    usage_csv = tmp_path / "usage.csv"
    result = demo.invoke(
        "billing", "usage", start, end, "--csv", str(usage_csv), "--sessions-csv", "-"
    )
    assert result.exit_code == 0, result.stderr
    assert f"Wrote 10 row(s) to {usage_csv}" in result.stderr
    rows = list(csv.DictReader(io.StringIO(usage_csv.read_text(encoding="utf-8"))))
    assert len(rows) == 10 and "event_info" not in rows[0]
    training = [r for r in rows if r["type"] == "training"]
    assert sorted(int(r["token_count"]) for r in training) == [120_000, 240_000, 360_000]
    assert all(r["count"] == "" for r in training)  # another type's field: an empty cell
    sessions = list(csv.DictReader(io.StringIO(result.stdout)))
    by_id = {r["session_id"]: r["user_metadata"] for r in sessions}
    assert json.loads(by_id[demo.data.session_ids[0]]) == {"team": "research"}


def test_billing_needs_an_admin(demo: Demo) -> None:
    start, end = window()
    for args in (("billing", "usage", start, end), ("billing", "checkpoint-storage")):
        result = demo.invoke(*args, key=demo.member_key)
        failed(result, "(HTTP 403)", "admin")
        assert result.stdout == ""


@pytest.mark.parametrize(
    ("start", "end", "why"),
    [
        ("2026-01-01", "2026-01-02T00:00:00Z", "no UTC offset"),
        ("yesterday", "2026-01-02T00:00:00Z", "not an RFC 3339 time"),
        ("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", "must be after STARTING_ON"),
    ],
)
def test_billing_usage_refuses_bad_times_before_any_request(
    demo: Demo, start: str, end: str, why: str
) -> None:
    result = demo.invoke("billing", "usage", start, end, key="tml-never-sent")
    assert result.exit_code == 2, result.stderr
    assert why in result.stderr and "HTTP" not in result.stderr


def test_billing_checkpoint_storage(demo: Demo) -> None:
    data = demo.json("billing", "checkpoint-storage")
    assert data["effective_rate_usd_per_gigabyte_month"] == RATE
    project = demo.data.project_id
    assert {row["project_id"] for row in data["data"]} == {project, None}
    only = demo.json("billing", "checkpoint-storage", "--project-id", project)
    assert [row["project_id"] for row in only["data"]] == [project]
    result = demo.invoke("billing", "checkpoint-storage", "--csv", "-")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == len(data["data"])
    assert all(float(r["effective_rate_usd_per_gigabyte_month"]) == RATE for r in rows)
    table = demo.invoke("billing", "checkpoint-storage")
    assert "at $0.1 per GB-month" in table.stdout and "alice@example.com" in table.stdout


# -- session export-trace -------------------------------------------------------------------


def test_export_trace_downloads_into_the_working_directory(
    demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = demo.data.session_ids[0]
    monkeypatch.chdir(tmp_path)
    result = demo.invoke("session", "export-trace", session)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith(f"Exporting trace for session {session}")
    trace = tmp_path / f"{session}.pftrace"
    events = json.loads(trace.read_bytes())["traceEvents"]
    assert any(session in json.dumps(e) for e in events)
    assert str(trace) in result.stdout
    assert not list(tmp_path.glob("*.part*"))

    # JSON as the official CLI: {session_id, destination, file_size_bytes}; a directory as -o
    # gets <id>.pftrace in it, and a file of the same name is replaced.
    folder = tmp_path / "traces"
    folder.mkdir()
    (folder / f"{session}.pftrace").write_text("old")
    data = demo.json("session", "export-trace", session, "-o", str(folder))
    assert data == {
        "session_id": session,
        "destination": str(folder / f"{session}.pftrace"),
        "file_size_bytes": trace.stat().st_size,
    }
    assert (folder / f"{session}.pftrace").read_bytes() == trace.read_bytes()


def test_export_trace_url_only(demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    session = demo.data.session_ids[0]
    monkeypatch.chdir(tmp_path)
    bare = demo.invoke("session", "export-trace", session, "--url-only")
    assert bare.exit_code == 0
    url = bare.stdout.strip()
    assert bare.stdout == url + "\n" and url.startswith(demo.base_url)
    assert "traceEvents" in httpx.get(url).json()  # no API key needed
    data = demo.json("session", "export-trace", session, "--url-only")
    assert set(data) == {"session_id", "url"} and data["session_id"] == session
    assert list(tmp_path.iterdir()) == []  # nothing downloaded


def test_export_trace_failures(demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tinker_rest.cli import _sessions
    from tinker_rest.server.store import traces

    monkeypatch.chdir(tmp_path)
    failed(demo.invoke("session", "export-trace", "sess-nope"), "(HTTP 404)", "check the id")
    monkeypatch.setattr(traces, "MAX_TRACE_EVENTS", 2)
    failed(
        demo.invoke("session", "export-trace", demo.data.session_ids[1]),
        "a trace holds at most 2",
    )
    # A trace that never gets built: the deadline, not "check the path" (TimeoutError is an
    # OSError, which the command line reports as a file problem).
    monkeypatch.setattr(traces.TraceStore, "build_trace", lambda self, trace_id: None)
    monkeypatch.setattr(_sessions, "TRACE_DEADLINE", 0.3)
    result = demo.invoke("session", "export-trace", demo.data.session_ids[2], key=demo.member_key)
    failed(result, "was not ready within 0.3 s", "run the same command again later")
    assert "path" not in result.stderr
    assert list(tmp_path.iterdir()) == []


# -- storage --by project, and the cost -----------------------------------------------------


def test_storage_by_project_maps_runs_through_their_sessions(demo: Demo) -> None:
    by_run = demo.json("storage")
    report = demo.json("storage", "--by", "project")
    assert report["by"] == "project"
    # The shared session's run is in the project; the others are in none.
    shared_run = demo.data.training_run_ids[2]
    rows = {row["key"]: row for row in report["rows"]}
    assert set(rows) == {demo.data.project_id, "(no project)"}
    runs = {row["key"]: row for row in by_run["rows"]}
    assert rows[demo.data.project_id]["size_bytes"] == runs[shared_run]["size_bytes"]
    assert rows[demo.data.project_id]["checkpoints"] == runs[shared_run]["checkpoints"]
    assert report["total"] == by_run["total"]
    assert sum(r["size_bytes"] for r in report["rows"]) == report["total"]["size_bytes"]
    with demo.client() as client:
        same = client.storage_report(by="project")
    assert {row.key: row.size_bytes for row in same.rows} == {
        key: row["size_bytes"] for key, row in rows.items()
    }
    table = demo.invoke("storage", "--by", "project")
    assert "Checkpoint storage by project (2 projects)" in table.stdout
    assert demo.data.project_id in table.stdout


def test_storage_cost_at_the_services_rate(demo: Demo) -> None:
    report = demo.json("storage")
    assert report["rate_usd_per_gigabyte_month"] == RATE and report["rate_unavailable"] is None
    total = report["total"]["size_bytes"]
    assert report["estimated_monthly_cost_usd"] == pytest.approx(total / GIGABYTE * RATE)
    for row in report["rows"]:
        assert row["estimated_monthly_cost_usd"] == pytest.approx(
            row["size_bytes"] / GIGABYTE * RATE, abs=1e-6
        )
    table = demo.invoke("storage")
    assert "Cost/month" in table.stdout and "$0.1 per GB-month" in table.stderr


def test_storage_without_the_admin_role_has_no_cost_and_says_why(demo: Demo) -> None:
    report = demo.json("storage", "--by", "project", key=demo.member_key)
    assert report["rate_usd_per_gigabyte_month"] is None
    assert report["estimated_monthly_cost_usd"] is None
    assert "admin role" in report["rate_unavailable"]
    assert [row["key"] for row in report["rows"]] == ["(no project)"]  # bob's run
    table = demo.invoke("storage", key=demo.member_key)
    assert table.exit_code == 0
    assert "Cost/month" not in table.stdout
    assert "No cost shown: reading the storage rate needs the admin role." in table.stderr


def test_storage_report_refuses_another_grouping(demo: Demo) -> None:
    with demo.client() as client, pytest.raises(ValueError, match="'run' or 'project'"):
        client.storage_report(by="user")  # type: ignore[arg-type]
    result = demo.invoke("storage", "--by", "user")
    assert result.exit_code == 2 and "'user' is not one of" in result.stderr


def test_prune_plan_prices_the_bytes_freed(demo: Demo) -> None:
    plan = demo.json("checkpoint", "prune", "--keep-last", "1", "--dry-run")
    assert plan["dry_run"] is True and plan["done"] == []
    assert plan["rate_usd_per_gigabyte_month"] == RATE
    assert plan["estimated_monthly_cost_freed_usd"] == pytest.approx(
        plan["bytes_freed"] / GIGABYTE * RATE, abs=1e-6
    )
    table = demo.invoke("checkpoint", "prune", "--keep-last", "1", "--dry-run")
    title = table.stdout.splitlines()[0]
    assert title.startswith("To delete: ") and title.rstrip().endswith("/month")
    bob = demo.json("checkpoint", "prune", "--keep-last", "1", "--dry-run", key=demo.member_key)
    assert bob["estimated_monthly_cost_freed_usd"] is None


def test_export_trace_interrupted_keeps_the_part_and_a_rerun_completes_it(
    demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tinker_rest.cli import _output

    session = demo.data.session_ids[0]
    target = tmp_path / "t.pftrace"
    real = _output.DownloadDisplay.progress

    def interrupt(self: Any, done: int, total: int | None) -> None:
        real(self, done, total)
        if done:
            raise KeyboardInterrupt

    monkeypatch.setattr(_output.DownloadDisplay, "progress", interrupt)
    stopped = demo.invoke("session", "export-trace", session, "-o", str(target))
    assert stopped.exit_code == 130, stopped.stderr
    part = tmp_path / "t.pftrace.part"
    assert part.stat().st_size > 0 and not target.exists()
    monkeypatch.setattr(_output.DownloadDisplay, "progress", real)
    done = demo.json("session", "export-trace", session, "-o", str(target))
    assert done["file_size_bytes"] == target.stat().st_size
    assert "traceEvents" in json.loads(target.read_bytes())
    assert not part.exists()

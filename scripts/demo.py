"""`make demo`: start the reference server with demo data and take RestClient on a tour.

The server runs on 127.0.0.1 on a free port, over a SQLite file in a temporary folder that is
removed at the end. Pass --keep DIR to keep the data (then `tinker-rest serve --db DIR/tinker.db`
serves it again).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tinker_rest import ConflictError, NotFoundError, RestClient
from tinker_rest.server import TinkerServer


def step(title: str) -> None:
    print(f"\n== {title}")


def human(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    raise AssertionError("unreachable")


@contextlib.contextmanager
def data_folder(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="tinker-rest-demo-") as tmp:
        yield Path(tmp)


def tour(client: RestClient, member: RestClient) -> None:
    step("Training runs you can see (yours and your projects')")
    runs = client.list_training_runs(limit=10, access_scope="accessible").result()
    print(f"{runs.cursor.total_count} runs")
    for run in runs.training_runs:
        rank = f"LoRA rank {run.lora_rank}" if run.is_lora else "full"
        print(f"  {run.training_run_id:28} {run.base_model:28} {rank:14} owner {run.model_owner}")

    run_id = runs.training_runs[0].training_run_id
    step(f"Checkpoints of {run_id}")
    checkpoints = client.list_checkpoints(run_id).result().checkpoints
    for checkpoint in checkpoints:
        expiry = checkpoint.expires_at.isoformat() if checkpoint.expires_at else "never"
        print(
            f"  {checkpoint.checkpoint_type!s:8} {checkpoint.tinker_path:50} "
            f"{human(checkpoint.size_bytes):>9}  public={checkpoint.public}  expires {expiry}"
        )

    path = checkpoints[0].tinker_path
    step(f"Publish {path}, then try again")
    if checkpoints[0].public:
        client.unpublish_checkpoint_from_tinker_path(path).result()
    client.publish_checkpoint_from_tinker_path(path).result()
    print("  published")
    try:
        client.publish_checkpoint_from_tinker_path(path).result()
    except ConflictError as exc:
        print(f"  second publish: {exc}")

    step("Another user reads its weights info, but only the owner may change it")
    info = member.get_weights_info_by_tinker_path(path).result()
    print(f"  {info.base_model}, LoRA={info.is_lora}, rank={info.lora_rank}")
    try:
        member.unpublish_checkpoint_from_tinker_path(path).result()
    except NotFoundError as exc:
        print(f"  unpublish by another user: {exc}")

    step("Expire it in a week, then never")
    client.set_checkpoint_ttl_from_tinker_path(path, 7 * 86400).result()
    after = next(
        c for c in client.list_checkpoints(run_id).result().checkpoints if c.tinker_path == path
    )
    print(f"  expires at {after.expires_at}")
    client.set_checkpoint_ttl_from_tinker_path(path, None).result()
    print("  expiry removed")

    step("A signed archive URL (needs no API key)")
    archive = client.get_checkpoint_archive_url_from_tinker_path(path).result()
    print(f"  {archive.url}\n  valid until {archive.expires_at}")

    step("Sessions and samplers, awaited from a coroutine")

    async def sessions() -> None:
        page = await client.list_sessions_async(limit=5)
        for session_id in page.sessions:
            session = await client.get_session(session_id)
            print(
                f"  {session_id}: {session.display_name or '-'}, "
                f"{len(session.training_run_ids)} runs, samplers {session.sampler_ids}"
            )
            for sampler_id in session.sampler_ids:
                sampler = await client.get_sampler_async(sampler_id)
                print(f"    {sampler_id} serves {sampler.model_path}")

    asyncio.run(sessions())

    step("Today's audit log (admins only)")
    today = datetime.datetime.now(datetime.UTC).date()
    for entry in client.get_audit_log(day=today).result().entries:
        concerning = entry.tinker_path or entry.model_id or ""
        print(f"  {entry.timestamp:%H:%M:%S} {entry.event:24} {concerning}")


def shell_tour(base_url: str, api_key: str, run_id: str, tinker_path: str, folder: Path) -> None:
    """The same service through the `tinker-rest` command line."""
    env = {**os.environ, "TINKER_BASE_URL": base_url, "TINKER_API_KEY": api_key}
    env.setdefault("COLUMNS", "120")  # rich wraps at 80 columns when not on a terminal
    commands = [
        ["run", "list", "--access-scope", "accessible"],
        ["checkpoint", "list", "--run-id", run_id],
        ["checkpoint", "download", tinker_path, "-o", str(folder / "downloads")],
        ["-f", "json", "checkpoint", "info", tinker_path],
        ["model", "list"],
        ["storage", "--by", "project"],
        ["checkpoint", "prune", "--keep-last", "1", "--dry-run"],
    ]
    for args in commands:
        step("$ tinker-rest " + " ".join(args))
        subprocess.run([sys.executable, "-m", "tinker_rest.cli", *args], env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="keep the server's data in this folder")
    args = parser.parse_args()

    with data_folder(args.keep) as folder:
        server = TinkerServer(str(folder / "tinker.db"))
        demo = server.seed_demo()
        with server.run_in_background() as running:
            print(f"Reference server on {running.base_url}, data in {folder}")
            print(f"Demo keys (shown once): admin {demo.admin_key}, member {demo.member_key}")
            with (
                RestClient(running.base_url, demo.admin_key) as admin,
                RestClient(running.base_url, demo.member_key) as member,
            ):
                tour(admin, member)
                run_id = demo.training_run_ids[0]
                path = admin.list_checkpoints(run_id).result().checkpoints[0].tinker_path
            shell_tour(running.base_url, demo.admin_key, run_id, path, folder)
        server.close()
    print(
        "\nDone. `make serve` keeps a server running; `tinker-rest --help` shows the command line."
    )


if __name__ == "__main__":
    main()

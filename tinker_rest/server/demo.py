"""The demo data set that ``tinker-rest serve --demo`` and :meth:`TinkerServer.seed_demo` add.

An organization, an admin (alice) and a member (bob), a shared project, three sessions, training
runs with training and sampler checkpoints whose files are a few MB, a sampler serving one of
them, one published checkpoint, and (:mod:`.beyond.demo`) an external checkpoint, supported
models, session states and billable usage.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tinker_rest.server.beyond.demo import seed_beyond

if TYPE_CHECKING:
    from tinker_rest.server.server import TinkerServer

MB = 1 << 20


@dataclass(frozen=True)
class DemoData:
    """What :func:`seed_demo` made: the raw API keys (shown once) and every id."""

    organization_id: str
    admin_user_id: str
    member_user_id: str
    admin_email: str
    member_email: str
    admin_key: str
    member_key: str
    project_id: str
    session_ids: list[str] = field(default_factory=list)
    training_run_ids: list[str] = field(default_factory=list)
    sampler_ids: list[str] = field(default_factory=list)
    tinker_paths: list[str] = field(default_factory=list)
    published_tinker_path: str = ""
    external_tinker_path: str = ""


def _weights(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


def seed_demo(server: TinkerServer) -> DemoData:
    """Add the demo data set to ``server`` and return its keys and ids."""
    rng = random.Random(20260115)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    org = server.add_organization("Demo Lab")
    alice_email, bob_email = "alice@example.com", "bob@example.com"
    alice = server.add_user(alice_email, organization_id=org, role="admin")
    bob = server.add_user(bob_email, organization_id=org, role="member")
    admin_key, member_key = server.add_api_key(alice), server.add_api_key(bob)
    project = server.add_project("research", organization_id=org, members=[alice, bob])

    sweep = server.add_session(
        alice,
        display_name="baseline sweep",
        user_metadata={"team": "research"},
        created_at=now - dt.timedelta(days=2),
    )
    shared = server.add_session(
        alice,
        project_id=project,
        display_name="shared experiments",
        created_at=now - dt.timedelta(days=1),
    )
    bobs = server.add_session(bob, display_name="bob's scratch", created_at=now)

    config = json.dumps({"r": 32, "lora_alpha": 32, "base_model": "Qwen/Qwen3-8B"}).encode()
    runs: list[str] = []
    paths: list[str] = []
    for index, (session, base_model, rank) in enumerate(
        [
            (sweep, "Qwen/Qwen3-8B", 32),
            (sweep, "Qwen/Qwen3-8B", 8),
            (shared, "meta-llama/Llama-3.1-8B", 16),
            (bobs, "Qwen/Qwen3-30B-A3B", None),
        ]
    ):
        run = server.add_training_run(
            session,
            base_model=base_model,
            lora_rank=rank,
            user_metadata={"experiment": f"demo-{index}"},
        )
        runs.append(run)
        start = now - dt.timedelta(hours=12 - index)
        for step in (1, 2):
            paths.append(
                server.add_checkpoint(
                    run,
                    "weights",
                    f"{step:04d}",
                    files={
                        "adapter_model.safetensors": _weights(rng, 2 * MB),
                        "adapter_config.json": config,
                        "optimizer.pt": _weights(rng, MB),
                    },
                    created_at=start + dt.timedelta(minutes=30 * step),
                )
            )
        paths.append(
            server.add_checkpoint(
                run,
                "sampler_weights",
                "final",
                files={
                    "adapter_model.safetensors": _weights(rng, 2 * MB),
                    "adapter_config.json": config,
                },
                public=index == 0,
                created_at=start + dt.timedelta(hours=2),
                user_metadata={"stage": "final"},
            )
        )
    external = seed_beyond(
        server.store,
        run_id=runs[0],
        sessions=[sweep, shared, bobs],
        adapter_weights=_weights(rng, 2 * MB),
        now=now,
    )
    samplers = [
        server.add_sampler(sweep, base_model="Qwen/Qwen3-8B", model_path=paths[2]),
        server.add_sampler(bobs, base_model="Qwen/Qwen3-30B-A3B"),
    ]
    return DemoData(
        organization_id=org,
        admin_user_id=alice,
        member_user_id=bob,
        admin_email=alice_email,
        member_email=bob_email,
        admin_key=admin_key,
        member_key=member_key,
        project_id=project,
        session_ids=[sweep, shared, bobs],
        training_run_ids=runs,
        sampler_ids=samplers,
        tinker_paths=paths,
        published_tinker_path=paths[2],
        external_tinker_path=external,
    )

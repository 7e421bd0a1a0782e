"""The demo data set that ``tinker-rest serve --demo`` and :meth:`TinkerServer.seed_demo` add.

An organization, an admin (alice) and a member (bob), a shared project, three sessions, training
runs with training and sampler checkpoints whose files are a few MB, a sampler serving one of
them, one published checkpoint, and (:func:`_seed_beyond`) an external checkpoint, supported
models, session states and billable usage.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field

from tinker_rest.server.store import Store

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


# Real model names, with their context lengths.
DEMO_MODELS = (
    ("Qwen/Qwen3-8B", 32768),
    ("Qwen/Qwen3-30B-A3B", 32768),
    ("meta-llama/Llama-3.1-8B", 131072),
    ("meta-llama/Llama-3.2-1B", 131072),
)


def _seed_beyond(
    store: Store, *, run_id: str, sessions: list[str], adapter_weights: bytes, now: dt.datetime
) -> str:
    """Add the demo data beyond the seed; return the external checkpoint's tinker path."""
    for name, context in DEMO_MODELS:
        store.add_supported_model(name, max_context_length=context)
    config = {
        "peft_type": "LORA",
        "r": 32,
        "lora_alpha": 32,
        "base_model_name_or_path": "Qwen/Qwen3-8B",
    }
    external = store.add_checkpoint(
        run_id,
        "external_weights",
        "final",
        files={
            "adapter_config.json": json.dumps(config, indent=2).encode(),
            "adapter_model.safetensors": adapter_weights,
        },
        created_at=now - dt.timedelta(hours=1),
    )
    sweep, shared, scratch = sessions
    store.set_session_status(sweep, "client_finished", reason={"type": "success"})
    store.set_session_status(
        scratch,
        "failed",
        category="user",
        message="out of memory",
        reason={"type": "training_run", "training_run_id": f"{scratch}:train:0"},
    )
    for hours in range(1, 4):
        when = now - dt.timedelta(hours=hours)
        store.add_usage(
            sweep,
            {"type": "training", "token_count": 120_000 * hours},
            base_model="Qwen/Qwen3-8B",
            when=when,
            estimated_cost_usd=0.048 * hours,
        )
        store.add_usage(
            shared,
            {"type": "sampling_prefill", "token_count": 40_000, "cached": False},
            base_model="meta-llama/Llama-3.1-8B",
            when=when,
            estimated_cost_usd=0.004,
        )
        store.add_usage(
            shared,
            {"type": "sampling_sample", "token_count": 9_000},
            base_model="meta-llama/Llama-3.1-8B",
            when=when,
            estimated_cost_usd=0.0027,
        )
    store.add_usage(sweep, {"type": "checkpoint", "count": 3}, base_model="Qwen/Qwen3-8B", when=now)
    return external


def _weights(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


def seed_demo(store: Store) -> DemoData:
    """Add the demo data set through ``store`` and return its keys and ids.

    It depends on the store only, so that ``server.py`` imports this module and not the
    other way round.
    """
    rng = random.Random(20260115)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    org = store.add_organization("Demo Lab")
    alice_email, bob_email = "alice@example.com", "bob@example.com"
    alice = store.add_user(alice_email, organization_id=org, role="admin")
    bob = store.add_user(bob_email, organization_id=org, role="member")
    admin_key, member_key = store.add_api_key(alice), store.add_api_key(bob)
    project = store.add_project("research", organization_id=org, members=[alice, bob])

    sweep = store.add_session(
        alice,
        display_name="baseline sweep",
        user_metadata={"team": "research"},
        created_at=now - dt.timedelta(days=2),
    )
    shared = store.add_session(
        alice,
        project_id=project,
        display_name="shared experiments",
        created_at=now - dt.timedelta(days=1),
    )
    bobs = store.add_session(bob, display_name="bob's scratch", created_at=now)

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
        run = store.add_training_run(
            session,
            base_model=base_model,
            lora_rank=rank,
            user_metadata={"experiment": f"demo-{index}"},
        )
        runs.append(run)
        start = now - dt.timedelta(hours=12 - index)
        for step in (1, 2):
            paths.append(
                store.add_checkpoint(
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
            store.add_checkpoint(
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
    external = _seed_beyond(
        store,
        run_id=runs[0],
        sessions=[sweep, shared, bobs],
        adapter_weights=_weights(rng, 2 * MB),
        now=now,
    )
    samplers = [
        store.add_sampler(sweep, base_model="Qwen/Qwen3-8B", model_path=paths[2]),
        store.add_sampler(bobs, base_model="Qwen/Qwen3-30B-A3B"),
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

"""The demo data beyond the seed: supported models, an external checkpoint, session states and
billable usage. :func:`~tinker_rest.server.demo.seed_demo` calls :func:`seed_beyond`."""

from __future__ import annotations

import datetime as dt
import json

from tinker_rest.server.beyond.accounts import add_supported_model
from tinker_rest.server.beyond.billing import add_usage
from tinker_rest.server.beyond.session_search import set_session_status
from tinker_rest.server.store import Store

# Real model names, with their context lengths.
DEMO_MODELS = (
    ("Qwen/Qwen3-8B", 32768),
    ("Qwen/Qwen3-30B-A3B", 32768),
    ("meta-llama/Llama-3.1-8B", 131072),
    ("meta-llama/Llama-3.2-1B", 131072),
)


def seed_beyond(
    store: Store, *, run_id: str, sessions: list[str], adapter_weights: bytes, now: dt.datetime
) -> str:
    """Add the demo data beyond the seed; return the external checkpoint's tinker path."""
    for name, context in DEMO_MODELS:
        add_supported_model(store, name, max_context_length=context)
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
    set_session_status(store, sweep, "client_finished", reason={"type": "success"})
    set_session_status(
        store,
        scratch,
        "failed",
        category="user",
        message="out of memory",
        reason={"type": "training_run", "training_run_id": f"{scratch}:train:0"},
    )
    for hours in range(1, 4):
        when = now - dt.timedelta(hours=hours)
        add_usage(
            store,
            sweep,
            {"type": "training", "token_count": 120_000 * hours},
            base_model="Qwen/Qwen3-8B",
            when=when,
            estimated_cost_usd=0.048 * hours,
        )
        add_usage(
            store,
            shared,
            {"type": "sampling_prefill", "token_count": 40_000, "cached": False},
            base_model="meta-llama/Llama-3.1-8B",
            when=when,
            estimated_cost_usd=0.004,
        )
        add_usage(
            store,
            shared,
            {"type": "sampling_sample", "token_count": 9_000},
            base_model="meta-llama/Llama-3.1-8B",
            when=when,
            estimated_cost_usd=0.0027,
        )
    add_usage(
        store, sweep, {"type": "checkpoint", "count": 3}, base_model="Qwen/Qwen3-8B", when=now
    )
    return external

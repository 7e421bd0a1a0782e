"""The generated models read the wire format: full examples, minimal ones, unknown fields."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest
import tinker_rest_client.models as client_models
import tinker_rest_models as server_models

CHECKPOINT = {
    "checkpoint_id": "weights/0001",
    "checkpoint_type": "training",
    "time": "2026-01-15T10:00:00Z",
    "tinker_path": "tinker://sess-7f3a:train:0/weights/0001",
    "size_bytes": 4194304,
    "public": False,
    "expires_at": None,
    "user_metadata": {"experiment": "baseline"},
}
CURSOR = {"offset": 0, "limit": 20, "total_count": 1}
TRAINING_RUN = {
    "training_run_id": "sess-7f3a:train:0",
    "base_model": "Qwen/Qwen3-8B",
    "model_owner": "alice@example.com",
    "is_lora": True,
    "corrupted": False,
    "lora_rank": 32,
    "last_request_time": "2026-01-15T10:00:00Z",
    "last_checkpoint": CHECKPOINT,
    "last_sampler_checkpoint": None,
    "user_metadata": None,
}

# (model name, a full wire example, the same with only the required fields)
EXAMPLES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "Checkpoint",
        CHECKPOINT,
        {k: CHECKPOINT[k] for k in ("checkpoint_id", "checkpoint_type", "time", "tinker_path")},
    ),
    ("Cursor", CURSOR, CURSOR),
    (
        "CheckpointsListResponse",
        {"checkpoints": [CHECKPOINT], "cursor": CURSOR},
        {"checkpoints": []},
    ),
    (
        "TrainingRun",
        TRAINING_RUN,
        {
            k: TRAINING_RUN[k]
            for k in (
                "training_run_id",
                "base_model",
                "model_owner",
                "is_lora",
                "last_request_time",
            )
        },
    ),
    (
        "TrainingRunsResponse",
        {"training_runs": [TRAINING_RUN], "cursor": CURSOR},
        {"training_runs": [], "cursor": CURSOR},
    ),
    (
        "WeightsInfoResponse",
        {
            "base_model": "Qwen/Qwen3-8B",
            "is_lora": True,
            "lora_rank": 32,
            "train_unembed": True,
            "train_mlp": None,
            "train_attn": False,
            "optimizer_config": {"type": "adam", "lr": 0.0001},
        },
        {"base_model": "Qwen/Qwen3-8B", "is_lora": False},
    ),
    (
        "GetSessionResponse",
        {
            "training_run_ids": ["sess-7f3a:train:0"],
            "sampler_ids": ["sess-7f3a:sample:0"],
            "user_metadata": {"team": "nlp"},
            "display_name": None,
        },
        {"training_run_ids": [], "sampler_ids": []},
    ),
    ("ListSessionsResponse", {"sessions": ["sess-7f3a"]}, {"sessions": []}),
    (
        "GetSamplerResponse",
        {
            "sampler_id": "sess-7f3a:sample:0",
            "base_model": "Qwen/Qwen3-8B",
            "model_path": "tinker://sess-7f3a:train:0/sampler_weights/final",
        },
        {"sampler_id": "sess-7f3a:sample:0", "base_model": "Qwen/Qwen3-8B"},
    ),
    (
        "AuditLogResponse",
        {
            "entries": [
                {
                    "timestamp": "2026-01-15T10:00:00Z",
                    "event": "checkpoint_publish",
                    "event_details": {"user": "alice@example.com"},
                    "model_id": "sess-7f3a:train:0",
                    "tinker_path": "tinker://sess-7f3a:train:0/weights/0001",
                    "purpose": None,
                }
            ]
        },
        {"entries": [{"timestamp": "2026-01-15T10:00:00Z", "event": "checkpoint_delete"}]},
    ),
    (
        "CheckpointArchiveUrlResponse",
        {"url": "https://storage.example/a.tar?sig=1", "expires": "2026-01-15T10:15:00Z"},
        {"url": "https://storage.example/a.tar?sig=1", "expires": "2026-01-15T10:15:00Z"},
    ),
]
IDS = [name for name, _, _ in EXAMPLES]


def with_unknown_fields(data: Any) -> Any:
    """A copy of a wire example with a field the models do not know, at every level."""
    if isinstance(data, dict):
        return {**{k: with_unknown_fields(v) for k, v in data.items()}, "added_later": 1}
    if isinstance(data, list):
        return [with_unknown_fields(v) for v in data]
    return data


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON, with datetimes compared as instants rather than as text."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str) and isinstance(b, str) and a != b:
        try:
            return datetime.datetime.fromisoformat(a) == datetime.datetime.fromisoformat(b)
        except ValueError:
            return False
    return bool(a == b)


@pytest.mark.parametrize(("name", "full", "minimal"), EXAMPLES, ids=IDS)
def test_client_model_round_trips_the_wire_format(
    name: str, full: dict[str, Any], minimal: dict[str, Any]
) -> None:
    model = getattr(client_models, name)
    for data in (full, minimal, with_unknown_fields(full)):
        decoded = model.from_dict(copy.deepcopy(data))
        assert same_json(decoded.to_dict(), data)
        assert model.from_dict(decoded.to_dict()) == decoded


@pytest.mark.parametrize(("name", "full", "minimal"), EXAMPLES, ids=IDS)
def test_server_model_round_trips_the_wire_format(
    name: str, full: dict[str, Any], minimal: dict[str, Any]
) -> None:
    model = getattr(server_models, name)
    for data in (full, minimal):
        decoded = model.model_validate(data)
        assert same_json(decoded.model_dump(mode="json", exclude_unset=True), data)
        # The server ignores fields it does not know rather than refusing the request.
        assert model.model_validate({**data, "added_later": 1}) == decoded


def test_server_models_refuse_a_missing_required_field() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="base_model"):
        server_models.TrainingRun.model_validate(
            {k: v for k, v in TRAINING_RUN.items() if k != "base_model"}
        )

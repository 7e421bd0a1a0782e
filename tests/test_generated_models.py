"""The generated layer: result models read the wire format (full examples, minimal ones, unknown
fields); request builders build the request the facade sends; the facade uses only public names."""

from __future__ import annotations

import ast
import datetime
import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest
import tinker_rest_client.api
import tinker_rest_models as server_models
from tinker_rest_client.api import checkpoints, training_runs
from tinker_rest_client.models import AccessScope, CheckpointKind, SetCheckpointTtlRequest

from tinker_rest import types

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


# Objects whose keys are data rather than fields: an added key is a value, not an unknown field.
MAPS = {"user_metadata", "event_details", "optimizer_config"}


def with_unknown_fields(data: Any) -> Any:
    """A copy of a wire example with a field the models do not know, in every model."""
    if isinstance(data, dict):
        fields = {k: v if k in MAPS else with_unknown_fields(v) for k, v in data.items()}
        return {**fields, "added_later": 1}
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
def test_result_model_round_trips_the_wire_format(
    name: str, full: dict[str, Any], minimal: dict[str, Any]
) -> None:
    # One model set: tinker_rest.types re-exports the server's models.
    model = getattr(types, name)
    assert model is getattr(server_models, name)
    for data in (full, minimal):
        decoded = model.model_validate(data)
        assert same_json(decoded.model_dump(mode="json", exclude_unset=True), data)
        # Fields added to the service later are ignored, by client and server alike.
        assert model.model_validate(with_unknown_fields(data)) == decoded


def test_server_models_refuse_a_missing_required_field() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="base_model"):
        server_models.TrainingRun.model_validate(
            {k: v for k, v in TRAINING_RUN.items() if k != "base_model"}
        )


def test_request_builders_make_the_shape_the_seam_sends() -> None:
    assert training_runs.list_training_runs.build_request(
        limit=5, offset=10, access_scope=AccessScope.ACCESSIBLE
    ) == {
        "method": "get",
        "url": "/api/v1/training_runs",
        "params": {"limit": 5, "offset": 10, "access_scope": "accessible"},
    }
    request = checkpoints.set_checkpoint_ttl.build_request(
        "sess-7f3a:train:0",
        CheckpointKind.WEIGHTS,
        "0001",
        body=SetCheckpointTtlRequest(ttl_seconds=None),
    )
    assert request == {
        "method": "put",
        "url": "/api/v1/training_runs/sess-7f3a%3Atrain%3A0/checkpoints/weights/0001/ttl",
        "json": {"ttl_seconds": None},
        "headers": {"Content-Type": "application/json"},
    }


def test_every_operation_has_a_public_request_builder() -> None:
    tags = [m.name for m in pkgutil.iter_modules(tinker_rest_client.api.__path__)]
    assert {"audit", "checkpoints", "samplers", "sessions", "training_runs"} <= set(tags)
    for tag in tags:
        package = importlib.import_module(f"tinker_rest_client.api.{tag}")
        for name in package.__all__:
            assert callable(getattr(package, name).build_request), f"{tag}.{name}"


def test_the_facade_imports_no_private_name_of_the_generated_layer() -> None:
    generated = ("tinker_rest_client", "tinker_rest_models")
    offenders = []
    for path in Path(types.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            else:
                continue
            for module in modules:
                parts = module.split(".")
                if parts[0] in generated and any(p.startswith("_") for p in parts[1:]):
                    offenders.append(f"{path.name}:{node.lineno} {module}")
    assert offenders == []

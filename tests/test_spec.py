"""The spec: valid OpenAPI 3.1, and one operation for every method of the RestClient surface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

SPEC_PATH = Path(__file__).resolve().parent.parent / "spec" / "tinker-rest.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

# Every method of the user's RestClient specification, with the operation it calls. The
# `_from_tinker_path` / `_by_tinker_path` variants call the same operation as their plain twin.
SEED_OPERATIONS = {
    "get_training_run": "get_training_run",
    "get_training_run_by_tinker_path": "get_training_run",
    "get_weights_info_by_tinker_path": "get_weights_info_by_tinker_path",
    "list_training_runs": "list_training_runs",
    "list_checkpoints": "list_checkpoints",
    "get_checkpoint_archive_url": "get_checkpoint_archive_url",
    "get_checkpoint_archive_url_from_tinker_path": "get_checkpoint_archive_url",
    "delete_checkpoint": "delete_checkpoint",
    "delete_checkpoint_from_tinker_path": "delete_checkpoint",
    "get_audit_log": "get_audit_log",
    "publish_checkpoint_from_tinker_path": "publish_checkpoint",
    "unpublish_checkpoint_from_tinker_path": "unpublish_checkpoint",
    "set_checkpoint_ttl_from_tinker_path": "set_checkpoint_ttl",
    "list_user_checkpoints": "list_user_checkpoints",
    "get_session": "get_session",
    "list_sessions": "list_sessions",
    "assign_session_project": "assign_session_project",
    "get_sampler": "get_sampler",
}
TAGS = {
    "training_runs",
    "checkpoints",
    "sessions",
    "samplers",
    "audit",
    "client",
    "storage",
    "auth",
    "capabilities",
    "billing",
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
    return loaded


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_spec_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    validate(spec)


@pytest.mark.parametrize("seed_method", sorted(SEED_OPERATIONS))
def test_each_seed_method_has_exactly_one_operation(spec: dict[str, Any], seed_method: str) -> None:
    found = [
        op for _, _, op in operations(spec) if op["operationId"] == SEED_OPERATIONS[seed_method]
    ]
    assert len(found) == 1


def test_the_facade_has_every_seed_method_and_its_async_twin() -> None:
    from tinker_rest import RestClient

    for name in SEED_OPERATIONS:
        assert callable(getattr(RestClient, name))
        assert callable(getattr(RestClient, f"{name}_async"))


def test_every_operation_is_documented(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(spec)]
    assert len(ids) == len(set(ids)), "operationIds are unique"
    for method, path, op in operations(spec):
        where = f"{method.upper()} {path}"
        assert op["operationId"].islower() and " " not in op["operationId"], where
        assert op["summary"] and op["description"], where
        assert set(op["tags"]) <= TAGS and len(op["tags"]) == 1, where
        assert any(code.startswith("2") for code in op["responses"]), where
        assert any(code.startswith("4") for code in op["responses"]), where


def test_checkpoint_ids_travel_as_two_path_segments(spec: dict[str, Any]) -> None:
    checkpoint_paths = [p for p in spec["paths"] if "/training_runs/" in p and "/checkpoints/" in p]
    assert checkpoint_paths
    for path in checkpoint_paths:
        # get_external_weights_urls is for one kind only, which its path names.
        assert "/checkpoints/{checkpoint_kind}/{checkpoint_name}" in path or (
            "/checkpoints/external_weights/{checkpoint_name}/" in path
        )
    kinds = spec["components"]["schemas"]["CheckpointKind"]["enum"]
    assert kinds == ["weights", "sampler_weights", "external_weights"]


def test_non_get_operations_take_an_idempotency_key(spec: dict[str, Any]) -> None:
    for method, path, op in operations(spec):
        if method in ("get", "head"):
            continue
        refs = [p.get("$ref", "") for p in op.get("parameters", [])]
        assert "#/components/parameters/IdempotencyKey" in refs, f"{method.upper()} {path}"


def test_every_error_response_uses_the_shared_error_schema(spec: dict[str, Any]) -> None:
    responses = spec["components"]["responses"]
    for name, response in responses.items():
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}, name

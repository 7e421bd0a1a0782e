"""Filling in what the service left out of a response, so that no ``Unset`` reaches a user."""

from __future__ import annotations

import contextlib
import datetime
import enum
from typing import Any

import attrs
import tinker_rest_client.models as generated_models
from tinker_rest_client.types import Unset

from tinker_rest._errors import InvalidTinkerPathError
from tinker_rest._paths import TinkerPath
from tinker_rest.types import Checkpoint, CheckpointArchiveUrlResponse

__all__ = ["settle"]


# Values settle never needs to look inside.
_LEAF = (str, int, float, bool, type(None), datetime.date, enum.Enum, Unset)
# Per class: its attrs fields, or None for a class that is not an attrs model.
_FIELDS: dict[type, tuple[attrs.Attribute[Any], ...] | None] = {}


def _fields(cls: type) -> tuple[attrs.Attribute[Any], ...] | None:
    try:
        return _FIELDS[cls]
    except KeyError:
        fields = tuple(attrs.fields(cls)) if attrs.has(cls) else None
        _FIELDS[cls] = fields
        return fields


def settle(value: object) -> None:
    """Replace every ``Unset`` in a parsed response, in place, recursively."""
    if isinstance(value, list):
        for item in value:
            if not isinstance(item, _LEAF):
                settle(item)
        return
    fields = _fields(type(value))
    if fields is None:
        return
    _derive(value)
    for field in fields:
        current = getattr(value, field.name)
        if isinstance(current, Unset):
            setattr(value, field.name, _absent(field))
        elif not isinstance(current, _LEAF):
            settle(current)


def _derive(value: object) -> None:
    """Fill the fields whose value follows from another field of the same response."""
    if isinstance(value, Checkpoint) and isinstance(value.training_run_id, Unset):
        with contextlib.suppress(InvalidTinkerPathError):  # else left to _absent: None
            value.training_run_id = TinkerPath.parse(value.tinker_path).training_run_id
    elif isinstance(value, CheckpointArchiveUrlResponse) and isinstance(value.expires_at, Unset):
        value.expires_at = value.expires


def _absent(field: attrs.Attribute[Any]) -> object:
    """What an absent field means: its default, else None, else an empty object."""
    if field.default is not attrs.NOTHING and not isinstance(field.default, Unset):
        return field.default
    names = [part.strip() for part in str(field.type).split("|")]
    if "None" in names:
        return None
    # A non-nullable object the service may leave out, such as AuditLogEntry.event_details.
    models = [getattr(generated_models, n) for n in names if hasattr(generated_models, n)]
    if len(models) == 1 and hasattr(models[0], "from_dict"):
        return models[0].from_dict({})
    return None

"""Reading a successful response into its result model (see :mod:`tinker_rest.types`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeVar

import httpx
from pydantic import BaseModel

from tinker_rest import types
from tinker_rest._errors import InvalidTinkerPathError
from tinker_rest._paths import TinkerPath
from tinker_rest.types import (
    Checkpoint,
    CheckpointArchiveUrlResponse,
    CheckpointsListResponse,
    TrainingRun,
    TrainingRunsResponse,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["complete", "parse", "result_model"]

M = TypeVar("M", bound=BaseModel)


def result_model(name: str) -> type[BaseModel]:
    """The class of :mod:`tinker_rest.types` named ``name``."""
    model = getattr(types, name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"tinker_rest.types.{name} is not a result model")
    return model


def parse(model: type[M], response: httpx.Response) -> M:
    """The response's JSON body as ``model``, with the fields the hosted service leaves out.

    Raises:
        pydantic.ValidationError: (a ValueError) the body does not match the model.
    """
    value = model.model_validate_json(response.content)
    complete(value)
    return value


def complete(value: BaseModel) -> None:
    """Fill, in place, the fields whose value follows from another field of the same result.

    ``Checkpoint.training_run_id`` is the run id inside its ``tinker_path``, and
    ``CheckpointArchiveUrlResponse.expires_at`` is ``expires``: the seed's users read both and
    the hosted service sends neither.
    """
    if isinstance(value, CheckpointArchiveUrlResponse):
        if value.expires_at is None:
            value.expires_at = value.expires
        return
    for checkpoint in _checkpoints(value):
        if checkpoint.training_run_id is None:
            with contextlib.suppress(InvalidTinkerPathError):  # else it stays None
                checkpoint.training_run_id = TinkerPath.parse(
                    checkpoint.tinker_path
                ).training_run_id


def _checkpoints(value: BaseModel) -> Iterator[Checkpoint]:
    """Every checkpoint a result holds."""
    runs: Iterable[TrainingRun] = ()
    if isinstance(value, Checkpoint):
        yield value
    elif isinstance(value, CheckpointsListResponse):
        yield from value.checkpoints
    elif isinstance(value, TrainingRun):
        runs = (value,)
    elif isinstance(value, TrainingRunsResponse):
        runs = value.training_runs
    for run in runs:
        for checkpoint in (run.last_checkpoint, run.last_sampler_checkpoint):
            if checkpoint is not None:
                yield checkpoint

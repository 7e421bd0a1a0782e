"""Tinker paths: the names of checkpoints.

Grammar::

    tinker_path   = "tinker://" training_run_id "/" kind "/" name
    kind          = "weights" | "sampler_weights" | "external_weights"
    checkpoint_id = kind "/" name
    training_run_id, name = one or more characters, none of them "/", whitespace or a
                            control character

Example: ``tinker://sess-7f3a:train:0/weights/0001`` names the checkpoint ``weights/0001`` of the
training run ``sess-7f3a:train:0``. The kind says what the checkpoint holds: ``weights`` a
training checkpoint, ``sampler_weights`` a sampler checkpoint, ``external_weights`` an external
one.

This parser is stricter than the official SDK's, which accepts an empty run id or name: a path
that cannot name a checkpoint is refused here, before any request is sent.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from typing import Literal

from tinker_rest._errors import InvalidTinkerPathError

__all__ = ["CheckpointKind", "CheckpointType", "TinkerPath", "check_url_segments", "id_problem"]

CheckpointKind = Literal["weights", "sampler_weights", "external_weights"]
CheckpointType = Literal["training", "sampler", "external"]

SCHEME = "tinker://"

_TYPE_OF_KIND: dict[str, CheckpointType] = {
    "weights": "training",
    "sampler_weights": "sampler",
    "external_weights": "external",
}


def id_problem(value: str, what: str) -> str | None:
    """Say why an id cannot be one segment of a URL path, or None when it can.

    This is the one home of the rule: ``.`` and ``..`` would be resolved away by any HTTP
    stack (``GET /training_runs/../checkpoints`` is ``GET /checkpoints``), and a ``/`` would
    make two segments where the spec has one.
    """
    if value in (".", ".."):
        return f"the {what} {value!r} is a relative path segment, not an id"
    if "/" in value:
        return f"the {what} {value!r} contains '/'"
    return None


def check_url_segments(path: str) -> None:
    """Refuse a request path with a segment no id may be (see :func:`id_problem`).

    ``path`` is as openapi-python-client's ``_get_kwargs`` builds it: each id quoted into one
    segment, so an id's ``/`` arrives as ``%2F``.

    Raises:
        ValueError: a segment is ``.`` or ``..`` or contains ``/``, said with the segment.
    """
    for segment in path.split("/"):
        # Cheap tests first: this runs on every call.
        if segment in (".", "..") or ("%" in segment and "%2f" in segment.lower()):
            problem = id_problem(urllib.parse.unquote(segment), "id")
            if problem is not None:
                raise ValueError(f"{problem}: refused before sending {path!r}")


_WHITESPACE = re.compile(r"\s")  # what str.isspace() calls whitespace


def _segment_problem(value: str, what: str) -> str | None:
    """Say what is wrong with one segment of a path, or None when it is fine."""
    if not value:
        return f"the {what} is empty"
    if value in (".", ".."):
        return id_problem(value, what)
    if value.isprintable() and not _WHITESPACE.search(value):
        return None  # the common case, without a Python loop over the characters
    for char in value:
        if char.isspace():
            return f"the {what} contains whitespace"
        if not char.isprintable():
            return f"the {what} contains a control character"
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class TinkerPath:
    """A validated tinker path, ``tinker://<training_run_id>/<kind>/<name>``.

    Build one with :meth:`parse` or from its parts; either way it is checked on creation and
    ``str()`` gives the path back exactly.

    Example:
        >>> path = TinkerPath.parse("tinker://sess-7f3a:train:0/weights/0001")
        >>> path.training_run_id, path.checkpoint_id, path.checkpoint_type
        ('sess-7f3a:train:0', 'weights/0001', 'training')
    """

    training_run_id: str
    kind: CheckpointKind
    name: str

    def __post_init__(self) -> None:
        problem = (
            _segment_problem(self.training_run_id, "training run id")
            or (
                None
                if self.kind in _TYPE_OF_KIND
                else f"the kind {self.kind!r} is not one of {', '.join(_TYPE_OF_KIND)}"
            )
            or _segment_problem(self.name, "checkpoint name")
        )
        if problem is None and "/" in self.training_run_id + self.name:
            problem = "a training run id or checkpoint name contains '/'"
        if problem is not None:
            raise InvalidTinkerPathError(str(self), problem)

    @classmethod
    def parse(cls, tinker_path: str) -> TinkerPath:
        """Parse ``tinker://<training_run_id>/<kind>/<name>``.

        Raises:
            InvalidTinkerPathError: the text is not a tinker path; the message quotes it and
                says what is wrong.
        """
        if not isinstance(tinker_path, str):
            raise InvalidTinkerPathError(
                repr(tinker_path), f"expected a str, got {type(tinker_path).__name__}"
            )
        if not tinker_path.startswith(SCHEME):
            raise InvalidTinkerPathError(tinker_path, f"it does not start with {SCHEME!r}")
        parts = tinker_path[len(SCHEME) :].split("/")
        if len(parts) != 3:
            raise InvalidTinkerPathError(
                tinker_path,
                f"expected 3 parts after {SCHEME!r} (run id, kind, name), found {len(parts)}",
            )
        run_id, kind, name = parts
        return cls._checked(tinker_path, run_id, kind, name)

    @classmethod
    def from_checkpoint_id(cls, training_run_id: str, checkpoint_id: str) -> TinkerPath:
        """Build the path of checkpoint ``<kind>/<name>`` of a training run.

        Raises:
            InvalidTinkerPathError: the run id or checkpoint id cannot name a checkpoint.
        """
        if not isinstance(checkpoint_id, str) or checkpoint_id.count("/") != 1:
            raise InvalidTinkerPathError(
                repr(checkpoint_id),
                "a checkpoint id is '<kind>/<name>', for example 'weights/0001'",
            )
        kind, name = checkpoint_id.split("/")
        return cls._checked(checkpoint_id, training_run_id, kind, name)

    @classmethod
    def _checked(cls, text: str, run_id: str, kind: str, name: str) -> TinkerPath:
        try:
            return cls(run_id, kind, name)  # type: ignore[arg-type]  # checked in __post_init__
        except InvalidTinkerPathError as exc:
            raise InvalidTinkerPathError(text, exc.problem) from None

    @property
    def checkpoint_id(self) -> str:
        """``<kind>/<name>``, the checkpoint's id within its training run."""
        return f"{self.kind}/{self.name}"

    @property
    def checkpoint_type(self) -> CheckpointType:
        """What the checkpoint holds: ``training``, ``sampler`` or ``external``."""
        return _TYPE_OF_KIND[self.kind]

    def __str__(self) -> str:
        return f"{SCHEME}{self.training_run_id}/{self.kind}/{self.name}"

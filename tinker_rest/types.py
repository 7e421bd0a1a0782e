"""The response models RestClient returns, under the names users know them by.

They are the classes generated from the spec (attrs, in ``tinker_rest_client``), re-exported so
that nobody imports from the generated package. Fields the service may leave out are filled in
before a model reaches you: with the field's default, ``None``, or (for
``Checkpoint.training_run_id`` and ``CheckpointArchiveUrlResponse.expires_at``) the value they
stand for, so no ``Unset`` ever shows.
"""

from tinker_rest_client.models import (
    AccessScope,
    AuditEventType,
    AuditLogEntry,
    AuditLogEntryEventDetails,
    AuditLogResponse,
    Checkpoint,
    CheckpointArchiveUrlResponse,
    CheckpointKind,
    CheckpointsListResponse,
    CheckpointType,
    Cursor,
    GetSamplerResponse,
    GetSessionResponse,
    ListSessionsResponse,
    OptimizerConfig,
    TrainingRun,
    TrainingRunsResponse,
    WeightsInfoResponse,
)
from tinker_rest_client.models import (
    UserMetadataType0 as UserMetadata,
)

__all__ = [
    "AccessScope",
    "AuditEventType",
    "AuditLogEntry",
    "AuditLogEntryEventDetails",
    "AuditLogResponse",
    "Checkpoint",
    "CheckpointArchiveUrlResponse",
    "CheckpointKind",
    "CheckpointType",
    "CheckpointsListResponse",
    "Cursor",
    "GetSamplerResponse",
    "GetSessionResponse",
    "ListSessionsResponse",
    "OptimizerConfig",
    "TrainingRun",
    "TrainingRunsResponse",
    "UserMetadata",
    "WeightsInfoResponse",
]

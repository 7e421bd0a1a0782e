"""The result models RestClient returns, under the names the official SDK's ``tinker.types`` has.

They are the pydantic models generated from the spec (``tinker_rest_models``, the same classes the
reference server answers with), re-exported so that nobody imports from the generated package.
They behave as ``tinker.types`` (0.38) does: plain values (``user_metadata`` is a
``dict[str, str] | None``, ``event_details`` a ``dict``, datetimes timezone-aware), enum fields
hold the wire string (``checkpoint.checkpoint_type == "training"``), ``model_dump()``,
``model_dump_json()`` and ``model_validate()`` work, and fields the service adds later are ignored.

Two fields the hosted service leaves out are filled in before a result reaches you:
``Checkpoint.training_run_id`` (the run id inside its ``tinker_path``) and
``CheckpointArchiveUrlResponse.expires_at`` (the same as ``expires``).
"""

from typing import Any

from tinker_rest_models import (
    AccessibleSearchOwner,
    AccessScope,
    AuditEventType,
    AuditLogEntry,
    AuditLogResponse,
    BillingEventInfo,
    BillingUsageEvent,
    BillingUsageResponse,
    BillingUsageSession,
    Checkpoint,
    CheckpointArchiveUrlResponse,
    CheckpointKind,
    CheckpointsListResponse,
    CheckpointType,
    CopyWeightsResponse,
    CurrentCheckpointStorageUsageItem,
    CurrentCheckpointStorageUsageResponse,
    Cursor,
    ExternalWeightsUrlsResponse,
    GetSamplerResponse,
    GetServerCapabilitiesResponse,
    GetSessionResponse,
    ListSessionsResponse,
    OptimizerConfig,
    OwnSearchOwner,
    SessionSearchCursor,
    SessionSearchRequest,
    SessionSearchResponse,
    SessionStatus,
    SessionStatusQuery,
    SessionSummary,
    SessionTraceExportResponse,
    SupportedModel,
    TrainingRun,
    TrainingRunsResponse,
    UserSearchOwner,
    WeightsInfoResponse,
    WhoamiResponse,
)

UserMetadata = dict[str, str]
"""Free-form string labels set by the user (``user_metadata`` is this or ``None``)."""
AuditLogEntryEventDetails = dict[str, Any]
"""What an audit event concerned (``AuditLogEntry.event_details``)."""

__all__ = [
    "AccessScope",
    "AccessibleSearchOwner",
    "AuditEventType",
    "AuditLogEntry",
    "AuditLogEntryEventDetails",
    "AuditLogResponse",
    "BillingEventInfo",
    "BillingUsageEvent",
    "BillingUsageResponse",
    "BillingUsageSession",
    "Checkpoint",
    "CheckpointArchiveUrlResponse",
    "CheckpointKind",
    "CheckpointType",
    "CheckpointsListResponse",
    "CopyWeightsResponse",
    "CurrentCheckpointStorageUsageItem",
    "CurrentCheckpointStorageUsageResponse",
    "Cursor",
    "ExternalWeightsUrlsResponse",
    "GetSamplerResponse",
    "GetServerCapabilitiesResponse",
    "GetSessionResponse",
    "ListSessionsResponse",
    "OptimizerConfig",
    "OwnSearchOwner",
    "SessionSearchCursor",
    "SessionSearchRequest",
    "SessionSearchResponse",
    "SessionStatus",
    "SessionStatusQuery",
    "SessionSummary",
    "SessionTraceExportResponse",
    "SupportedModel",
    "TrainingRun",
    "TrainingRunsResponse",
    "UserMetadata",
    "UserSearchOwner",
    "WeightsInfoResponse",
    "WhoamiResponse",
]

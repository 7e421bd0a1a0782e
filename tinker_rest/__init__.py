"""tinker-rest: a Python client for the Tinker REST API.

    >>> from tinker_rest import RestClient
    >>> client = RestClient()  # TINKER_BASE_URL and TINKER_API_KEY from the environment
    >>> client.list_training_runs(limit=5).result().cursor.total_count

The response models are in :mod:`tinker_rest.types`; the exceptions are all here.
"""

from tinker_rest._admin import AdminClient
from tinker_rest._client import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, RestClient, ServiceClient
from tinker_rest._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    ArchiveIncompleteError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    DownloadError,
    InternalServerError,
    InvalidTinkerPathError,
    MissingAPIKeyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    TargetExistsError,
    TinkerRestError,
    TraceExportError,
    UnprocessableEntityError,
    UnsafeArchiveError,
)
from tinker_rest._futures import APIFuture
from tinker_rest._paths import TinkerPath
from tinker_rest._retry import RetryPolicy
from tinker_rest._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "APIConnectionError",
    "APIFuture",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AdminClient",
    "ArchiveIncompleteError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "DownloadError",
    "InternalServerError",
    "InvalidTinkerPathError",
    "MissingAPIKeyError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RestClient",
    "RetryPolicy",
    "ServiceClient",
    "TargetExistsError",
    "TinkerPath",
    "TinkerRestError",
    "TraceExportError",
    "UnprocessableEntityError",
    "UnsafeArchiveError",
    "__version__",
]

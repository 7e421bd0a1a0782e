"""The exceptions tinker-rest raises.

Every one of them is a ``TinkerRestError``::

    TinkerRestError
    ├── InvalidTinkerPathError       (also a ValueError) a tinker path or checkpoint id is malformed
    ├── MissingAPIKeyError           (also a ValueError) no API key was given or found
    ├── APIConnectionError           the request got no response: refused, reset, DNS, ...
    │   └── APITimeoutError          ... or the connect or read timeout passed
    ├── APIResponseValidationError   a successful response does not match the spec
    ├── DownloadError                a checkpoint could not be downloaded or extracted
    │   ├── TargetExistsError        (also a FileExistsError) the target exists; pass force
    │   ├── ArchiveIncompleteError   the archive kept breaking off or has the wrong length
    │   └── UnsafeArchiveError       the archive holds a link, a device or a path leaving it
    └── APIStatusError               the service answered with an error status
        ├── BadRequestError          400
        ├── AuthenticationError      401
        ├── PermissionDeniedError    403
        ├── NotFoundError            404 (also for what exists but is not yours)
        ├── ConflictError            409
        ├── UnprocessableEntityError 422
        ├── RateLimitError           429
        └── InternalServerError      5xx

Malformed input fails before any request is sent; the others come from a call's future.
"""

from __future__ import annotations

import json

import httpx

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
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
    "TargetExistsError",
    "TinkerRestError",
    "UnprocessableEntityError",
    "UnsafeArchiveError",
]


class TinkerRestError(Exception):
    """The root of every exception tinker-rest raises."""


class InvalidTinkerPathError(TinkerRestError, ValueError):
    """A tinker path or checkpoint id that cannot name a checkpoint."""

    def __init__(self, text: str, problem: str) -> None:
        self.text = text
        self.problem = problem
        super().__init__(f"invalid tinker path {text!r}: {problem}")


class MissingAPIKeyError(TinkerRestError, ValueError):
    """No API key was passed and ``TINKER_API_KEY`` is not set."""


def _describe(request: httpx.Request) -> str:
    return f"{request.method} {request.url.path}"


class APIConnectionError(TinkerRestError):
    """The request got no response."""

    def __init__(self, request: httpx.Request, cause: str) -> None:
        self.request = request
        super().__init__(f"{cause} ({_describe(request)} to {request.url.host})")


class APITimeoutError(APIConnectionError):
    """The connect, write or read timeout passed before a response arrived."""


class APIResponseValidationError(TinkerRestError):
    """A successful response whose body does not match the spec."""

    def __init__(self, response: httpx.Response, problem: str) -> None:
        self.response = response
        self.status_code = response.status_code
        super().__init__(
            f"unexpected {response.status_code} response to {_describe(response.request)}: "
            f"{problem}"
        )


class TraceExportError(TinkerRestError, RuntimeError):
    """The service could not export a session's trace; the message carries its reason."""


class DownloadError(TinkerRestError):
    """A checkpoint could not be downloaded or extracted."""


class TargetExistsError(DownloadError, FileExistsError):
    """The download's target already exists, and replacing it was not asked for."""


class ArchiveIncompleteError(DownloadError):
    """The archive kept breaking off, or its length is not what the server said."""


class UnsafeArchiveError(DownloadError):
    """The archive holds a member that could write outside the target or is not a plain file."""


class APIStatusError(TinkerRestError):
    """The service answered with an error status.

    Attributes:
        status_code: the HTTP status.
        body: the decoded JSON body, or the text when it is not JSON.
        detail: the service's ``detail`` message, when it sent one.
        request_id: the ``x-request-id`` header, to quote when reporting a problem.
        headers: the response headers.
    """

    status_code: int

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.status_code = response.status_code
        self.headers = response.headers
        self.request_id: str | None = response.headers.get("x-request-id")
        try:
            self.body: object = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            self.body = response.text
        detail = self.body.get("detail") if isinstance(self.body, dict) else None
        self.detail: str | None = detail if isinstance(detail, str) else None
        reason = f"{self.status_code} {response.reason_phrase}".rstrip()
        message = f"{reason}: {self.detail}" if self.detail else reason
        suffix = f"; request id {self.request_id}" if self.request_id else ""
        super().__init__(f"{message} ({_describe(response.request)}{suffix})")


class BadRequestError(APIStatusError):
    """400: the request is invalid; the message names what is wrong."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, unknown or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: the caller lacks a role this needs."""


class NotFoundError(APIStatusError):
    """404: it does not exist, or the caller may not see it."""


class ConflictError(APIStatusError):
    """409: the checkpoint is already in the requested state."""


class UnprocessableEntityError(APIStatusError):
    """422: the service could not process the request."""


class RateLimitError(APIStatusError):
    """429: too many requests."""


class InternalServerError(APIStatusError):
    """5xx: the service failed."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error(response: httpx.Response) -> APIStatusError:
    """The exception for an error response, by its status."""
    if response.status_code >= 500:
        return InternalServerError(response)
    return _BY_STATUS.get(response.status_code, APIStatusError)(response)

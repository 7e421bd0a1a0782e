"""The one error type of the reference server, with a subclass per status it answers.

Anything in the server (a dependency, a route, the store) raises :class:`ApiError` or one of
its subclasses; one exception handler in :mod:`tinker_rest.server.api.main` turns it into
``{"detail": "..."}`` with its status and headers::

    ApiError                 any status, with optional headers
    ├── BadRequest           400: invalid input; the detail names the field
    ├── Forbidden            403: the caller lacks a role or may not use a destination
    ├── NotFound             404: it does not exist, or the caller may not see it
    ├── Conflict             409: already in the requested state
    ├── Unprocessable        422: an idempotency key reused for a different request
    └── Unavailable          503: not ready or busy; carries ``Retry-After``
"""

from __future__ import annotations

from starlette.responses import JSONResponse, Response


class ApiError(Exception):
    """An HTTP error answered as ``{"detail": ...}``; ``status`` is the HTTP status."""

    status: int = 400

    def __init_subclass__(cls, *, status: int, **kwargs: object) -> None:
        # Each subclass names its status in its header: ``class NotFound(ApiError, status=404)``.
        super().__init_subclass__(**kwargs)
        cls.status = status

    def __init__(
        self, detail: str, *, status: int | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        self.headers = headers or {}

    def response(self) -> Response:
        """This error as the JSON response every error gets."""
        return error_response(self.status, self.detail, self.headers)


class BadRequest(ApiError, status=400):
    """Invalid input; the detail names the field."""


class Forbidden(ApiError, status=403):
    """The caller lacks a role or may not use a destination."""


class NotFound(ApiError, status=404):
    """It does not exist, or the caller may not see it."""


class Conflict(ApiError, status=409):
    """The thing is already in the requested state."""


class Unprocessable(ApiError, status=422):
    """Well-formed but refused: an idempotency key already used for another request."""


class Unavailable(ApiError, status=503):
    """Not ready yet or busy; ``Retry-After`` says when to ask again."""

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


def error_response(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    """The one shape of every error: ``{"detail": "..."}``."""
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)

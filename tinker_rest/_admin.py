"""AdminClient: the organization administrators' operations (audit log and billing).

It is built like :class:`~tinker_rest.RestClient` (same base URL, key, environment and
options) and sends through a RestClient's seam: one pool of workers and connections, the same
retries and errors. Every operation needs the admin role; others get ``PermissionDeniedError``.
"""

from __future__ import annotations

import datetime
from typing import Any

from tinker_rest_client.api.billing import get_billing_usage as _get_billing_usage
from tinker_rest_client.api.billing import (
    get_current_checkpoint_storage_usage as _get_current_checkpoint_storage_usage,
)

from tinker_rest._client import AuditEvents, RestClient
from tinker_rest._futures import APIFuture
from tinker_rest.types import (
    AuditLogResponse,
    BillingUsageResponse,
    CurrentCheckpointStorageUsageResponse,
)

__all__ = ["AdminClient"]


def _instant(value: datetime.datetime | str, name: str) -> datetime.datetime:
    """An RFC 3339 instant with an offset, from a datetime or a string."""
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name} must be an RFC 3339 datetime, not {value!r}") from None
    if not isinstance(value, datetime.datetime):
        raise TypeError(f"{name} must be a datetime or an RFC 3339 string, not {value!r}")
    if value.tzinfo is None:
        raise ValueError(f"{name} must carry a UTC offset, such as 2026-01-01T00:00:00Z")
    return value


class AdminClient:
    """A client for the admin operations of the Tinker REST API.

    Each method returns an :class:`~tinker_rest.APIFuture` at once and has an ``_async`` twin,
    as on :class:`~tinker_rest.RestClient`, whose construction this shares.

    Example:
        >>> admin = AdminClient()  # TINKER_BASE_URL and TINKER_API_KEY from the environment
        >>> usage = admin.get_billing_usage("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
        >>> print(len(usage.result().data))
    """

    def __init__(self, base_url: str | None = None, api_key: str | None = None, **options: Any):
        """Make a client; the arguments are :class:`~tinker_rest.RestClient`'s. Sends nothing."""
        self._rest = RestClient(base_url, api_key, **options)
        self.base_url = self._rest.base_url

    def __repr__(self) -> str:
        return f"AdminClient(base_url={self.base_url!r})"

    def close(self) -> None:
        """Let running calls finish, cancel queued ones, and close the connections."""
        self._rest.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get_audit_log(
        self, event_type: AuditEvents = "all", day: datetime.date | None = None
    ) -> APIFuture[AuditLogResponse]:
        """Read one UTC day of the organization's audit log, oldest first.

        ``GET /api/v1/audit``; see :meth:`RestClient.get_audit_log
        <tinker_rest.RestClient.get_audit_log>` for the arguments.
        """
        return self._rest.get_audit_log(event_type, day)

    async def get_audit_log_async(
        self, event_type: AuditEvents = "all", day: datetime.date | None = None
    ) -> AuditLogResponse:
        """Coroutine twin of :meth:`get_audit_log`."""
        return await self.get_audit_log(event_type, day)

    def get_billing_usage(
        self, starting_on: datetime.datetime | str, ending_before: datetime.datetime | str
    ) -> APIFuture[BillingUsageResponse]:
        """Read the hourly usage buckets of the organization in ``[starting_on, ending_before)``.

        ``GET /api/v1/billing/usage/events``

        Args:
            starting_on: the first instant, a datetime with a UTC offset or an RFC 3339 string.
            ending_before: the end, exclusive.

        Raises:
            ValueError: at once, for a datetime without an offset, an unreadable string, or an
                end not after the start.
            PermissionDeniedError: (from the future) the caller is not an admin.

        Example:
            >>> usage = admin.get_billing_usage("2026-01-01T00:00Z", "2026-01-02T00:00Z").result()
            >>> for event in usage.data: print(event.bucket_start, event.event_info.type)
        """
        start = _instant(starting_on, "starting_on")
        end = _instant(ending_before, "ending_before")
        if end <= start:
            raise ValueError("ending_before must be after starting_on")
        request = _get_billing_usage._get_kwargs(starting_on=start, ending_before=end)
        return self._rest._submit(request, _get_billing_usage._parse_response, BillingUsageResponse)

    async def get_billing_usage_async(
        self, starting_on: datetime.datetime | str, ending_before: datetime.datetime | str
    ) -> BillingUsageResponse:
        """Coroutine twin of :meth:`get_billing_usage`."""
        return await self.get_billing_usage(starting_on, ending_before)

    def get_current_checkpoint_storage_usage(
        self, project_id: str | None = None
    ) -> APIFuture[CurrentCheckpointStorageUsageResponse]:
        """Read the organization's live checkpoint storage, by project and session owner.

        ``GET /api/v1/billing/usage/checkpoints/current``

        Args:
            project_id: only this project; every project when None (not sent).

        Raises:
            PermissionDeniedError: (from the future) the caller is not an admin.
        """
        request = _get_current_checkpoint_storage_usage._get_kwargs(
            **({} if project_id is None else {"project_id": project_id})
        )
        parse = _get_current_checkpoint_storage_usage._parse_response
        return self._rest._submit(request, parse, CurrentCheckpointStorageUsageResponse)

    async def get_current_checkpoint_storage_usage_async(
        self, project_id: str | None = None
    ) -> CurrentCheckpointStorageUsageResponse:
        """Coroutine twin of :meth:`get_current_checkpoint_storage_usage`."""
        return await self.get_current_checkpoint_storage_usage(project_id)

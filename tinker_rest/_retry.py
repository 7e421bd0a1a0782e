"""The retry policy: which failures are worth another attempt, and how long to wait first.

One layer, bounded: a call is tried at most ``1 + max_retries`` times, and never waits more than
``max_retry_after`` between attempts. A conflict (409) is final whatever the server says; for
other statuses the server may decide with ``x-should-retry``.

Every loop that waits and asks again uses a policy: the API calls' retry loop
(``RestClient._exchange``), the archive-build polling, and the download's resume loop. Such a
loop asks :meth:`RetryPolicy.should_retry` whether an outcome is worth another attempt, and
:meth:`RetryPolicy.delay` how long to wait first; :meth:`RetryPolicy.without` makes the policy a
polling loop needs (one that does not retry the status it polls on).
"""

from __future__ import annotations

import dataclasses
import email.utils
import random
import time

import httpx

__all__ = ["RetryPolicy"]

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Statuses never retried, whatever x-should-retry says: a conflict says the request's effect
# already holds (or cannot), and sending it again cannot change that.
FINAL_STATUSES = frozenset({409})


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """When to retry a request and how long to wait before it.

    Attributes:
        max_retries: attempts after the first; 0 turns retries off.
        initial_delay: the first backoff, in seconds, doubled after each attempt.
        max_delay: the cap on the exponential backoff.
        max_retry_after: the cap on a wait the server asks for with ``Retry-After``.
        statuses: the response statuses worth retrying.
    """

    max_retries: int = 3
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    statuses: frozenset[int] = RETRYABLE_STATUSES

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, not {self.max_retries}")

    def without(self, *statuses: int) -> RetryPolicy:
        """This policy, with some statuses no longer retried."""
        return dataclasses.replace(self, statuses=self.statuses - set(statuses))

    def should_retry(self, response: httpx.Response) -> bool:
        """Whether a response is worth another attempt (before counting attempts).

        A 409 never is; otherwise the server's ``x-should-retry: true|false`` decides, else
        whether the status is one of :attr:`statuses`.
        """
        if response.status_code in FINAL_STATUSES:
            return False
        verdict = response.headers.get("x-should-retry")
        if verdict == "true":
            return True
        if verdict == "false":
            return False
        return response.status_code in self.statuses

    def may_retry(self, retries_done: int) -> bool:
        """Whether a loop that has retried ``retries_done`` times may try again."""
        return retries_done < self.max_retries

    def delay(self, retries_done: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before retry number ``retries_done + 1``.

        The server's ``retry-after-ms`` or ``Retry-After`` wins when it asks for a sane wait
        (up to ``max_retry_after``); otherwise exponential backoff with jitter: the nominal
        delay less up to a quarter of it, so that many clients do not retry in step.
        """
        if response is not None:
            asked = _retry_after(response.headers)
            if asked is not None and 0 <= asked <= self.max_retry_after:
                return asked
        nominal = min(self.initial_delay * 2.0**retries_done, self.max_delay)
        return nominal * (1.0 - 0.25 * random.random())


def _retry_after(headers: httpx.Headers) -> float | None:
    """The wait a response asks for, in seconds, or None when it asks for none."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return float(millis) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()

"""Signed download URLs: HMAC-SHA256 over the path and the expiry.

The secret is made on first start and kept in ``<data folder>/secret`` (mode 0600), so URLs stay
valid across restarts. :meth:`UrlSigner.verify` compares in constant time; a wrong signature or
a past expiry is refused (the download route answers 403).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path


def load_or_create_secret(path: Path) -> bytes:
    """Read the server secret, creating it (32 random bytes, hex) on first start."""
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(value + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return bytes.fromhex(value)


class UrlSigner:
    """Signs and checks ``<path>?expires=<unix seconds>&signature=<hex>`` URLs."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def signature(self, path: str, expires: int) -> str:
        """The lowercase hex HMAC-SHA256 of ``path`` and ``expires``."""
        message = f"{path}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(self, path: str, expires: int) -> str:
        """The query string that makes ``path`` downloadable until ``expires``."""
        return f"expires={expires}&signature={self.signature(path, expires)}"

    def verify(self, path: str, expires: int, signature: str, *, now: float | None = None) -> bool:
        """Whether the signature is right (constant-time) and the URL has not expired."""
        expected = self.signature(path, expires)
        valid = hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))
        return valid and expires > (time.time() if now is None else now)

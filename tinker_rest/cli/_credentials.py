"""The API key ``tinker-rest auth login`` stores, in the official CLI's credentials file.

The file is ``~/.tinker/credentials.json``, in the official CLI's shape (version 1: named keys
and the name of the default one), so a key stored by either CLI serves both::

    {"version": 1, "default": "<key id>", "keys": {"<key id>": {"type": "manual",
     "key": "tml-...", "name": "..."}}}

Its directory is made 0700 and the file written 0600 through a temporary file and a rename,
so it is never readable by others nor seen half written. The stored key is used only when
neither ``--api-key`` nor ``TINKER_API_KEY`` gives one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["credentials_path", "forget", "remember", "stored_key"]


def credentials_path() -> Path:
    """Where the key is kept: ``~/.tinker/credentials.json``, as the official CLI keeps it."""
    return Path("~/.tinker/credentials.json").expanduser()


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"version": 1, "default": None, "keys": {}}
    except (OSError, ValueError) as exc:
        raise OSError(f"cannot read the credentials file {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("keys", {}), dict):
        raise OSError(f"the credentials file {path} is not in the expected shape")
    data.setdefault("keys", {})
    return data


def stored_key() -> str | None:
    """The default stored key, or None when there is none (or no readable file)."""
    try:
        data = _load(credentials_path())
    except OSError:
        return None
    record = data["keys"].get(data.get("default"))
    key = record.get("key") if isinstance(record, dict) else None
    return key if isinstance(key, str) and key else None


def key_id(key: str) -> str:
    """A name to file a key under that does not reveal it: a short hash of it."""
    return "tinker-rest-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def remember(key: str, name: str, note: str | None = None) -> Path:
    """Store ``key`` as the default key; return the file's path."""
    path = credentials_path()
    data = _load(path)
    ident = key_id(key)
    record: dict[str, Any] = {"type": "manual", "key": key, "name": name}
    if note:
        record["note"] = note
    data["keys"][ident] = record
    data["default"] = ident
    _save(path, data)
    return path


def forget() -> str | None:
    """Remove the default key; return its name, or None when none was stored."""
    path = credentials_path()
    data = _load(path)
    ident = data.get("default")
    record = data["keys"].pop(ident, None) if ident is not None else None
    if record is None:
        return None
    data["default"] = None
    _save(path, data)
    return str(record.get("name") or ident)


def _save(path: Path, data: dict[str, Any]) -> None:
    directory = path.parent
    if not directory.is_dir():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)  # mkdir's mode is masked by the umask
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.")
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump({k: v for k, v in data.items() if v is not None}, out, indent=2)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise

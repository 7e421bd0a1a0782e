"""Organizations, users, API keys and projects: the admin API, and who is calling.

Also who a key belongs to as URNs (``whoami``) and the models the server supports
(``get_server_capabilities``).
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from sqlalchemy import (
    func,
    select,
)

from tinker_rest.server import db
from tinker_rest.server.errors import (
    BadRequest,
    NotFound,
)
from tinker_rest.server.store.base import (
    ROLES,
    Caller,
    StoreBase,
    _new_id,
    hash_api_key,
)

CALLER_CACHE_SECONDS = 5.0
USER_URN = re.compile(r"urn:tinker:user:([A-Za-z0-9_-]{1,64})")


def user_urn(user_id: str) -> str:
    """The URN of a user, ``urn:tinker:user:<user id>``."""
    return f"urn:tinker:user:{user_id}"


def org_urn(organization_id: str) -> str:
    """The URN of an organization, ``urn:tinker:org:<organization id>``."""
    return f"urn:tinker:org:{organization_id}"


def user_id_of(urn: str, field: str) -> str:
    """The user id inside a user URN; anything else is a 400 naming ``field``."""
    match = USER_URN.fullmatch(urn)
    if match is None:
        raise BadRequest(f"{field}: {urn!r} is not a user URN, urn:tinker:user:<user id>")
    return match.group(1)


class AccountStore(StoreBase):
    """Authentication, and the admin operations behind ``TinkerServer`` and the admin CLI."""

    def authenticate(self, raw_key: str | None) -> Caller | None:
        """The caller behind an ``X-API-Key``, or None for a missing, unknown or revoked key."""
        if not raw_key:
            return None
        key_hash = hash_api_key(raw_key)
        cached = self._recent_caller(key_hash)
        if cached is not None:
            return cached
        caller = self._lookup_caller(key_hash)
        with self._callers_lock:
            if caller is None:
                self._callers.pop(key_hash, None)
            else:
                self._callers[key_hash] = (time.monotonic(), caller)
        return caller

    def recent_caller(self, raw_key: str | None) -> Caller | None:
        """The caller behind a key :meth:`authenticate` accepted in the last few seconds, else
        None. It never touches the database, so an event loop may call it."""
        return self._recent_caller(hash_api_key(raw_key)) if raw_key else None

    def _recent_caller(self, key_hash: str) -> Caller | None:
        # Every request authenticates, so a key seen in the last few seconds is not looked up
        # again. A revocation through this store takes effect at once; one made by another
        # process on the same database (`tinker-rest admin revoke-key`) within CALLER_CACHE_SECONDS.
        with self._callers_lock:
            cached = self._callers.get(key_hash)
        if cached is not None and time.monotonic() - cached[0] < CALLER_CACHE_SECONDS:
            return cached[1]
        return None

    def _lookup_caller(self, key_hash: str) -> Caller | None:
        with self.transaction() as s:
            row = s.execute(
                select(db.User)
                .join(db.ApiKey, db.ApiKey.user_id == db.User.id)
                .where(db.ApiKey.key_hash == key_hash, db.ApiKey.revoked_at.is_(None))
            ).scalar_one_or_none()
            if row is None:
                return None
            return Caller(row.id, row.email, row.organization_id, row.role, key_hash)

    def add_organization(self, name: str) -> str:
        """Create an organization and return its id."""
        org_id = _new_id("org")
        with self.transaction() as s:
            self._add(s, db.Organization(id=org_id, name=name))
        return org_id

    def add_user(self, email: str, *, organization_id: str, role: str = "member") -> str:
        """Create a user with role ``member`` or ``admin`` and return the user id."""
        if role not in ROLES:
            raise BadRequest(f"role: must be one of {', '.join(ROLES)}, not {role!r}")
        user_id = _new_id("user")
        with self.transaction() as s:
            self._add(
                s, db.User(id=user_id, email=email, organization_id=organization_id, role=role)
            )
        return user_id

    def add_api_key(self, user_id: str, raw_key: str | None = None) -> str:
        """Create an API key for a user; the raw key is returned once and never stored.

        ``raw_key`` imports a key made elsewhere (``tml-`` and at least 32 more characters).
        """
        if raw_key is None:
            raw_key = "tml-" + secrets.token_urlsafe(32)
        elif not raw_key.startswith("tml-") or len(raw_key) < 36:
            raise BadRequest("key: must be tml- followed by at least 32 characters")
        with self.transaction() as s:
            user = self._existing(s, db.User, user_id)
            self._add(
                s, db.ApiKey(id=_new_id("key"), key_hash=hash_api_key(raw_key), user_id=user_id)
            )
            self._audit(s, user.organization_id, "api_key_create", {"user": user.email})
        return raw_key

    def revoke_api_key(self, raw_key: str) -> None:
        """Revoke an API key given in full: it answers 401 from now on. An unknown key raises
        :class:`NotFound`."""
        with self.transaction() as s:
            key = s.execute(
                select(db.ApiKey).where(db.ApiKey.key_hash == hash_api_key(raw_key))
            ).scalar_one_or_none()
            if key is None:
                raise NotFound("API key not found")
            if key.revoked_at is None:
                key.revoked_at = db.utcnow()
                user = s.get(db.User, key.user_id)
                assert user is not None
                self._audit(s, user.organization_id, "api_key_revoke", {"user": user.email})
        # After the commit, so that no request can cache the key as valid again.
        with self._callers_lock:
            self._callers.pop(hash_api_key(raw_key), None)

    def list_users(self) -> list[dict[str, object]]:
        """Every user, oldest first: id, email, role, organization and active key count.

        For ``tinker-rest admin list-users``: the way back to a key when the demo's were lost.
        """
        active = (
            select(db.ApiKey.user_id, func.count().label("key_count"))
            .where(db.ApiKey.revoked_at.is_(None))
            .group_by(db.ApiKey.user_id)
            .subquery()
        )
        query = (
            select(db.User, db.Organization.name, active.c.key_count)
            .join(db.Organization, db.Organization.id == db.User.organization_id)
            .outerjoin(active, active.c.user_id == db.User.id)
            .order_by(db.User.created_at, db.User.id)
        )
        with self.transaction() as s:
            return [
                {
                    "user_id": user.id,
                    "email": user.email,
                    "role": user.role,
                    "organization_id": user.organization_id,
                    "organization_name": org_name,
                    "active_api_keys": keys or 0,
                    "created_at": user.created_at,
                }
                for user, org_name, keys in s.execute(query)
            ]

    def list_api_keys(self, user_id: str | None = None) -> list[dict[str, object]]:
        """API keys, oldest first, of one user or of all: never the key, which is not kept.

        For ``tinker-rest admin list-keys``.
        """
        query = (
            select(db.ApiKey, db.User.email)
            .join(db.User, db.User.id == db.ApiKey.user_id)
            .order_by(db.ApiKey.created_at, db.ApiKey.id)
        )
        if user_id is not None:
            query = query.where(db.ApiKey.user_id == user_id)
        with self.transaction() as s:
            return [
                {
                    "key_id": key.id,
                    "user_id": key.user_id,
                    "email": email,
                    "created_at": key.created_at,
                    "revoked_at": key.revoked_at,
                }
                for key, email in s.execute(query)
            ]

    def add_project(
        self,
        name: str,
        *,
        organization_id: str,
        members: list[str] | tuple[str, ...] = (),
        project_id: str | None = None,
    ) -> str:
        """Create a project with the given member user ids and return its id."""
        project_id = project_id or _new_id("proj")
        with self.transaction() as s:
            self._add(s, db.Project(id=project_id, name=name, organization_id=organization_id))
            s.flush()
            for user_id in dict.fromkeys(members):
                self._add(s, db.ProjectMember(project_id=project_id, user_id=user_id))
        return project_id

    def add_project_member(self, project_id: str, user_id: str) -> None:
        """Add a user to a project."""
        with self.transaction() as s:
            if s.get(db.ProjectMember, (project_id, user_id)) is None:
                self._add(s, db.ProjectMember(project_id=project_id, user_id=user_id))

    def is_empty(self) -> bool:
        """Whether the database holds no organization yet."""
        with self.transaction() as s:
            return s.execute(select(func.count()).select_from(db.Organization)).scalar_one() == 0

    @staticmethod
    def whoami(caller: Caller) -> dict[str, Any]:
        """The caller as URNs and email.

        ``GET /api/v1/auth/apikey/me``
        """
        return {
            "user_urn": user_urn(caller.user_id),
            "org_urn": org_urn(caller.organization_id),
            "email": caller.email,
        }

    def supported_models(self) -> list[dict[str, Any]]:
        """Every model configured on the server, by name.

        ``GET /api/v1/get_server_capabilities``
        """
        with self.transaction() as s:
            rows = s.execute(
                select(db.SupportedModel).order_by(db.SupportedModel.model_name)
            ).scalars()
            return [
                {
                    "model_name": row.model_name,
                    "max_context_length": row.max_context_length,
                    "trainable": row.trainable,
                    "sampleable": row.sampleable,
                }
                for row in rows
            ]

    def add_supported_model(
        self,
        model_name: str,
        *,
        max_context_length: int | None = None,
        trainable: bool = True,
        sampleable: bool = True,
    ) -> None:
        """Configure a supported model, or replace its settings."""
        if not model_name:
            raise BadRequest("model_name: must not be empty")
        with self.write(None) as s:
            s.merge(
                db.SupportedModel(
                    model_name=model_name,
                    max_context_length=max_context_length,
                    trainable=trainable,
                    sampleable=sampleable,
                )
            )

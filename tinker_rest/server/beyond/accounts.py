"""Who a key belongs to, as URNs, and the models the server supports."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from tinker_rest.server import db
from tinker_rest.server.store import BadRequest, Caller, Store

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


def whoami(caller: Caller) -> dict[str, Any]:
    """The caller as URNs and email.

    ``GET /api/v1/auth/apikey/me``
    """
    return {
        "user_urn": user_urn(caller.user_id),
        "org_urn": org_urn(caller.organization_id),
        "email": caller.email,
    }


def supported_models(s: DbSession) -> list[dict[str, Any]]:
    """Every model configured on the server, by name.

    ``GET /api/v1/get_server_capabilities``
    """
    rows = s.execute(select(db.SupportedModel).order_by(db.SupportedModel.model_name)).scalars()
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
    store: Store,
    model_name: str,
    *,
    max_context_length: int | None = None,
    trainable: bool = True,
    sampleable: bool = True,
) -> None:
    """Configure a supported model, or replace its settings."""
    if not model_name:
        raise BadRequest("model_name: must not be empty")
    with store.transaction() as s:
        s.merge(
            db.SupportedModel(
                model_name=model_name,
                max_context_length=max_context_length,
                trainable=trainable,
                sampleable=sampleable,
            )
        )

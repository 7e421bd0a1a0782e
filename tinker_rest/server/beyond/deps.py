"""The typed dependencies of the routes in this package: the one adapter to the app's machinery.

Every route here takes the database session, the caller, the store and the URL signer through
these ``Annotated`` aliases, so repointing them (at a shared ``api/deps.py``, say) is a change
in this one file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session as DbSession

from tinker_rest.server.app import require_caller
from tinker_rest.server.signing import UrlSigner
from tinker_rest.server.store import Caller, Store

# How long the signed URLs made here (checkpoint files, traces) stay valid.
SIGNED_URL_SECONDS = 3600


def get_store(request: Request) -> Store:
    """The app's store."""
    store: Store = request.app.state.store
    return store


def get_signer(request: Request) -> UrlSigner:
    """The app's URL signer."""
    signer: UrlSigner = request.app.state.signer
    return signer


def get_db(store: Annotated[Store, Depends(get_store)]) -> Iterator[DbSession]:
    """A database session for one request: committed after the route returns, else rolled back."""
    with store.transaction() as session:
        yield session


def base_url(request: Request) -> str:
    """The server's URL as the client reached it, for the signed URLs it hands out."""
    return str(request.base_url).rstrip("/")


CallerDep = Annotated[Caller, Depends(require_caller)]
StoreDep = Annotated[Store, Depends(get_store)]
SignerDep = Annotated[UrlSigner, Depends(get_signer)]
# Committed when the route returns, before the response goes out (scope="function"): a client
# that reads right after an acknowledged write must see it.
DbDep = Annotated[DbSession, Depends(get_db, scope="function")]
BaseUrlDep = Annotated[str, Depends(base_url)]

"""The domain service of the reference server: every read and write, with its access rules.

Routes (``api/routes/*.py``) and the admin API of :class:`TinkerServer` call :class:`Store`;
nothing else touches the database. :class:`Store` is one class made of one part per resource,
each in its own module beside this one (``accounts``, ``training_runs``, ``checkpoints``,
``weights``, ``sessions``, ``session_search``, ``traces``, ``samplers``, ``audit``,
``billing``, ``archives``, ``sweep``) over :class:`StoreBase`
(``base.py``: transactions, idempotent writes, the one visibility rule). A new resource is one
module with one ``StoreBase`` subclass, added to the bases of :class:`Store` below.
"""

from tinker_rest.server.store.accounts import AccountStore
from tinker_rest.server.store.archives import ArchiveStore
from tinker_rest.server.store.audit import AUDIT_EVENT_PREFIXES, AuditStore
from tinker_rest.server.store.base import (
    Caller,
    CheckpointFiles,
    StoreBase,
    StoreError,
    hash_api_key,
    parse_tinker_path,
)
from tinker_rest.server.store.billing import BillingStore
from tinker_rest.server.store.checkpoints import CheckpointStore, checkpoint_view
from tinker_rest.server.store.samplers import SamplerStore
from tinker_rest.server.store.session_search import SessionSearchStore
from tinker_rest.server.store.sessions import SessionStore
from tinker_rest.server.store.sweep import SweepStore
from tinker_rest.server.store.traces import TraceStore
from tinker_rest.server.store.training_runs import TrainingRunStore
from tinker_rest.server.store.weights import WeightStore

__all__ = [
    "AUDIT_EVENT_PREFIXES",
    "Caller",
    "CheckpointFiles",
    "Store",
    "StoreBase",
    "StoreError",
    "checkpoint_view",
    "hash_api_key",
    "parse_tinker_path",
]


class Store(
    AccountStore,
    TrainingRunStore,
    CheckpointStore,
    WeightStore,
    TraceStore,
    SessionStore,
    SessionSearchStore,
    SamplerStore,
    AuditStore,
    BillingStore,
    ArchiveStore,
    SweepStore,
):
    """Every domain operation of the server, over one SQLAlchemy engine and the blob folder."""

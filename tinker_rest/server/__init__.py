"""The tinker-rest reference server: a real, local, Tinker-compatible REST service.

It implements every operation of ``spec/tinker-rest.yaml`` over SQLAlchemy (SQLite by default,
PostgreSQL given a URL), with checkpoint files on disk, signed archive downloads, idempotent
retries and an audit log. Needs the ``server`` extra: ``pip install 'tinker-rest[server]'``.

Layout:

- :mod:`~tinker_rest.server.server`: :class:`TinkerServer`, the Python API (add data, run).
- :mod:`~tinker_rest.server.api`: the HTTP layer: ``main.py`` (the app, error handlers,
  limits), ``deps.py`` (typed dependencies), ``routes/<tag>.py`` (one router per spec tag).
- :mod:`~tinker_rest.server.store`: the domain service and its access rules, one module per
  resource over ``store/base.py``.
- :mod:`~tinker_rest.server.errors`: the one error type. :mod:`~tinker_rest.server.idempotency`:
  idempotent writes and replays.
- :mod:`~tinker_rest.server.db`, :mod:`~tinker_rest.server.migrate` and ``migrations/``: the
  schema and its Alembic migrations, run at start.
- :mod:`~tinker_rest.server.archives`, :mod:`~tinker_rest.server.signing`: archive builds and
  signed URLs. :mod:`~tinker_rest.server.protocol`: the request-header deadline.
- :mod:`~tinker_rest.server.demo`: the ``--demo`` data. :mod:`~tinker_rest.server.cli`:
  ``tinker-rest serve`` and ``tinker-rest admin``.

Example::

    from tinker_rest.server import TinkerServer

    server = TinkerServer("/tmp/x/tinker.db")
    demo = server.seed_demo()
    with server.run_in_background() as running:
        print(running.base_url, demo.admin_key)
"""

from tinker_rest.server.demo import DemoData
from tinker_rest.server.server import RunningServer, TinkerServer

__all__ = ["DemoData", "RunningServer", "TinkerServer"]

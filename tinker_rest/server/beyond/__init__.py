"""The reference server's operations beyond the seed's 18 methods (the official SDK 0.38 rest).

Each resource is one router module under ``routes/`` and one store module here, in the style of
FastAPI's full-stack template: routes take typed dependencies (:mod:`.deps`) and call plain
functions over a database session; every error is a :class:`~tinker_rest.server.store.StoreError`.

- :mod:`.accounts`: ``whoami`` and the supported models (``get_server_capabilities``).
- :mod:`.weights`: ``copy_weights`` and the files of ``external_weights`` checkpoints.
- :mod:`.session_search`: ``search_sessions``. :mod:`.traces`: ``export_session_trace``.
- :mod:`.billing`: usage events and checkpoint storage, for admins.
- :mod:`.files`: serving a file from disk behind a signed URL, whole or one byte range.
"""

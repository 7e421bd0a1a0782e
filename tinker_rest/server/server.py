"""``TinkerServer``: the reference server's Python API for tests, benchmarks and users.

One object owns everything a running server needs: the database (migrated at start), the data
folder beside it (``blobs/`` for checkpoint files, ``archives/`` for built tars, ``secret`` for
URL signing), the archive builder, the ASGI app, and the expiry sweep (at start and then every
``sweep_interval`` seconds while serving).

Example::

    server = TinkerServer(tmp_path / "tinker.db")
    org = server.add_organization("acme")
    key = server.add_api_key(server.add_user("a@x.org", organization_id=org))
    with server.run_in_background() as running:
        httpx.get(running.base_url + "/api/v1/training_runs", headers={"X-API-Key": key})
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

import uvicorn

from tinker_rest.server import migrate
from tinker_rest.server.archives import ArchiveBuilder
from tinker_rest.server.db import make_engine
from tinker_rest.server.demo import DemoData, seed_demo
from tinker_rest.server.protocol import (
    HEADER_TIMEOUT_SECONDS,
    MAX_HEADER_BYTES,
    header_deadline_protocol,
)
from tinker_rest.server.signing import UrlSigner, load_or_create_secret
from tinker_rest.server.store import Store

if TYPE_CHECKING:
    from fastapi import FastAPI

DEFAULT_DB = Path("tinker-rest-data") / "tinker.db"
ENV_DATABASE_URL = "TINKER_REST_DATABASE_URL"
# How long an idle keep-alive connection stays open between requests.
KEEP_ALIVE_SECONDS = 5

P = ParamSpec("P")
R = TypeVar("R")


def default_database() -> str:
    """The database from ``TINKER_REST_DATABASE_URL``, else ``./tinker-rest-data/tinker.db``."""
    return os.environ.get(ENV_DATABASE_URL) or str(DEFAULT_DB)


def resolve_database(database: str | os.PathLike[str]) -> tuple[str, Path | None]:
    """The SQLAlchemy URL for a path or URL, and the SQLite file behind it if there is one."""
    text = os.fspath(database)
    if "://" not in text:
        path = Path(text).expanduser().resolve()
        return f"sqlite:///{path}", path
    if text.startswith("sqlite:///"):
        raw = text.removeprefix("sqlite:///")
        if raw and raw != ":memory:":
            return text, Path(raw).expanduser().resolve()
    return text, None


def _on_store(
    method: Callable[Concatenate[Store, P], R],
) -> Callable[Concatenate[TinkerServer, P], R]:
    """The store's ``method`` as a method of :class:`TinkerServer`, run on ``server.store``.

    The admin methods are written once, in the store; the server offers them with the same
    name, parameters and docstring (for ``help()``, ``inspect`` and ``mypy``).
    """

    @functools.wraps(method)
    def on_server(server: TinkerServer, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return method(server.store, *args, **kwargs)

    return on_server


class RunningServer(AbstractContextManager["RunningServer"]):
    """A handle on a server running in a background thread; ``stop()`` ends it (so does the
    end of a ``with`` block)."""

    def __init__(self, server: TinkerServer, uv: uvicorn.Server, sock: socket.socket) -> None:
        self._server = server
        self._uv = uv
        self._sock = sock
        host, port = sock.getsockname()[:2]
        self.host: str = host
        self.port: int = port
        self.base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._run, name=f"tinker-rest-server-{port}", daemon=True
        )
        self._stopped = False

    def _run(self) -> None:
        self._uv.run(sockets=[self._sock])

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        for _ in range(int(timeout / 0.01)):
            if self._uv.started or not self._thread.is_alive():
                break
            threading.Event().wait(0.01)
        if not self._uv.started:
            self.stop()
            raise RuntimeError("the server did not start")

    def stop(self) -> None:
        """Stop serving and wait for the server thread; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._uv.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._sock.close()
        self._server._stop_sweeper()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class TinkerServer(AbstractContextManager["TinkerServer"]):
    """A Tinker-compatible REST server over a database and a data folder; ``close()`` ends it
    (so does the end of a ``with`` block).

    Args:
        database: a SQLite file path or any SQLAlchemy URL (PostgreSQL works too).
        data_dir: where checkpoint files, archives and the signing secret go; by default a
            folder ``<db name>-data`` beside a SQLite file, else ``./tinker-rest-data``.
        archive_url_ttl: how long signed download URLs stay valid, in seconds (15 minutes).
        sweep_interval: seconds between expiry sweeps while serving.
        archive_wait: how long an archive request waits for a build before answering 503.
        public_url: the base of signed download URLs as clients reach the server
            (``https://tinker.example``); by default the address it is bound to. Never taken
            from a request's ``Host``.
        header_timeout: seconds a connection may take to send a request's headers before it
            is closed (a slow-headers client cannot hold connections forever).
    """

    def __init__(
        self,
        database: str | os.PathLike[str],
        *,
        data_dir: str | os.PathLike[str] | None = None,
        archive_url_ttl: int = 900,
        sweep_interval: float = 60.0,
        archive_wait: float = 2.0,
        public_url: str | None = None,
        header_timeout: float = HEADER_TIMEOUT_SECONDS,
    ) -> None:
        url, sqlite_file = resolve_database(database)
        if data_dir is not None:
            self.data_dir = Path(data_dir).resolve()
        elif sqlite_file is not None:
            self.data_dir = sqlite_file.parent / f"{sqlite_file.stem}-data"
        else:
            self.data_dir = DEFAULT_DB.parent.resolve()
        if sqlite_file is not None:
            sqlite_file.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = url
        self.engine = make_engine(url)
        migrate.upgrade(self.engine)
        self.store = Store(self.engine, self.data_dir)
        self.signer = UrlSigner(load_or_create_secret(self.data_dir / "secret"))
        self.archive_url_ttl = archive_url_ttl
        self.public_url = public_url
        self.header_timeout = header_timeout
        self.sweep_interval = sweep_interval
        self.builder = ArchiveBuilder(self.store, wait_seconds=archive_wait)
        self._app: FastAPI | None = None
        self._sweep_stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self.sweep()

    # --- the app and serving ----------------------------------------------------------------

    @property
    def app(self) -> FastAPI:
        """The ASGI application (built on first use)."""
        if self._app is None:
            from tinker_rest.server.api.main import create_app

            self._app = create_app(
                self.store,
                self.builder,
                self.signer,
                archive_url_ttl=self.archive_url_ttl,
                public_url=self.public_url,
            )
        return self._app

    def sweep(self) -> int:
        """Delete expired checkpoints with their files now; return how many went."""
        return self.store.sweep()

    def _start_sweeper(self) -> None:
        if self._sweeper is not None and self._sweeper.is_alive():
            return
        self._sweep_stop.clear()

        def loop() -> None:
            while not self._sweep_stop.wait(self.sweep_interval):
                self.sweep()

        self._sweeper = threading.Thread(target=loop, name="tinker-rest-sweep", daemon=True)
        self._sweeper.start()

    def _stop_sweeper(self) -> None:
        self._sweep_stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=10)
            self._sweeper = None

    def _uvicorn(self, host: str, port: int) -> uvicorn.Server:
        config = uvicorn.Config(
            self.app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            http=header_deadline_protocol(self.header_timeout),
            h11_max_incomplete_event_size=MAX_HEADER_BYTES,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
        return uvicorn.Server(config)

    def run_in_background(self, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
        """Start serving on ``host:port`` (0 picks a free port) in a thread; returns a handle.

        Use it as a context manager, or call ``stop()`` on the handle.
        """
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # Say TCP outright: asyncio turns on TCP_NODELAY only for sockets whose protocol is
        # IPPROTO_TCP, and without it every small response waits ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        running = RunningServer(self, self._uvicorn(host, port), sock)
        self._start_sweeper()
        running.start()
        return running

    def serve(self, host: str = "127.0.0.1", port: int = 8000) -> None:
        """Serve in the foreground until interrupted (``tinker-rest serve``)."""
        self._start_sweeper()
        try:
            self._uvicorn(host, port).run()
        finally:
            self._stop_sweeper()

    def close(self) -> None:
        """Stop the sweep, archive builds and database threads; dispose of the engine."""
        self._stop_sweeper()
        self.builder.close()
        if self._app is not None:
            self._app.state.db_writer.shutdown(wait=True)
            self._app.state.db_threads.shutdown(wait=True)
        self.engine.dispose()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- adding data: the store's methods, on the server (one definition, see _on_store) --

    add_organization = _on_store(Store.add_organization)
    add_user = _on_store(Store.add_user)
    add_api_key = _on_store(Store.add_api_key)
    revoke_api_key = _on_store(Store.revoke_api_key)
    list_users = _on_store(Store.list_users)
    list_api_keys = _on_store(Store.list_api_keys)
    add_project = _on_store(Store.add_project)
    add_session = _on_store(Store.add_session)
    add_training_run = _on_store(Store.add_training_run)
    add_sampler = _on_store(Store.add_sampler)
    add_checkpoint = _on_store(Store.add_checkpoint)

    def seed_demo(self) -> DemoData:
        """Add the demo data set (``--demo``): an organization, two users, a project, sessions,
        runs, samplers and checkpoints with files of a few MB, one of them published."""
        return seed_demo(self.store)

    @property
    def archive_builds(self) -> int:
        """How many archive builds this server has started (for tests of build sharing)."""
        return self.builder.builds_started


@contextmanager
def running_server(database: str | os.PathLike[str]) -> Iterator[RunningServer]:
    """Open a server on ``database`` and run it in the background for the ``with`` block."""
    server = TinkerServer(database)
    try:
        with server.run_in_background() as running:
            yield running
    finally:
        server.close()

"""Database engine set-up: SQLite tuned for one web and several worker processes."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from jobsvc.extensions import db, migrate

# Execution option that makes the next transaction on a SQLite connection take the
# write lock up front. A deferred transaction that reads and then writes fails with
# "database is locked" when another writer commits in between, whatever busy_timeout says.
_BEGIN_MODE = "sqlite_begin"


def engine_options(url: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Engine keyword arguments for `url`.

    On a server database every process keeps at most DB_POOL_SIZE + DB_MAX_OVERFLOW
    connections, so that the sum over processes fits the plan's limit (Heroku's smallest: 20);
    a thread beyond that waits for a free one. Requests and job steps hold a connection for
    one statement or transaction, never across an LLM call or a long poll.
    """
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    return {
        "pool_pre_ping": True,
        "pool_size": config["DB_POOL_SIZE"],
        "max_overflow": config["DB_MAX_OVERFLOW"],
        # A database that does not answer fails the request in seconds instead of holding it.
        "pool_timeout": 10,
        "connect_args": {"connect_timeout": config["DB_CONNECT_TIMEOUT"]},
    }


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event own BEGIN, so we can choose its mode.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(_BEGIN_MODE, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


# SQLite has one writer at a time, and a writer that finds the lock taken sleeps in its
# busy handler for 1, 2, 5, ... up to 100 ms before it looks again: under load, a web
# process stalls while another holds the lock. So writers queue first on a thread lock,
# then on an flock of a file beside the database, which wakes the next writer in any
# process the moment the previous one commits.
_thread_writer = threading.Lock()
_lock_files: dict[str, int] = {}


@contextmanager
def _one_writer(database: str | None) -> Iterator[None]:
    with _thread_writer:
        fd = None
        if database and database != ":memory:":
            fd = _lock_files.get(database)
            if fd is None:
                fd = _lock_files[database] = os.open(f"{database}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def write_transaction() -> Iterator[Session]:
    """A session whose transaction holds the write lock from its first statement, then commits."""
    session = db.session
    session.rollback()
    bind = session.get_bind()
    lock = _one_writer(bind.url.database) if bind.dialect.name == "sqlite" else nullcontext()
    with lock:
        session.connection(execution_options={_BEGIN_MODE: "IMMEDIATE"})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _dispose_in_child() -> None:
    # A forked process must not reuse its parent's pooled connections, nor inherit a lock
    # that one of the parent's other threads held at the fork.
    global _thread_writer
    _thread_writer = threading.Lock()
    _lock_files.clear()
    for engine in _engines:
        engine.dispose(close=False)


_engines: list[Engine] = []
os.register_at_fork(after_in_child=_dispose_in_child)


def init_app(app: Flask) -> None:
    """Tune the app's engine and point Flask-Migrate at jobsvc's migrations."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        _tune_sqlite(engine)
    _engines.append(engine)
    # Batch mode: SQLite alters tables by copying them, and Alembic must know to do so.
    migrate.init_app(app, db, directory=MIGRATIONS, render_as_batch=True)


MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")


def create_schema() -> None:
    """Bring the schema up to date by running every migration not yet applied."""
    from flask_migrate import upgrade

    upgrade(directory=MIGRATIONS)

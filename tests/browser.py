"""Real-browser helpers: Playwright driving Debian's chromium, and a site (gunicorn + worker) to drive.

The pip `playwright` package cannot download its own browsers here, so it launches the
system binary. Where chromium is missing, the browser tests skip and say why.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.conftest import GunicornProcess, fresh_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (apt-get install chromium; .ci/run installs it when run as root)",
)
# How long a page may take to show what a test waits for: a generous bound, not a measurement.
PATIENCE_MS = 30_000
expect.set_options(timeout=PATIENCE_MS)


@contextmanager
def launched() -> Iterator[Browser]:
    """A headless chromium, closed afterwards."""
    assert CHROMIUM is not None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def site_env(stack_env: dict[str, str], folder: Path, name: str, **overrides: str) -> dict[str, str]:
    """The stack's settings with a database and queue of their own, the schema created."""
    env = {**stack_env, "DATABASE_URL": f"sqlite:///{folder}/{name}.sqlite3", "QUEUE_NAME": name, **overrides}
    fresh_app(env)
    return env


@contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[GunicornProcess]:
    """gunicorn with `env`, stopped afterwards."""
    server = GunicornProcess({**env, "WEB_CONCURRENCY": "1"}, log)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def running_site(env: dict[str, str], start_worker: Callable[..., Any], folder: Path) -> Iterator[str]:
    """A worker (stopped with the session) and gunicorn (stopped after) on `env`: the site's URL."""
    start_worker(**env)
    with serving(env, folder / "gunicorn.log") as server:
        yield server.url


def api(method: str, url: str, body: dict[str, Any] | None = None, key: str | None = None) -> Any:
    """One JSON request, as a script outside the browser would make it; returns the decoded body."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())

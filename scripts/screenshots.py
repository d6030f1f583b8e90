"""Take the README's screenshots from the real pages: `make screenshots`.

Starts the stack the test suite starts (redis-server, a worker, gunicorn) on a throwaway
database with the offline provider, submits documents through the console in chromium,
and writes docs/console.png, docs/console-phone.png and docs/admin.png.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from playwright.sync_api import Page, expect  # noqa: E402

from tests.browser import CHROMIUM, api, launched  # noqa: E402
from tests.conftest import GunicornProcess, RedisProcess, WorkerProcess, fresh_app  # noqa: E402
from tests.support import wait_for  # noqa: E402

DOCS = REPO / "docs"
ADMIN = {"username": "admin", "password": "screenshots"}
SHOWN = (
    "Food safety in the staff kitchen.\n\n"
    "Everyone washes their hands with soap for twenty seconds before handling food. "
    "Raw meat is stored on the lowest shelf of the fridge, below ready-to-eat food. "
    "Every container is labelled with the date it was opened and thrown away after three days. "
    "The fridge temperature is checked twice a day and must stay below 5 °C. "
    "Cutting boards for raw meat are red and are never used for vegetables."
)
CANCELED = "Draft: water the office plants on Mondays and Thursdays."
BACKGROUND = [
    "Lock the back door at closing time. Switch off the coffee machine and the lights.",
    "Visitors sign in at reception and wear a badge. Escort visitors in the lab at all times.",
    "Back up the database every night. Test a restore once a month and record the result.",
    "Wear safety glasses in the workshop. Keep the fire exit clear of boxes and trolleys.",
]


@contextlib.contextmanager
def stack(folder: Path) -> Iterator[str]:
    """redis-server, a worker and gunicorn on a fresh database; yields the site's URL."""
    redis = RedisProcess(folder)
    redis.start()
    env = {
        "INSTANCE_PATH": str(folder / "instance"),
        "DATABASE_URL": f"sqlite:///{folder}/screenshots.sqlite3",
        "REDIS_URL": redis.url,
        "QUEUE_NAME": "screenshots",
        "LLM_PROVIDER": "offline",
        "ADMIN_PASSWORD": ADMIN["password"],
        "WEB_CONCURRENCY": "1",
    }
    fresh_app(env)
    server = GunicornProcess(env, folder / "gunicorn.log")
    # Canceled before any worker runs: the pages then show more than one status.
    canceled = api("POST", f"{server.url}/jobs/", {"input_text": CANCELED})["event_id"]
    api("POST", f"{server.url}/jobs/{canceled}/cancel")
    worker = WorkerProcess(env, folder / "worker.log")
    try:
        yield server.url
    finally:
        server.stop()
        worker.stop()
        redis.stop()


def finished(site: str, text: str) -> str:
    event_id = api("POST", f"{site}/jobs/", {"input_text": text})["event_id"]
    wait_for(lambda: api("GET", f"{site}/jobs/{event_id}/")["status"] == "succeeded", what="a job")
    return event_id


def console(page: Page, site: str) -> None:
    page.goto(f"{site}/")
    page.get_by_label("Document text").fill(SHOWN)
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=30_000)
    page.locator("#job-checklist input[type=checkbox]").first.check()
    expect(page.locator("#recent .recent-item").first).to_have_attribute("data-status", "succeeded")
    page.evaluate("document.activeElement.blur()")
    page.get_by_label("Document text").evaluate("box => box.scrollTop = 0")


def main() -> None:
    if CHROMIUM is None:
        sys.exit("chromium is not installed: apt-get install chromium")
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="jobsvc-shots-") as folder, stack(Path(folder)) as site:
        for text in BACKGROUND:
            finished(site, text)
        with launched() as browser:
            for name, viewport in (("console", (1100, 900)), ("console-phone", (390, 844))):
                context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
                page = context.new_page()
                console(page, site)
                page.screenshot(path=DOCS / f"{name}.png", full_page=True)
                context.close()
            context = browser.new_context(http_credentials=ADMIN, viewport={"width": 1280, "height": 720})
            page = context.new_page()
            page.goto(f"{site}/admin/jobs/")
            page.screenshot(path=DOCS / "admin.png", full_page=True)
            context.close()
    for name in ("console", "console-phone", "admin"):
        print(f"wrote {DOCS / name}.png")


if __name__ == "__main__":
    main()

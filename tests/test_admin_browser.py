"""The admin at /admin/ in a real browser, against gunicorn and a worker: what an operator does."""

from __future__ import annotations

import csv
import re
import uuid

import pytest
from playwright.sync_api import Error as BrowserError
from playwright.sync_api import expect

from tests.browser import PATIENCE_MS, api, needs_chromium, running_site, site_env
from tests.support import wait_for

pytestmark = needs_chromium

OPERATOR = {"username": "admin", "password": "s3cret-operator"}


@pytest.fixture(scope="module")
def admin_env(stack_env, tmp_path_factory):
    env = site_env(stack_env, tmp_path_factory.mktemp("admin-browser"), "admin_browser")
    return {**env, "ADMIN_PASSWORD": OPERATOR["password"]}


@pytest.fixture(scope="module")
def site(admin_env, start_worker, tmp_path_factory):
    with running_site(admin_env, start_worker, tmp_path_factory.mktemp("admin-gunicorn")) as url:
        yield url


@pytest.fixture
def operator(browser, site):
    """A page logged in with ADMIN_USERNAME / ADMIN_PASSWORD."""
    context = browser.new_context(http_credentials=OPERATOR, accept_downloads=True)
    context.set_default_timeout(PATIENCE_MS)
    yield context.new_page()
    context.close()


def finished_job(site: str, text: str) -> str:
    event_id = api("POST", f"{site}/jobs/", {"input_text": text})["event_id"]
    wait_for(
        lambda: api("GET", f"{site}/jobs/{event_id}/")["status"] in {"succeeded", "failed"},
        timeout=30,
        what=f"job {event_id}",
    )
    return event_id


@pytest.fixture
def failed_jobs(site, fake_llm):
    """Two jobs the LLM rejected, and one that succeeded."""
    texts = [f"Descale the kettle {n}. {uuid.uuid4()}" for n in range(2)]
    for text in texts:
        fake_llm.state.fail_next(401, matching=text)
    failed = [finished_job(site, text) for text in texts]
    finished_job(site, f"Empty the bins. {uuid.uuid4()}")
    assert all(api("GET", f"{site}/jobs/{event_id}/")["status"] == "failed" for event_id in failed)
    return failed


def refused(page, url: str) -> bool:
    """Whether the browser was turned away with a 401 Basic challenge."""
    try:
        response = page.goto(url)
    except BrowserError as error:
        # Without credentials, chromium turns the challenge into a failed navigation.
        return "ERR_INVALID_AUTH_CREDENTIALS" in str(error)
    return response is not None and response.status == 401


def test_the_admin_asks_for_credentials_then_lists_jobs(browser, site):
    for credentials in (None, {**OPERATOR, "password": "wrong"}):
        stranger = browser.new_context(http_credentials=credentials)
        assert refused(stranger.new_page(), f"{site}/admin/"), credentials
        stranger.close()
    finished_job(site, f"Wipe the counters. {uuid.uuid4()}")

    logged_in = browser.new_context(http_credentials=OPERATOR)
    page = logged_in.new_page()
    page.goto(f"{site}/admin/")

    expect(page).to_have_title("Jobs - jobsvc admin")
    for column in ("Created", "Status", "Provider", "Attempts", "Excerpt"):
        expect(page.locator("table.model-list thead")).to_contain_text(column)
    expect(page.locator("table.model-list tbody tr").first).to_contain_text("succeeded")
    logged_in.close()


def test_the_operator_filters_failed_jobs_and_retries_them_in_bulk(operator, site, failed_jobs):
    page = operator
    page.goto(f"{site}/admin/jobs/")
    page.get_by_text("Add Filter").click()
    page.locator(".field-filters a.filter", has_text="Status").click()
    page.locator("table.filters select.filter-val").select_option("failed", force=True)
    page.get_by_role("button", name="Apply").click()
    # Apply reloads the page; its row toggle and "With selected" menu work only once the
    # page's scripts have run, at its load event.
    page.wait_for_url(re.compile(r"flt1_0=failed"), wait_until="load")

    rows = page.locator("table.model-list tbody tr")
    expect(rows.first).to_contain_text("failed")
    statuses = rows.locator("td.col-status").all_inner_texts()
    assert set(statuses) == {"failed"} and len(statuses) >= len(failed_jobs)

    page.locator("input.action-rowtoggle").check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_text("With selected").click()
    page.get_by_role("link", name="Retry").click()

    expect(page.locator(".alert")).to_contain_text(f"Retried {len(statuses)} job(s).")
    for event_id in failed_jobs:
        wait_for(
            lambda event_id=event_id: api("GET", f"{site}/jobs/{event_id}/")["status"] == "succeeded",
            what=f"retried job {event_id}",
        )
        assert api("GET", f"{site}/jobs/{event_id}/")["retries"] == 1


def test_the_operator_exports_the_list_as_csv(operator, site, failed_jobs):
    page = operator
    page.goto(f"{site}/admin/jobs/")

    with page.expect_download() as download:
        page.get_by_role("link", name="Export").click()

    with open(download.value.path(), newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    by_id = {row["Event id"]: row for row in rows}
    assert all(by_id[event_id]["Status"] == "failed" for event_id in failed_jobs)
    assert "OPENAI_API_KEY" in by_id[failed_jobs[0]]["Error"]

"""The console at / in a real browser, against gunicorn and a worker: what a person sees and does."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.browser import PATIENCE_MS, api, needs_chromium, running_site, serving, site_env
from tests.support import wait_for

pytestmark = needs_chromium

API_KEY = "console-test-key-7f3a"
EVENT_ID = re.compile(r"^[0-9a-f-]{36}$")
# Records every status the page shows, in order, without touching the page's own code.
WATCH_STATUS = """() => {
  window.seenStatuses = [];
  window.sameDocument = true;
  new MutationObserver(() => {
    const text = document.getElementById("job-status").textContent;
    if (text && window.seenStatuses.at(-1) !== text) window.seenStatuses.push(text);
  }).observe(document.getElementById("job-status"), {childList: true, characterData: true, subtree: true});
}"""


@pytest.fixture(scope="module")
def console_env(stack_env, tmp_path_factory):
    return site_env(stack_env, tmp_path_factory.mktemp("console-browser"), "console_browser")


@pytest.fixture(scope="module")
def site(console_env, start_worker, tmp_path_factory):
    with running_site(console_env, start_worker, tmp_path_factory.mktemp("console-gunicorn")) as url:
        yield url


@pytest.fixture
def page(browser, site):
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site)
    context.set_default_timeout(PATIENCE_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{site}/")
    yield page
    context.close()
    assert not errors, f"the page's script threw: {errors}"


def submit_from_page(page: Page, text: str | None = None) -> str:
    """Type `text` (if given) and press Submit; returns the id the page then shows."""
    if text is not None:
        page.get_by_label("Document text").fill(text)
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(page.locator("#job-id")).to_have_text(EVENT_ID)
    return page.locator("#job-id").inner_text()


def test_submitted_text_goes_live_to_succeeded_and_shows_a_checklist_without_a_reload(page, fake_llm):
    fake_llm.state.delay = 1.5  # each of the two LLM calls: long enough to see "running"
    page.evaluate(WATCH_STATUS)

    submit_from_page(page, f"Wash your hands before handling food. Label every container. {uuid.uuid4()}")

    expect(page.locator("#job-status")).to_have_text("succeeded")
    boxes = page.locator("#job-checklist input[type=checkbox]")
    expect(boxes.first).to_be_visible()
    assert boxes.count() >= 1
    assert page.evaluate("window.sameDocument") is True, "the page reloaded"
    seen = page.evaluate("window.seenStatuses")
    assert "running" in seen and seen[-1] == "succeeded"
    assert seen == [s for s in ("pending", "running", "succeeded") if s in seen], seen


def test_ticked_checklist_items_copy_as_markdown(page):
    submit_from_page(page, f"Lock the door. Water the plants. Feed the cat. {uuid.uuid4()}")
    expect(page.locator("#job-status")).to_have_text("succeeded")
    items = page.locator("#job-checklist li")
    expect(items.first).to_be_visible()

    items.first.get_by_role("checkbox").check()
    page.get_by_role("button", name="Copy as markdown").click()

    expect(page.locator("#copy-message")).to_have_text("Copied the checklist as markdown.")
    markdown = page.evaluate("navigator.clipboard.readText()").splitlines()
    assert len(markdown) == items.count()
    assert markdown[0] == f"- [x] {items.first.locator('label').inner_text()}"
    assert all(line.startswith("- [ ] ") for line in markdown[1:])


def test_an_uploaded_markdown_file_is_submitted(page, site, tmp_path):
    document = tmp_path / "kitchen.md"
    content = f"# Kitchen rules\n\nStore raw meat on the lowest shelf.\nClean the slicer. {uuid.uuid4()}\n"
    document.write_text(content)

    page.get_by_label("Or choose a .txt or .md file").set_input_files(document)
    expect(page.locator("#submit-message")).to_contain_text("Loaded kitchen.md")
    event_id = submit_from_page(page)

    expect(page.locator("#job-status")).to_have_text("succeeded")
    assert api("GET", f"{site}/jobs/{event_id}/")["input_text"] == content


def test_a_running_job_is_canceled_from_the_page(page, site, fake_llm):
    fake_llm.state.delay = 5
    event_id = submit_from_page(page, f"Check the fridge temperature twice a day. {uuid.uuid4()}")
    expect(page.locator("#job-status")).to_have_text("running")

    page.get_by_role("button", name="Cancel", exact=True).click()

    expect(page.locator("#job-status")).to_have_text("canceled")
    expect(page.get_by_role("button", name="Retry", exact=True)).to_be_visible()
    assert api("GET", f"{site}/jobs/{event_id}/")["status"] == "canceled"


def test_a_failed_job_shows_its_error_and_retries_from_the_page(page, fake_llm):
    text = f"Sanitize the cutting boards. {uuid.uuid4()}"
    fake_llm.state.fail_next(401, matching=text)
    submit_from_page(page, text)
    expect(page.locator("#job-status")).to_have_text("failed")
    expect(page.locator("#job-error")).to_contain_text("OPENAI_API_KEY")

    page.get_by_role("button", name="Retry", exact=True).click()

    expect(page.locator("#job-status")).to_have_text("succeeded")
    expect(page.locator("#job-error")).to_be_hidden()


def test_the_recent_jobs_list_updates_by_itself_newest_first(page, site):
    first = page.locator("#recent .recent-item").first
    event_id = api("POST", f"{site}/jobs/", {"input_text": f"Mop the floor. {uuid.uuid4()}"})["event_id"]

    # Submitted by someone else, outside this page: it appears on top without a click.
    expect(first).to_have_attribute("data-id", event_id)
    expect(first).to_have_attribute("data-status", "succeeded")


def test_the_recent_jobs_list_filters_by_status_and_opens_a_job(page, site):
    wanted = api("POST", f"{site}/jobs/", {"input_text": f"Dry the towels. {uuid.uuid4()}"})["event_id"]
    wait_for(lambda: api("GET", f"{site}/jobs/{wanted}/")["status"] == "succeeded", what="the job")

    page.get_by_label("Status").select_option("succeeded")

    expect(page.locator("#recent")).to_have_attribute("aria-busy", "false")
    items = page.locator("#recent .recent-item")
    statuses = items.evaluate_all("items => items.map(item => item.dataset.status)")
    assert set(statuses) == {"succeeded"}
    expect(page.locator("#page-info")).to_contain_text("Page 1 of")
    page.get_by_role("button", name=f"Open job {wanted[:8]}").click()
    expect(page.locator("#job-id")).to_have_text(wanted)
    expect(page.locator("#job-status")).to_have_text("succeeded")


@pytest.fixture(scope="module")
def locked_site(site, console_env, tmp_path_factory):
    env = {**console_env, "API_KEYS": API_KEY}
    with serving(env, tmp_path_factory.mktemp("console-locked") / "gunicorn.log") as server:
        yield server.url


def test_with_api_keys_the_page_asks_for_a_key_and_says_clearly_when_it_is_wrong(browser, locked_site):
    context = browser.new_context()
    context.set_default_timeout(PATIENCE_MS)
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.goto(f"{locked_site}/")
    key_box = page.get_by_role("textbox", name="API key")
    expect(key_box).to_be_visible()

    key_box.fill("not-the-key")
    page.get_by_role("button", name="Use this key").click()
    expect(page.get_by_role("alert").filter(has_text="not accepted")).to_be_visible()

    key_box.fill(API_KEY)
    page.get_by_role("button", name="Use this key").click()
    expect(key_box).to_be_hidden()
    submit_from_page(page, f"Close the windows at night. {uuid.uuid4()}")
    expect(page.locator("#job-status")).to_have_text("succeeded")
    assert page.evaluate("sessionStorage.getItem('jobsvc.apiKey')") == API_KEY
    page.reload()  # same tab: the key is remembered, not asked again
    expect(page.locator("#job-status")).to_have_text("succeeded")
    expect(key_box).to_be_hidden()
    assert not [url for url in urls if API_KEY in url or "not-the-key" in url]
    context.close()


def test_a_text_file_dropped_on_the_text_box_fills_it(page):
    content = f"Switch off the fryer at night. {uuid.uuid4()}"
    transfer = page.evaluate_handle(
        """(text) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([text], "notes.txt", {type: "text/plain"}));
            return transfer;
        }""",
        content,
    )

    page.dispatch_event("#input-text", "drop", {"dataTransfer": transfer})

    expect(page.get_by_label("Document text")).to_have_value(content)
    expect(page.locator("#submit-message")).to_contain_text("Loaded notes.txt")


def tab_to(page: Page, element_id: str) -> None:
    """Press Tab until the element with this id has the focus (a keyboard user's way there)."""
    for _ in range(20):
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached #{element_id}")


def test_the_console_works_from_the_keyboard_alone(page):
    tab_to(page, "input-text")
    page.keyboard.type(f"Keep the first-aid kit stocked. Check it every Monday. {uuid.uuid4()}")
    tab_to(page, "submit-button")
    page.keyboard.press("Enter")
    expect(page.locator("#job-status")).to_have_text("succeeded")

    tab_to(page, "check-0")
    page.keyboard.press("Space")

    expect(page.locator("#check-0")).to_be_checked()


def test_at_phone_width_nothing_scrolls_sideways(browser, site):
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{site}/")
    submit_from_page(page, "Wash the salad twice. " * 20 + str(uuid.uuid4()))
    expect(page.locator("#job-status")).to_have_text("succeeded")
    expect(page.locator("#recent .recent-item").first).to_be_visible()

    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    context.close()

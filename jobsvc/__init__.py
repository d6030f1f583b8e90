"""jobsvc: an asynchronous job API for LLM text pipelines."""

from __future__ import annotations

import logging
import os
import stat
from typing import Any

from flask import Blueprint, Flask
from flask_smorest import Api
from swagger_ui_bundle import swagger_ui_path

from jobsvc import cli, logs
from jobsvc.config import (
    database_url,
    exposure_warnings,
    instance_path,
    read_settings,
    redis_url,
    refuse_unsafe_defaults,
)
from jobsvc.core import database, queue
from jobsvc.extensions import db
from jobsvc.web import admin, admin_guard, console, dashboard, errors, health, limits, resources

log = logging.getLogger(__name__)


def _private_folder(path: str) -> None:
    """Create `path` readable by this user only (0700), or tighten it if this user owns it."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.stat(path)
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o700)


def _private_sqlite_file(url: str) -> None:
    """Create the SQLite file 0600 before SQLite does (it would use the umask; its WAL copies the mode)."""
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    if path and not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app from the environment (and .env), with `config` overriding any setting."""
    settings = read_settings()
    settings.update(config or {})
    refuse_unsafe_defaults(settings)
    app = Flask(__name__, instance_path=instance_path(settings), instance_relative_config=True)
    app.config.from_mapping(settings)
    _private_folder(app.instance_path)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database_url(settings, app.instance_path),
        REDIS_URL=redis_url(settings, app.instance_path),
        # Worst case for a valid body: every character JSON-escaped as \uXXXX.
        MAX_CONTENT_LENGTH=settings["MAX_INPUT_CHARS"] * 6 + 4096,
        API_TITLE="jobsvc",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs/",
        OPENAPI_SWAGGER_UI_URL="/docs/assets/",
        API_SPEC_OPTIONS={
            "info": {
                "description": "Submit guideline text; a worker summarizes it and turns the "
                "summary into a checklist. Poll the job until its status is terminal."
            }
        },
    )
    if app.config["API_KEYS"]:
        # Declared only when enforced: Swagger UI then shows its Authorize button.
        app.config["API_SPEC_OPTIONS"] |= {
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearerAuth": []}],
        }
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = database.engine_options(
        app.config["SQLALCHEMY_DATABASE_URI"], app.config
    )
    _private_sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"])
    logs.init_app(app)
    for warning in exposure_warnings(settings):
        log.warning(warning)

    db.init_app(app)
    database.init_app(app)
    queue.init_app(app)
    cli.init_app(app)
    admin_guard.init_app(app)
    dashboard.init_app(app)
    admin.init_app(app)
    app.register_blueprint(console.bp)
    health.init_app(app)
    api = Api(app)
    errors.init_app(app)

    limits.init_app(app, resources.blp)
    api.register_blueprint(resources.blp)
    api.register_blueprint(health.blp)
    # X-Pagination carries JSON text; an object `schema` on a header would mean "k,v,k,v".
    api.spec.components.headers["PAGINATION"] = {
        "description": "Pagination metadata, as JSON.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PaginationMetadata"}}},
    }
    # Swagger UI's scripts come from the swagger-ui-bundle wheel: /docs/ renders offline.
    app.register_blueprint(
        Blueprint(
            "swagger_ui_assets", __name__, static_folder=str(swagger_ui_path), static_url_path="/docs/assets"
        )
    )
    return app

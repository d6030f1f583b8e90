"""The ingest reference: a bare Flask endpoint, the least a hand-rolled Flask + RQ app does.

It parses the JSON body, inserts one row with the SQLAlchemy ORM, enqueues one RQ job and
returns the id: no validation, no idempotency, no metrics, no logging. `make bench` runs
it under gunicorn with the same process and thread counts as jobsvc, on the same Redis,
and reports jobsvc's POST /jobs/ as a ratio of it. SQLite gets the same WAL journal
jobsvc uses, so the reference is not handicapped by a slower journal.

    gunicorn -k gthread -w 2 --threads 128 bench.reference_app:app   # INSTANCE_PATH, REDIS_URL set
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from flask import Flask, request
from flask_sqlalchemy import SQLAlchemy
from redis import Redis
from rq import Queue
from sqlalchemy import String, Text, event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Submission(db.Model):  # type: ignore[name-defined]
    __tablename__ = "submissions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    input_text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))


def create_reference_app() -> Flask:
    app = Flask(__name__)
    instance = os.environ["INSTANCE_PATH"]
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance}/reference.sqlite3"
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30, "check_same_thread": False}}
    db.init_app(app)
    with app.app_context():

        @event.listens_for(db.engine, "connect")
        def _wal(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        db.create_all()
    redis_url = os.environ.get("REDIS_URL") or f"unix://{instance}/redis.sock"
    clients: dict[int, Redis] = {}

    def queue() -> Queue:
        # One client per process, made after gunicorn forks.
        client = clients.get(os.getpid())
        if client is None:
            client = clients[os.getpid()] = Redis.from_url(redis_url)
        return Queue("reference", connection=client)

    @app.post("/jobs/")
    def submit() -> tuple[dict[str, str], int]:
        body = request.get_json()
        submission = Submission(id=str(uuid.uuid4()), input_text=body["input_text"], status="pending")
        db.session.add(submission)
        db.session.commit()
        queue().enqueue("bench.reference_app.process", submission.id, job_id=submission.id)
        return {"event_id": submission.id}, 201

    return app


def process(submission_id: str) -> None:
    """Never run: the reference measures ingest only."""


app = create_reference_app() if "INSTANCE_PATH" in os.environ else None

"""SQLite under contention: many writers on one file, never "database is locked"."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text

from jobsvc import create_app
from jobsvc.core import store
from jobsvc.core.database import MIGRATIONS, write_transaction
from jobsvc.core.models import Job, JobStatus, utcnow
from jobsvc.extensions import db
from jobsvc.llm import Usage
from tests.conftest import fresh_app, settings_from

NO_USAGE = Usage()


def test_sqlite_runs_in_wal_with_a_busy_timeout(app):
    with app.app_context():
        pragma = {
            name: db.session.execute(text(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "busy_timeout", "synchronous")
        }
    assert pragma == {"journal_mode": "wal", "busy_timeout": 30000, "synchronous": 1}


def test_concurrent_writers_never_hit_database_is_locked(stack_env, tmp_path):
    app = fresh_app({**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/contended.sqlite3"})

    def lifecycle(_: int) -> JobStatus:
        # Each thread has its own app context, session and SQLite connection.
        with app.app_context():
            job_id = store.create_job("Wear gloves.")[0].id
            store.claim_job(job_id, "me", 10)
            store.save_summary(job_id, "me", "S", "offline", "m", NO_USAGE)
            store.complete_job(job_id, "me", "- a", NO_USAGE)
            return store.get_job(job_id).status

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lifecycle, range(400)))

    assert statuses == [JobStatus.SUCCEEDED] * 400


def test_read_then_write_transactions_never_hit_database_is_locked(stack_env, tmp_path):
    # The pattern that kills deferred transactions: read, another writer commits, write.
    app = fresh_app({**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/rw.sqlite3"})

    def read_then_write(number: int) -> int:
        with app.app_context(), write_transaction() as session:
            seen = session.scalar(select(func.count()).select_from(Job))
            now = utcnow()
            session.add(Job(input_text=f"job {number}", created_at=now, updated_at=now))
            return seen

    with ThreadPoolExecutor(max_workers=16) as pool:
        seen = sorted(pool.map(read_then_write, range(300)))

    # Serialized writers: each saw every earlier insert, none was lost.
    assert seen == list(range(300))


def test_the_migrations_build_exactly_the_schema_the_models_describe(stack_env, tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    app = fresh_app({**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/migrated.sqlite3"})
    with app.app_context(), db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)

    assert differences == []


def test_flask_db_upgrade_creates_the_schema(stack_env, tmp_path):
    app = create_app(settings_from({**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/cli.sqlite3"}))
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])

    assert result.exit_code == 0, result.output
    with app.app_context():
        version = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == ScriptDirectory(MIGRATIONS).get_current_head()

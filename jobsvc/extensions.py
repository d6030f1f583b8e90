"""Extensions, created unbound here and bound to an app in `create_app`.

flask-smorest's `Api` is the exception: it keeps one OpenAPI spec per instance, so
each app gets its own from `create_app` (a shared one would mix the specs of two apps).
"""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base for jobsvc's models."""

    # Named constraints: SQLite migrations rebuild tables, and must find them by name.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


# Objects stay readable after commit: a view returns the row it just wrote.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()

"""Extensions, created unbound here and bound to an app in `create_app`."""

from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base for jobsvc's models."""


# Objects stay readable after commit: a view returns the row it just wrote.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
api = Api()

"""Entry point of the web process: `gunicorn wsgi:app`."""

from jobsvc import create_app

app = create_app()

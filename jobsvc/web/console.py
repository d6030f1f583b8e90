"""The console at `/`: a page for people to submit a document and watch its job.

Plain HTML, a small vanilla script and a stylesheet, all served by the app: no CDN and no
build step, so it works offline. The page talks to the same JSON API as any client.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

bp = Blueprint(
    "console",
    __name__,
    template_folder="templates",
    static_folder="static/console",
    static_url_path="/static/console",
)


@bp.get("/")
def index() -> str:
    """The console page; it asks for an API key only when the server enforces them."""
    return render_template(
        "console/index.html",
        needs_key=bool(current_app.config["API_KEYS"]),
        max_input_chars=current_app.config["MAX_INPUT_CHARS"],
    )

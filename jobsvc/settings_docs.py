"""The documents made from the settings table: `.env.example` and the README's table.

    python -m jobsvc.settings_docs env > .env.example
    python -m jobsvc.settings_docs table        # paste over the README's table

Tests check that both documents are what these functions make.
"""

from __future__ import annotations

import sys

from jobsvc.config import SETTINGS


def render_env_example() -> str:
    """`.env.example`: every setting with its documentation and default."""
    lines = [
        "# Every jobsvc setting with its default. Copy to .env and change what you need;",
        "# the environment wins over .env. Empty means unset.",
    ]
    for setting in SETTINGS:
        lines += ["", f"# {setting.doc}", f"{setting.key}={setting.default or ''}"]
    return "\n".join(lines) + "\n"


def render_settings_table() -> str:
    """The README's table of settings, in markdown."""
    rows = ["| Key | Default | What it does |", "|---|---|---|"]
    for setting in SETTINGS:
        default = f"`{setting.default}`" if setting.default is not None else "unset"
        rows.append(f"| `{setting.key}` | {default} | {setting.doc} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(render_settings_table() if sys.argv[1:] == ["table"] else render_env_example(), end="")

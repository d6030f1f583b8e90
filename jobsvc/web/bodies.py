"""Request bodies that may be hostile: JSON nested too deep for the parser is a 400, never a 500.

Python's JSON decoder raises RecursionError, not a decoding error, on a body such as
100,000 `[` or `{`; webargs lets that through as a 500. This parser turns it into the
invalid-JSON answer every other unreadable body gets.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Request
from webargs.flaskparser import FlaskParser


class JsonParser(FlaskParser):
    """webargs' Flask parser, with "nested too deeply" treated as invalid JSON."""

    def _raw_load_json(self, req: Request) -> Any:
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            # A non-empty `doc`: webargs reads an empty one as "no body at all".
            raise json.JSONDecodeError("JSON nested too deeply", "<request body>", 0) from None

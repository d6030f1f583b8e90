"""The guard of every admin page (/rq, /admin): a password, same-origin actions, no framing.

Admin pages need ADMIN_PASSWORD (HTTP basic auth); wrong credentials spend the client
address's AUTH_FAILURE_LIMIT, shared with API keys and the metrics token. The one
exception is the zero-configuration `make run` on a laptop: bound to loopback, no proxy
trusted, the embedded Redis. Even there a request must come from loopback, carry no
forwarding header (a proxy on the same host makes every internet request look local) and
name a local Host (a DNS-rebound name would not). Requests that change something must also come from an
admin page itself (Origin or Sec-Fetch-Site), so another site cannot make a browser send
them with its cached credentials. A module mounts an admin page by its URL prefix alone:
anything under ADMIN_PREFIXES is guarded, whatever blueprint serves it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, current_app, request
from flask_smorest import abort

from jobsvc.config import is_loopback, reachable_from_outside, redis_url
from jobsvc.web import limits
from jobsvc.web.auth import same_secret

#: Every URL prefix that serves an admin page; the guard covers everything under each.
ADMIN_PREFIXES = ("/rq", "/admin")
#: Host names a browser on the machine itself uses; anything else may be a DNS-rebound name.
LOCAL_HOST_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
#: Headers a proxy adds: a request that carries one did not come from this machine's user.
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
#: Requests that change state although their method is GET (rq-dashboard 0.9.0's
#: "requeue all failed jobs" answers GET and POST at /rq/requeue/<queue>).
STATE_CHANGING_GET_ENDPOINTS = frozenset({"rq_dashboard.requeue_all"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Sec-Fetch-Site values of a request the admin page itself made, or the user typed.
SAME_ORIGIN_SITES = frozenset({"same-origin", "none"})


def is_admin_path(path: str) -> bool:
    """True if `path` is an admin page (or anything under one)."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in ADMIN_PREFIXES)


def loopback_only(app: Flask) -> bool:
    """True for the zero-configuration `make run`: bound to loopback, no proxy, the embedded Redis."""
    embedded_redis = app.config["REDIS_URL"] == redis_url({}, app.instance_path)
    return not reachable_from_outside(app.config) and embedded_redis


def _host_name(host: str) -> str:
    host = host.lower()
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _refuse(reason: str) -> None:
    abort(403, message=f"{reason} Set ADMIN_PASSWORD to use the admin pages from anywhere.")


def _check_local_request() -> None:
    if not loopback_only(current_app):
        _refuse("Admin pages need ADMIN_PASSWORD (basic auth) outside the zero-configuration `make run`.")
    if not is_loopback(request.remote_addr):
        _refuse("Without ADMIN_PASSWORD, admin pages answer requests from this machine only.")
    if any(header in request.headers for header in FORWARDING_HEADERS):
        _refuse("Without ADMIN_PASSWORD, admin pages refuse requests that came through a proxy.")
    if _host_name(request.host) not in LOCAL_HOST_NAMES:
        _refuse("Without ADMIN_PASSWORD, admin pages answer only Host localhost, 127.0.0.1 or [::1].")


def _check_password(password: str) -> None:
    # An address that keeps failing is refused before its next guess is even compared.
    limits.refuse_if_guessing()
    auth = request.authorization
    given_user = (auth.username or "") if auth else ""
    given_password = (auth.password or "") if auth else ""
    # Both compared, in constant time, whatever the first one says.
    user_ok = same_secret(given_user, current_app.config["ADMIN_USERNAME"])
    password_ok = same_secret(given_password, password)
    if not (user_ok and password_ok):
        if "Authorization" in request.headers:
            # A guess. A request without credentials is a browser's first visit, which
            # this 401 asks for them: it guesses nothing, so it spends nothing.
            limits.count_failed_authentication()
        abort(
            401,
            message="Admin pages need ADMIN_USERNAME and ADMIN_PASSWORD (HTTP basic auth).",
            headers={"WWW-Authenticate": 'Basic realm="jobsvc admin"'},
        )


def changes_state() -> bool:
    """True if the current request may change something (by method, or a known GET action)."""
    return request.method not in SAFE_METHODS or request.endpoint in STATE_CHANGING_GET_ENDPOINTS


def same_origin() -> bool:
    """True if a browser says the admin page itself sent the request (Sec-Fetch-Site, else Origin)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site.lower() in SAME_ORIGIN_SITES
    origin = request.headers.get("Origin")
    # The host part only: a TLS-terminating router turns https into http on the way in.
    return origin is not None and urlsplit(origin).netloc.lower() == request.host.lower()


def _guard() -> None:
    if not is_admin_path(request.path):
        return
    password = current_app.config["ADMIN_PASSWORD"]
    if password:
        _check_password(password)
    else:
        _check_local_request()
    if changes_state() and not same_origin():
        abort(
            403,
            message="Admin actions must come from the admin page itself "
            "(a browser's Origin or Sec-Fetch-Site: same-origin header).",
        )


def _no_framing(response: Response) -> Response:
    if is_admin_path(request.path):
        response.headers["X-Frame-Options"] = "DENY"
        policy = response.headers.get("Content-Security-Policy")
        if not policy:
            response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        elif "frame-ancestors" not in policy:
            response.headers["Content-Security-Policy"] = f"{policy}; frame-ancestors 'none'"
    return response


def init_app(app: Flask) -> None:
    """Guard every request under ADMIN_PREFIXES, on this app only (blueprints are shared)."""
    app.before_request(_guard)
    app.after_request(_no_framing)

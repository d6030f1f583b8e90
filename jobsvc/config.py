"""Configuration: every setting, its default, and the one place that reads the environment."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from dotenv import dotenv_values

from jobsvc.core.signing import secret_key
from jobsvc.errors import ConfigError


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive whole number")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be 0 or a positive whole number")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be a positive number")
    return value


def _provider(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"auto", "openai", "offline"}:
        raise ValueError("must be one of auto, openai, offline")
    return value


class ApiKey(NamedTuple):
    """One client's API key: its name (shown in logs, metrics and as a job's owner) and its secret."""

    name: str
    secret: str

    def __repr__(self) -> str:  # the secret never reaches a log line through a repr
        return f"ApiKey(name={self.name!r})"


_KEY_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def bare_key_name(secret: str) -> str:
    """The name of an unnamed key: `key-` and the first 6 hex digits of its SHA-256."""
    return "key-" + hashlib.sha256(secret.encode()).hexdigest()[:6]


def _api_keys(raw: str) -> tuple[ApiKey, ...]:
    keys = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        name, named, secret = entry.partition(":")
        if not named:
            name, secret = bare_key_name(entry), entry
        elif not _KEY_NAME.match(name) or not secret.strip():
            raise ValueError(
                "each entry is `name:key` (name: 1 to 64 letters, digits, `.`, `_` or `-`) or a bare key"
            )
        keys.append(ApiKey(name, secret.strip()))
    if len({key.name for key in keys}) < len(keys):
        raise ValueError("two keys have the same name")
    if len({key.secret for key in keys}) < len(keys):
        raise ValueError("the same key is listed twice")
    return tuple(keys)


def _log_format(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"text", "json"}:
        raise ValueError("must be text or json")
    return value


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
        raise ValueError("must be true or false")
    return value in {"1", "true", "yes", "on"}


def _share(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 1:
        raise ValueError("must be a number from 0 to 1")
    return value


def _delays(raw: str) -> tuple[int, ...]:
    delays = tuple(int(part) for part in raw.split(",") if part.strip())
    if any(delay <= 0 for delay in delays):
        raise ValueError("must be positive whole seconds, comma-separated")
    return delays


def _comma_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _webhook_secrets(raw: str) -> tuple[str, ...]:
    secrets = _comma_list(raw)
    for secret in secrets:
        secret_key(secret)  # raises ValueError for a whsec_ secret that is not base64
    return secrets


def _rate_limit(raw: str) -> str:
    from limits import parse_many

    try:
        parse_many(raw)
    except ValueError:
        raise ValueError("must look like 60/minute or 10/second;1000/day") from None
    return raw


@dataclass(frozen=True)
class Setting:
    """One configuration key: its default (None means unset) and what it is for."""

    key: str
    default: str | None
    doc: str
    parse: Callable[[str], Any] = str
    #: A secret's value is never repeated in an error message.
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "SECRET_KEY",
        "dev-only-change-me",
        "Flask secret key (signs the admin's CSRF tokens); a long random value. The default is refused "
        "when HOST is not loopback or PROXY_FIX is set.",
    ),
    Setting(
        "DATABASE_URL",
        None,
        "SQLAlchemy URL. Default: SQLite file `jobsvc.sqlite3` in the instance folder (absolute path).",
    ),
    Setting(
        "DB_POOL_SIZE",
        "4",
        "Database connections each web or worker process keeps (PostgreSQL). Connections in all: "
        "(web processes + worker processes) x (DB_POOL_SIZE + DB_MAX_OVERFLOW); see Deploying.",
        _positive_int,
    ),
    Setting(
        "DB_MAX_OVERFLOW",
        "0",
        "Connections a process may open beyond DB_POOL_SIZE under load (PostgreSQL); 0 keeps the sum fixed.",
        _non_negative_int,
    ),
    Setting(
        "DB_CONNECT_TIMEOUT",
        "5",
        "Seconds to wait for the database to accept a connection before the request fails (PostgreSQL).",
        _positive_int,
    ),
    Setting(
        "REDIS_URL",
        None,
        "Redis URL. Default: the embedded redis-server on the unix socket `instance/redis.sock`.",
    ),
    Setting(
        "REDIS_TLS_VERIFY",
        "true",
        "For a `rediss://` REDIS_URL: verify Redis's certificate. Heroku Redis's is self-signed: set false.",
        _boolean,
    ),
    Setting("OPENAI_API_KEY", None, "API key; when set, LLM_PROVIDER=auto uses the OpenAI provider."),
    Setting(
        "OPENAI_BASE_URL",
        None,
        "OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp); default api.openai.com.",
    ),
    Setting("OPENAI_MODEL", "gpt-4o-mini", "Chat model used for both steps."),
    Setting(
        "OPENAI_STRUCTURED_OUTPUT",
        None,
        "Ask for the checklist as JSON (structured outputs, `response_format` json_schema). "
        "Unset: on for api.openai.com, off for other OPENAI_BASE_URLs, whose markdown answer is parsed.",
        _boolean,
    ),
    Setting(
        "LLM_CONTEXT_TOKENS",
        "128000",
        "The model's context window in tokens (gpt-4o-mini: 128000; local models often 4096 or 8192). "
        "Longer inputs are summarized in chunks, map-reduce.",
        _positive_int,
    ),
    Setting(
        "LLM_MAP_CONCURRENCY",
        "4",
        "Chunk summaries of one long document requested at once.",
        _positive_int,
    ),
    Setting(
        "MIN_GROUNDING",
        "0.6",
        "Share (0 to 1) of an output's content words that must occur in the input; below it a step "
        "is retried once with a stricter prompt, then the job carries a warning.",
        _share,
    ),
    Setting(
        "LLM_PROVIDER", "auto", "auto | openai | offline. auto: openai if OPENAI_API_KEY is set.", _provider
    ),
    Setting("LLM_TIMEOUT", "60", "Seconds allowed for one LLM HTTP call.", _positive_float),
    Setting(
        "LLM_MAX_RETRIES",
        "4",
        "Retries of one LLM call on 429, 5xx, timeouts and connection errors.",
        _non_negative_int,
    ),
    Setting(
        "LLM_BACKOFF",
        "0.5",
        "Seconds before the first retry; doubles per retry (full jitter, at most 8s).",
        _positive_float,
    ),
    Setting(
        "JOB_TIMEOUT",
        "900",
        "Seconds a job may run in a worker; covers every attempt of both steps.",
        _positive_int,
    ),
    Setting(
        "MAX_ATTEMPTS",
        "5",
        "Runs a job may start before it is failed. Only a worker's death re-runs a job (its lease "
        "lapses, the reconciler queues it again); a run that fails is not retried.",
        _positive_int,
    ),
    Setting(
        "LEASE_SECONDS",
        "10",
        "A running job's lease; a worker renews it every third of this, or the job is re-run.",
        _positive_int,
    ),
    Setting(
        "RECONCILE_INTERVAL",
        "5",
        "Seconds between reconciler passes (re-enqueue dead or lost jobs).",
        _positive_float,
    ),
    Setting(
        "MAX_PENDING_JOBS",
        "10000",
        "Pending jobs beyond which POST answers 429 with Retry-After.",
        _positive_int,
    ),
    Setting(
        "API_KEYS",
        None,
        "Comma-separated API keys, each `name:key` or a bare key (named `key-` + 6 hex of its SHA-256); "
        "when set, every /jobs request needs Authorization: Bearer <key>, and each key sees only its jobs.",
        _api_keys,
        secret=True,
    ),
    Setting(
        "RATE_LIMIT",
        None,
        "Requests to /jobs per API key once it matched (else per client address), e.g. `60/minute`; "
        "unset: no limit.",
        _rate_limit,
    ),
    Setting(
        "AUTH_FAILURE_LIMIT",
        "10/minute",
        "Failed authentications per client address (API keys, ADMIN_PASSWORD, METRICS_TOKEN together); "
        "past it the address gets 429.",
        _rate_limit,
    ),
    Setting(
        "PROXY_FIX", "0", "Proxies in front whose X-Forwarded-For to trust (Heroku: 1).", _non_negative_int
    ),
    Setting(
        "WEBHOOK_SECRET",
        None,
        "Key that signs webhooks (Standard Webhooks; `whsec_<base64>` or raw text); callbacks need it. "
        "To rotate, list two, comma-separated: each message is signed with both.",
        _webhook_secrets,
    ),
    Setting(
        "WEBHOOK_ALLOW_PRIVATE",
        "false",
        "Allow callback_url on loopback, private and link-local addresses (only for trusted networks).",
        _boolean,
    ),
    Setting(
        "WEBHOOK_RETRY_DELAYS",
        "5,30,120,600,1800",
        "Seconds between webhook delivery attempts; one retry per number.",
        _delays,
    ),
    Setting(
        "WEBHOOK_TIMEOUT",
        "10",
        "Seconds one webhook delivery attempt may take in all (lookup, connect, send, answer).",
        _positive_float,
    ),
    Setting("ADMIN_USERNAME", "admin", "User name for the admin pages, /rq and /admin (HTTP basic auth)."),
    Setting(
        "ADMIN_PASSWORD",
        None,
        "Password for the admin pages; unset: they answer only the zero-configuration `make run` "
        "(HOST on loopback, no PROXY_FIX, embedded Redis), from this machine.",
    ),
    Setting(
        "METRICS_TOKEN",
        None,
        "When set, /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; unset: anyone "
        "who can reach it.",
    ),
    Setting(
        "MAX_INPUT_CHARS",
        "1000000",
        "Longest accepted input_text, in characters; the request body limit is 6 bytes per character "
        "more than this. Inputs beyond LLM_CONTEXT_TOKENS are summarized in chunks.",
        _positive_int,
    ),
    Setting("MAX_BATCH_ITEMS", "1000", "Most jobs one POST /jobs/batch may submit.", _positive_int),
    Setting(
        "MAX_BATCH_BYTES",
        "10485760",
        "Largest POST /jobs/batch body, in bytes (a single POST's limit follows from MAX_INPUT_CHARS).",
        _positive_int,
    ),
    Setting("QUEUE_NAME", "jobsvc", "RQ queue the web enqueues to and workers listen on."),
    Setting("HOST", "127.0.0.1", "Address gunicorn binds (the Procfile binds 0.0.0.0)."),
    Setting("PORT", "8000", "Port gunicorn binds.", _positive_int),
    Setting("WEB_CONCURRENCY", "2", "gunicorn worker processes.", _positive_int),
    Setting(
        "WEB_THREADS",
        "128",
        "Threads per gunicorn process: requests in flight, long-polling waiters included.",
        _positive_int,
    ),
    Setting(
        "WAIT_MAX_SECONDS",
        "25",
        "Longest `?wait=` long poll; a longer one is cut to this and answered with Retry-After. "
        "Keep it under a router's idle limit (Heroku cuts requests silent for 30 s).",
        _positive_float,
    ),
    Setting(
        "MAX_WAITERS",
        None,
        "Long-polling (`?wait=`) requests one web process lets wait at once; past it a poll is answered "
        "at once with Retry-After. Unset: half of WEB_THREADS.",
        _positive_int,
    ),
    Setting(
        "WORKER_CONCURRENCY",
        "32",
        "Jobs `python worker.py` runs at once, one per thread; one RQ worker per process feeds them.",
        _positive_int,
    ),
    Setting(
        "WEBHOOK_CONCURRENCY",
        "2",
        "Webhook deliveries each worker process sends at once, on a queue of their own beside the jobs.",
        _positive_int,
    ),
    Setting(
        "WORKER_SHUTDOWN_GRACE",
        "25",
        "Seconds a worker told to stop (SIGTERM) lets its jobs finish; then it hands the rest back "
        "(pending, re-enqueued, checkpoints kept) and exits, before a platform's 30 s kill.",
        _positive_float,
    ),
    Setting(
        "WORKER_PROCESSES",
        "0",
        "Processes `python worker.py` spreads its WORKER_CONCURRENCY slots over; 0: one per CPU core.",
        _non_negative_int,
    ),
    Setting(
        "HOST_LABEL",
        None,
        "This host's name in worker names and job leases (who runs what, who was lost). "
        "Default: the machine's host name.",
    ),
    Setting("LOG_LEVEL", "INFO", "Python log level for web and worker."),
    Setting("LOG_FORMAT", "text", "text | json: one JSON object per log line.", _log_format),
    Setting(
        "INSTANCE_PATH", None, "Instance folder (SQLite file, Redis socket and AOF). Default: ./instance."
    ),
)


def read_settings(
    environ: Mapping[str, str] | None = None, env_file: str | os.PathLike[str] | None = ".env"
) -> dict[str, Any]:
    """Read every setting from `environ` (default os.environ) over an optional .env file."""
    values: dict[str, str | None] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update(dotenv_values(env_file))
    values.update(os.environ if environ is None else environ)
    settings: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = values.get(setting.key)
        if raw is None or raw == "":
            raw = setting.default
        if raw is None:
            settings[setting.key] = None
            continue
        try:
            settings[setting.key] = setting.parse(raw)
        except ValueError as exc:
            shown = setting.key if setting.secret else f"{setting.key}={raw!r}"
            raise ConfigError(f"{shown}: {exc}") from None
    return settings


PROJECT_ROOT = Path(__file__).resolve().parent.parent


def instance_path(settings: Mapping[str, Any]) -> str:
    """The instance folder: INSTANCE_PATH, or `instance/` beside the package, as an absolute path."""
    return str(Path(settings.get("INSTANCE_PATH") or PROJECT_ROOT / "instance").resolve())


def is_loopback(address: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 (bracketed or not) and the name localhost."""
    if address == "localhost":
        return True
    try:
        return address is not None and ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def reachable_from_outside(settings: Mapping[str, Any]) -> bool:
    """True when other machines may reach the web process: HOST is not loopback, or a proxy is trusted."""
    return not is_loopback(settings["HOST"]) or bool(settings["PROXY_FIX"])


def refuse_unsafe_defaults(settings: Mapping[str, Any]) -> None:
    """Raise ConfigError for a default secret that other machines could reach."""
    default = next(s.default for s in SETTINGS if s.key == "SECRET_KEY")
    if settings["SECRET_KEY"] == default and reachable_from_outside(settings):
        raise ConfigError(
            f"SECRET_KEY is the public default {default!r}, and HOST={settings['HOST']} "
            f"PROXY_FIX={settings['PROXY_FIX']} lets other machines in: set SECRET_KEY to a long "
            "random value, e.g. the output of `python -c 'import secrets; print(secrets.token_hex(32))'`."
        )


def exposure_warnings(settings: Mapping[str, Any]) -> list[str]:
    """What an operator should hear at start about who can reach the service."""
    if not settings["API_KEYS"] and reachable_from_outside(settings):
        return [
            f"API_KEYS is not set and HOST={settings['HOST']} PROXY_FIX={settings['PROXY_FIX']} is not "
            "loopback only: anyone who can reach this server can submit jobs and read every job. "
            "Set API_KEYS=name:key,... (see README, Security)."
        ]
    return []


def timeout_warnings(settings: Mapping[str, Any]) -> list[str]:
    """Ways in which JOB_TIMEOUT cannot cover every attempt of both LLM calls."""
    attempts = settings["LLM_MAX_RETRIES"] + 1
    backoff = sum(min(8.0, settings["LLM_BACKOFF"] * 2**i) for i in range(attempts - 1))
    needed = 2 * (attempts * settings["LLM_TIMEOUT"] + backoff)
    if settings["JOB_TIMEOUT"] < needed:
        return [
            f"JOB_TIMEOUT={settings['JOB_TIMEOUT']}s is shorter than two LLM calls of {attempts} attempts "
            f"at LLM_TIMEOUT={settings['LLM_TIMEOUT']:g}s with backoff ({needed:.0f}s): slow jobs will "
            "be failed for the job timeout before the LLM retries run out."
        ]
    return []


def database_url(settings: Mapping[str, Any], instance_path: str) -> str:
    """The SQLAlchemy URL: DATABASE_URL, or an absolute SQLite path in the instance folder."""
    url = settings.get("DATABASE_URL")
    if not url:
        return "sqlite:///" + str(Path(instance_path, "jobsvc.sqlite3").resolve())
    # Heroku-style URLs name the scheme `postgres://`, which SQLAlchemy 2 does not accept.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redis_url(settings: Mapping[str, Any], instance_path: str) -> str:
    """The Redis URL: REDIS_URL, or the embedded server's socket in the instance folder."""
    return settings.get("REDIS_URL") or "unix://" + str(Path(instance_path, "redis.sock").resolve())

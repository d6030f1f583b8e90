"""Which workers are alive: each worker's reconciler stamps its name in one sorted set per queue.

The worker side writes (`beat`); anyone reads (`count_alive`) in O(log n), with no scan
of Redis's keyspace. RQ's own worker heartbeat can be minutes old on an idle worker,
hence this one, refreshed every RECONCILE_INTERVAL.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Mapping
from typing import Any

from redis import Redis


def host_label(config: Mapping[str, Any]) -> str:
    """This host's name as workers and leases show it: HOST_LABEL, else the machine's host name."""
    return (config.get("HOST_LABEL") or socket.gethostname())[:40]


def lease_owner(config: Mapping[str, Any]) -> str:
    """A new lease owner for one run of a job: host, process, and a unique part (at most 64 chars)."""
    return f"{host_label(config)}.{os.getpid()}.{uuid.uuid4().hex[:12]}"


def registry_key(queue_name: str) -> str:
    """The sorted set of live workers on `queue_name`: member = worker name, score = last beat."""
    return f"jobsvc:{queue_name}:workers"


def beat(redis: Redis, queue_name: str, worker: str, expires_after: float) -> None:
    """Say `worker` is alive now, and forget workers silent for longer than `expires_after` seconds."""
    now = time.time()
    key = registry_key(queue_name)
    pipe = redis.pipeline(transaction=False)
    pipe.zadd(key, {worker: now})
    pipe.zremrangebyscore(key, "-inf", now - expires_after)
    pipe.expire(key, max(1, int(expires_after * 2)))
    pipe.execute()


def leave(redis: Redis, queue_name: str, worker: str) -> None:
    """Take `worker` off the list at once (a clean stop)."""
    redis.zrem(registry_key(queue_name), worker)


def count_alive(redis: Redis, queue_name: str, within: float) -> int:
    """Workers on `queue_name` that said they were alive in the last `within` seconds."""
    return int(redis.zcount(registry_key(queue_name), time.time() - within, "+inf"))

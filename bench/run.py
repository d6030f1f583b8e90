"""`make bench`: the real stack, as the Procfile runs it, under load; prints a markdown table.

Each phase gets a fresh stack in a temporary instance folder: the embedded Redis, the
fake OpenAI server (tests/fake_openai.py) with the phase's latency, `release`, then the
Procfile's `web` and `worker` commands with production defaults (bound to 127.0.0.1).
Load comes from wrk (keep-alive connections; bench/post_job.lua) for ingest and from
threads of keep-alive http.client connections for the drains. Timings of jobs are read
from the job rows (created_at, started_at, finished_at); LLM calls from the fake server.

Two phases measure ingest against targets: `reference` runs bench/reference_app.py (a bare
Flask endpoint) under gunicorn beside jobsvc, same sizes and Redis, and prints the ratio
and each server's CPU per request; `batch` sends POST /jobs/batch of 500 jobs from one client.

    python bench/run.py            # the full run, a few minutes
    python bench/run.py --smoke    # a few jobs per phase, to keep the script working
    python bench/run.py --only reference --only batch   # chosen phases only

The `postgres` phase runs ingest (32 connections) and the instant drain again on a
throwaway PostgreSQL server (Debian's binaries, as the tests find them), so its cost next
to SQLite is a measured figure; it is skipped, saying so, where PostgreSQL is not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.postgres, the throwaway PostgreSQL server

from tests.postgres import create_database, running_postgres, server_binaries  # noqa: E402

TEXT = (
    "Wash hands before handling food. Keep raw meat below ready-to-eat food in the fridge. "
    "Cook poultry to 75 C in the thickest part. Cool leftovers within two hours and label "
    "them with the date. Clean and sanitise surfaces after each task."
)


@dataclass
class Scale:
    """How much work each phase does."""

    ingest_connections: tuple[int, ...] = (1, 8, 32, 128)
    ingest_seconds: int = 10
    pickup_jobs: int = 50
    drain_jobs: int = 2000
    latency_jobs: int = 1000
    latency_seconds: float = 1.0
    latency_concurrency: int = 32
    reference_rounds: int = 2
    batch_jobs: int = 20000
    batch_size: int = 500
    # The latency-bound drain at ten times the default concurrency (issue: 10,000 jobs at 320).
    wide_jobs: int = 10000
    wide_concurrency: int = 320


SMOKE = Scale((8,), 1, 3, 20, 8, 0.2, 4, 1, 100, 50, 40, 20)
# Both gunicorns, jobsvc's and the reference's, run with jobsvc's defaults.
WEB_PROCESSES, WEB_THREADS = 2, 128
REFERENCE_CONNECTIONS = 32
# For phases that only accept jobs: no worker drains them, so the queue only grows.
UNBOUNDED = {"MAX_PENDING_JOBS": "10000000"}


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def procfile_command(name: str, port: int) -> str:
    """The Procfile's command for `name`, bound to loopback instead of every address."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        key, _, command = line.partition(":")
        if key.strip() == name:
            command = command.strip().replace("0.0.0.0:$PORT", f"127.0.0.1:{port}")
            command = command.replace("HOST=0.0.0.0", "HOST=127.0.0.1")
            # `exec NAME=value cmd` is no command to sh: let env set the variables.
            return f"env {command}" if re.match(r"^[A-Z_]+=", command) else command
    raise SystemExit(f"Procfile has no {name!r} process")


class _Termination:
    """SIGTERM as SystemExit, so that every phase's `finally` stops its stack.

    The stacks run in sessions of their own, where no terminal or parent signal reaches them.
    Within `deferred()` the exit waits for the block's end: while a process is being started
    (raised between the fork and the assignment, it would leave one that stop() never sees)
    and while a stack stops (raised halfway, it would leave the rest running).
    """

    def __init__(self) -> None:
        self.deferring = False
        self.pending: int | None = None

    def handle(self, signum: int, _frame: Any) -> None:
        if self.deferring:
            self.pending = signum
            return
        raise SystemExit(128 + signum)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
        if self.pending is not None:
            signum, self.pending = self.pending, None
            raise SystemExit(128 + signum)


TERMINATION = _Termination()


@dataclass
class Stack:
    """One fresh jobsvc: Redis, fake LLM, web and worker, in their own instance folder."""

    directory: Path
    llm_delay: float
    env_overrides: dict[str, str] = field(default_factory=dict)
    start_worker: bool = True
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    peak_rss: dict[str, int] = field(default_factory=lambda: Counter())

    def __post_init__(self) -> None:
        self.web_port, self.llm_port = free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "API_KEYS"}}
        self.env.update(
            INSTANCE_PATH=str(self.directory),
            PORT=str(self.web_port),
            OPENAI_API_KEY="bench-key",
            OPENAI_BASE_URL=f"http://127.0.0.1:{self.llm_port}/v1",
            PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            PYTHONUNBUFFERED="1",
            **self.env_overrides,
        )
        self._sampling = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def _spawn(self, name: str, command: str) -> None:
        log = open(self.directory / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        with TERMINATION.deferred():
            self.processes[name] = subprocess.Popen(
                ["/bin/sh", "-c", f"exec {command}"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start(self) -> Stack:
        try:
            return self._start()
        except BaseException:
            # Stopped (SIGTERM, Ctrl-C) or failed while starting: stop what already runs.
            self.stop()
            raise

    def _start(self) -> Stack:
        self.directory.mkdir(parents=True, exist_ok=True)
        python = shlex.quote(sys.executable)
        self._spawn("redis", f"{python} -m jobsvc.embedded_redis")
        self._spawn("llm", f"{python} -m tests.fake_openai --port {self.llm_port} --delay {self.llm_delay}")
        _wait_for(lambda: (self.directory / "redis.sock").exists(), "embedded Redis")
        subprocess.run(
            shlex.split(procfile_command("release", self.web_port)), cwd=ROOT, env=self.env, check=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._spawn("web", procfile_command("web", self.web_port))
        if self.start_worker:
            self._spawn("worker", procfile_command("worker", self.web_port))
        _wait_for(lambda: _get(f"{self.url}/healthz") is not None, "web")
        _wait_for(lambda: _get(f"http://127.0.0.1:{self.llm_port}/_calls") is not None, "fake LLM")
        if self.start_worker:
            _wait_for(lambda: _get(f"{self.url}/readyz") is not None, "a ready worker", timeout=60)
        threading.Thread(target=self._sample_rss, daemon=True).start()
        return self

    def _sample_rss(self) -> None:
        while not self._sampling.wait(0.2):
            for name in ("web", "worker"):
                if name in self.processes:
                    self.peak_rss[name] = max(self.peak_rss[name], _tree_rss(self.processes[name].pid))

    def stop(self) -> None:
        self._sampling.set()
        # A SIGTERM meanwhile is honoured once every process is stopped, not halfway.
        with TERMINATION.deferred():
            # Web, worker and the reference app first, so they leave Redis cleanly; Redis last.
            for name in ("worker", "web", "reference", "llm", "redis"):
                process = self.processes.get(name)
                if process is None:
                    continue
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()

    def llm_calls(self) -> list[str]:
        """The user message of every call the fake LLM answered."""
        return json.loads(_get(f"http://127.0.0.1:{self.llm_port}/_calls") or b"{}")["calls"]

    def jobs(self) -> list[dict[str, Any]]:
        """Every job row: status and timestamps."""
        query = "SELECT input_text, status, created_at, started_at, finished_at FROM jobs"
        if "DATABASE_URL" in self.env_overrides:
            with _postgres(self.env_overrides["DATABASE_URL"]) as db:
                cursor = db.execute(query)
                names = [column.name for column in cursor.description]
                return [dict(zip(names, row, strict=True)) for row in cursor]
        with sqlite3.connect(self.directory / "jobsvc.sqlite3", timeout=30) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(query)
            return [dict(row) for row in rows]

    def unfinished(self) -> int:
        query = "SELECT COUNT(*) FROM jobs WHERE status IN ('pending', 'running')"
        if "DATABASE_URL" in self.env_overrides:
            with _postgres(self.env_overrides["DATABASE_URL"]) as db:
                return db.execute(query).fetchone()[0]
        with sqlite3.connect(self.directory / "jobsvc.sqlite3", timeout=30) as db:
            return db.execute(query).fetchone()[0]


def _postgres(url: str) -> psycopg.Connection:
    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def _tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    except psutil.Error:
        return 0


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of `pid`'s tree.

    Less sensitive to a busy machine than throughput: what a request or a job costs.
    """
    total = 0.0
    try:
        root = psutil.Process(pid)
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
    except psutil.Error:
        pass
    return total


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read()
    except OSError:
        return None


def _wait_for(ready: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {what} did not start within {timeout:.0f}s")
        time.sleep(0.05)


def _when(value: str | datetime | None) -> float:
    if isinstance(value, datetime):  # PostgreSQL's timestamptz
        return value.timestamp()
    # SQLite keeps the UTC timestamps without their zone.
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp() if value else float("nan")


def post_jobs(url: str, count: int, connections: int) -> tuple[float, list[str]]:
    """POST `count` jobs over `connections` keep-alive connections; (start time, event ids)."""
    host, port = url.removeprefix("http://").split(":")
    per_connection = [range(i, count, connections) for i in range(connections)]

    def send(numbers: range) -> list[str]:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        ids = []
        for n in numbers:
            body = json.dumps({"input_text": f"[bench-job {n}] {TEXT}"})
            conn.request("POST", "/jobs/", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            payload = response.read()
            if response.status != 201:
                raise SystemExit(f"bench: POST answered {response.status}: {payload[:200]!r}")
            ids.append(json.loads(payload)["event_id"])
        conn.close()
        return ids

    started = time.time()
    with ThreadPoolExecutor(connections) as pool:
        ids = [i for chunk in pool.map(send, per_connection) for i in chunk]
    return started, ids


def wait_until_finished(stack: Stack, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while stack.unfinished():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {stack.unfinished()} jobs still unfinished after {timeout:.0f}s")
        time.sleep(0.1)


def check_correctness(stack: Stack, expected_jobs: int) -> str:
    """'ok' if every job succeeded and the LLM saw exactly two calls per job; else what differs."""
    statuses = Counter(job["status"] for job in stack.jobs())
    per_job = Counter(m.group(1) for c in stack.llm_calls() if (m := re.search(r"\[bench-job (\d+)\]", c)))
    calls = Counter(per_job.values())
    if statuses == Counter(succeeded=expected_jobs) and calls == Counter({2: expected_jobs}):
        return "ok"
    return f"statuses {dict(statuses)}, calls per job {dict(calls)}"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def measure_ingest(
    workdir: Path, scale: Scale, env: dict[str, str] | None = None, name: str = "ingest"
) -> list[dict[str, Any]]:
    """POST /jobs/ under wrk at each connection count, on a web process with no worker running."""
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (apt-get install wrk); skipping ingest", file=sys.stderr)
        return []
    rows = []
    for connections in scale.ingest_connections:
        # No worker drains: without UNBOUNDED, MAX_PENDING_JOBS would turn a fast run into 429s.
        overrides = {**UNBOUNDED, **(env or {})}
        stack = Stack(workdir / f"{name}-{connections}", 0.0, overrides, start_worker=False).start()
        try:
            result = _wrk(f"{stack.url}/jobs/", connections, scale.ingest_seconds)
            result["web_rss"] = stack.peak_rss["web"]
            rows.append(result)
        finally:
            stack.stop()
    return rows


def measure_pickup(workdir: Path, scale: Scale) -> dict[str, Any]:
    """One job at a time on an idle system: started_at - created_at."""
    stack = Stack(workdir / "pickup", 0.0).start()
    try:
        for _ in range(scale.pickup_jobs):
            post_jobs(stack.url, 1, 1)
            wait_until_finished(stack, 30)
            time.sleep(0.1)
        waits = [_when(j["started_at"]) - _when(j["created_at"]) for j in stack.jobs()]
        return {"median_ms": statistics.median(waits) * 1000, "p95_ms": percentile(waits, 95) * 1000}
    finally:
        stack.stop()


def measure_drain(workdir: Path, name: str, jobs: int, delay: float, env: dict[str, str]) -> dict[str, Any]:
    """POST `jobs` jobs (32 connections) to a fresh stack; from the first POST to the last finish."""
    stack = Stack(workdir / name, delay, env).start()
    try:
        cpu_before = _tree_cpu(stack.processes["worker"].pid)
        started, _ids = post_jobs(stack.url, jobs, 32)
        posted = time.time() - started
        wait_until_finished(stack, 600)
        worker_cpu = _tree_cpu(stack.processes["worker"].pid) - cpu_before
        rows = stack.jobs()
        elapsed = max(_when(j["finished_at"]) for j in rows) - started
        return {
            "jobs": jobs,
            "seconds": elapsed,
            "post_seconds": posted,
            "jobs_per_s": jobs / elapsed,
            "correct": check_correctness(stack, jobs),
            "web_rss": stack.peak_rss["web"],
            "worker_rss": stack.peak_rss["worker"],
            "worker_cpu_ms_per_job": worker_cpu * 1000 / jobs,
        }
    finally:
        stack.stop()


def measure_postgres(workdir: Path, scale: Scale) -> dict[str, Any] | None:
    """Ingest at 32 connections and the instant drain, each on a fresh PostgreSQL database."""
    if server_binaries() is None:
        print("bench: PostgreSQL is not installed (apt-get install postgresql); skipping it", file=sys.stderr)
        return None
    with running_postgres(free_port()) as server:
        ingest_env = {"DATABASE_URL": create_database(server, "bench_ingest")}
        ingest = measure_ingest(workdir, Scale(ingest_connections=(32,), ingest_seconds=scale.ingest_seconds),
                                ingest_env, "pg-ingest")  # fmt: skip
        drain_env = {"DATABASE_URL": create_database(server, "bench_drain")}
        drain = measure_drain(workdir, "pg-drain", scale.drain_jobs, 0.0, drain_env)
    return {"ingest": ingest[0] if ingest else None, "drain": drain}


def _wrk(url: str, connections: int, seconds: int) -> dict[str, Any]:
    command = [
        "wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s",
        "--timeout", "10s", "-s", str(ROOT / "bench" / "post_job.lua"), url,
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0 or "WRK_RESULT" not in run.stdout:
        raise SystemExit(f"bench: wrk failed on {url}: {run.stdout[-500:]} {run.stderr[-500:]}")
    result = json.loads(run.stdout.split("WRK_RESULT", 1)[1])
    result.update(connections=connections, rps=result["requests"] / (result["duration_us"] / 1e6))
    return result


def measure_reference(workdir: Path, scale: Scale) -> dict[str, Any]:
    """POST /jobs/ of jobsvc and of bench/reference_app.py, side by side on one stack and one Redis.

    Both run under gunicorn with the same processes and threads, with no worker draining;
    wrk alternates between them (jobsvc, reference, jobsvc, ...) so both see the same
    machine, and the ratio compares the best round of each.
    """
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (apt-get install wrk); skipping the reference", file=sys.stderr)
        return {}
    # No worker drains, and the reference has no backpressure: jobsvc must not answer 429 either.
    settings = {"WEB_CONCURRENCY": str(WEB_PROCESSES), "WEB_THREADS": str(WEB_THREADS), **UNBOUNDED}
    stack = Stack(workdir / "reference", 0.0, settings, start_worker=False).start()
    reference_port = free_port()
    try:
        stack._spawn(
            "reference",
            f"{shlex.quote(sys.executable)} -m gunicorn -k gthread -w {WEB_PROCESSES} "
            f"--threads {WEB_THREADS} -b 127.0.0.1:{reference_port} bench.reference_app:app",
        )
        reference_url = f"http://127.0.0.1:{reference_port}"
        _wait_for(lambda: _post(f"{reference_url}/jobs/"), "the reference app")
        rounds: dict[str, list[dict[str, Any]]] = {"jobsvc": [], "reference": []}
        for _ in range(scale.reference_rounds):
            for name, url in (("jobsvc", stack.url), ("reference", reference_url)):
                server = stack.processes["web" if name == "jobsvc" else "reference"].pid
                cpu_before = _tree_cpu(server)
                try:
                    result = _wrk(f"{url}/jobs/", REFERENCE_CONNECTIONS, scale.ingest_seconds)
                    result["cpu_ms"] = (_tree_cpu(server) - cpu_before) * 1000 / max(1, result["requests"])
                    rounds[name].append(result)
                except SystemExit:
                    for log in ("web", "reference"):
                        tail = (stack.directory / f"{log}.log").read_text(errors="replace")[-2000:]
                        print(f"--- {log}.log\n{tail}", file=sys.stderr)
                    raise
        best = {name: max(results, key=lambda r: r["rps"]) for name, results in rounds.items()}
        cpu = {name: statistics.median(r["cpu_ms"] for r in results) for name, results in rounds.items()}
        return {
            **best,
            "rounds": rounds,
            "ratio": best["jobsvc"]["rps"] / best["reference"]["rps"],
            "cpu_ms": cpu,
            "cpu_ratio": cpu["jobsvc"] / cpu["reference"],
        }
    finally:
        stack.stop()


def _post(url: str, body: dict[str, Any] | None = None) -> bytes | None:
    data = json.dumps(body or {"input_text": "ready?"}).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.read()
    except OSError:
        return None


def measure_batch(workdir: Path, scale: Scale) -> dict[str, Any]:
    """One client, one keep-alive connection, POST /jobs/batch of `batch_size` jobs until `batch_jobs`."""
    stack = Stack(workdir / "batch", 0.0, UNBOUNDED, start_worker=False).start()
    try:
        host, port = stack.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        bodies = [
            json.dumps(
                {"items": [{"input_text": f"[bench-job {n + i}] {TEXT}"} for i in range(scale.batch_size)]}
            )
            for n in range(0, scale.batch_jobs, scale.batch_size)
        ]
        accepted, latencies = 0, []
        started = time.perf_counter()
        for body in bodies:
            sent = time.perf_counter()
            conn.request("POST", "/jobs/batch", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            payload = response.read()
            if response.status != 201:
                raise SystemExit(f"bench: POST /jobs/batch answered {response.status}: {payload[:200]!r}")
            accepted += len(json.loads(payload)["event_ids"])
            latencies.append(time.perf_counter() - sent)
        elapsed = time.perf_counter() - started
        conn.close()
        stored = len(stack.jobs())
        return {
            "jobs": accepted,
            "stored": stored,
            "batch_size": scale.batch_size,
            "seconds": elapsed,
            "jobs_per_s": accepted / elapsed,
            "p50_ms": statistics.median(latencies) * 1000,
            "max_ms": max(latencies) * 1000,
        }
    finally:
        stack.stop()


def report_targets(reference: dict[str, Any], batch: dict[str, Any], drain: dict[str, Any]) -> str:
    """Ingest against the bare reference endpoint, batch ingest and the drain's CPU, with their targets."""
    lines = []
    if "worker_cpu_ms_per_job" in drain:
        cpu = drain["worker_cpu_ms_per_job"]
        met = "met" if drain["jobs_per_s"] >= 150 else "not met"
        lines += [
            "",
            "| Per-job CPU, instant drain | Result |",
            "|---|---|",
            f"| Worker CPU per job (user + system, every worker process) | {cpu:.1f} ms: "
            f"one core runs at most {1000 / cpu:.0f} jobs/s of it |",
            f"| Drain throughput, target ≥ 150 jobs/s | {drain['jobs_per_s']:.0f} jobs/s: {met} |",
        ]
    if reference:
        ratio, jobsvc, bare = reference["ratio"], reference["jobsvc"], reference["reference"]
        lines += [
            "",
            f"| Ingest vs bare reference ({REFERENCE_CONNECTIONS} connections, same run, best of "
            f"{len(reference['rounds']['jobsvc'])} alternating rounds) "
            "| requests/s | p50 ms | p99 ms | errors | server CPU ms per request |",
            "|---|---|---|---|---|---|",
        ]
        for key, name, row in (
            ("jobsvc", "jobsvc POST /jobs/", jobsvc),
            ("reference", "bench/reference_app.py", bare),
        ):
            lines.append(
                f"| {name} | {row['rps']:.0f} | {row['p50_us'] / 1000:.1f} | {row['p99_us'] / 1000:.1f} "
                f"| {row['non_2xx'] + row['socket_errors']} | {reference['cpu_ms'][key]:.2f} |"
            )
        rounds = ", ".join(
            f"{a['rps'] / b['rps']:.2f}x"
            for a, b in zip(reference["rounds"]["jobsvc"], reference["rounds"]["reference"], strict=True)
        )
        met = "met" if ratio >= 1.0 and jobsvc["p99_us"] <= 100_000 else "not met"
        lines.append(
            f"| **Ratio jobsvc / reference** | **{ratio:.2f}x** (rounds: {rounds}) | | "
            f"target ≥ 1.0x, p99 ≤ 100 ms: {met} | | {reference['cpu_ratio']:.2f}x |"
        )
    if batch:
        met = "met" if batch["jobs_per_s"] >= 10_000 else "not met"
        lines += [
            "",
            "| Batch ingest: POST /jobs/batch, one client | Result |",
            "|---|---|",
            f"| {batch['jobs']} jobs in batches of {batch['batch_size']} "
            f"| **{batch['jobs_per_s']:.0f} jobs/s** ({batch['seconds']:.1f} s; per batch "
            f"p50 {batch['p50_ms']:.0f} ms, max {batch['max_ms']:.0f} ms; {batch['stored']} rows stored); "
            f"target ≥ 10,000 jobs/s: {met} |",
        ]
    return "\n".join(lines)


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python {sys.version.split()[0]}"


def report(scale: Scale, ingest: list[dict[str, Any]], pickup: dict[str, Any], drain: dict[str, Any],
           latency: dict[str, Any], postgres: dict[str, Any] | None = None) -> str:  # fmt: skip
    mb = 2**20
    ideal = 2 * scale.latency_seconds * scale.latency_jobs / scale.latency_concurrency
    lines = [
        f"Machine: {machine()}; load generator on the same cores.",
        "",
        "| Ingest: POST /jobs/ (wrk, keep-alive) | requests/s | p50 ms | p95 ms | p99 ms | errors "
        "| web RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in ingest:
        lines.append(
            f"| {row['connections']} connections | {row['rps']:.0f} | {row['p50_us'] / 1000:.1f} "
            f"| {row['p95_us'] / 1000:.1f} | {row['p99_us'] / 1000:.1f} "
            f"| {row['non_2xx'] + row['socket_errors']} | {row['web_rss'] / mb:.0f} |"
        )
    lines += [
        "",
        "| Measure | Result |",
        "|---|---|",
        f"| Pickup, idle system ({scale.pickup_jobs} jobs) | median {pickup['median_ms']:.1f} ms, "
        f"p95 {pickup['p95_ms']:.1f} ms |",
        f"| Drain, {drain['jobs']} jobs, instant LLM, default settings | {drain['jobs_per_s']:.0f} jobs/s "
        f"({drain['seconds']:.1f} s; POSTs took {drain['post_seconds']:.1f} s) |",
        f"| Latency-bound drain, {latency['jobs']} jobs, {scale.latency_seconds:g} s per LLM call, "
        f"WORKER_CONCURRENCY={scale.latency_concurrency} | {latency['seconds']:.1f} s vs ideal {ideal:.1f} s "
        f"({latency['seconds'] / ideal:.2f}x) |",
        f"| Peak RSS, web (all gunicorn processes) | {max(drain['web_rss'], latency['web_rss']) / mb:.0f} MB "
        "|",
        f"| Peak RSS, worker, instant drain | {drain['worker_rss'] / mb:.0f} MB |",
        f"| Peak RSS, worker, latency-bound drain | {latency['worker_rss'] / mb:.0f} MB |",
        f"| Worker CPU per job, latency-bound drain "
        f"| {latency.get('worker_cpu_ms_per_job', float('nan')):.1f} ms |",
        f"| Correctness: all succeeded, two LLM calls per job | drain: {drain['correct']}; "
        f"latency-bound: {latency['correct']} |",
    ]
    if postgres is not None:
        pg_ingest, pg_drain = postgres["ingest"], postgres["drain"]
        if pg_ingest is not None:
            lines.append(
                f"| PostgreSQL ingest, 32 connections (wrk) | {pg_ingest['rps']:.0f} requests/s, "
                f"p99 {pg_ingest['p99_us'] / 1000:.1f} ms, "
                f"{pg_ingest['non_2xx'] + pg_ingest['socket_errors']} errors |"
            )
        lines.append(
            f"| PostgreSQL drain, {pg_drain['jobs']} jobs, instant LLM | {pg_drain['jobs_per_s']:.0f} jobs/s "
            f"({pg_drain['seconds']:.1f} s); correctness: {pg_drain['correct']} |"
        )
    return "\n".join(lines)


def report_wide(scale: Scale, wide: dict[str, Any]) -> str:
    """The latency-bound drain at ten times the concurrency, against its targets."""
    if not wide["jobs"]:
        return ""
    ideal = 2 * scale.latency_seconds * wide["jobs"] / scale.wide_concurrency
    ratio = wide["seconds"] / ideal
    mb = 2**20
    return "\n".join(
        [
            "",
            f"| Ten times the concurrency: {wide['jobs']} jobs, {scale.latency_seconds:g} s per LLM call, "
            f"WORKER_CONCURRENCY={scale.wide_concurrency} | Result | Target |",
            "|---|---|---|",
            f"| Time vs ideal {ideal:.1f} s | {wide['seconds']:.1f} s ({ratio:.2f}x) "
            f"| ≤ 1.15x: {'met' if ratio <= 1.15 else 'not met'} |",
            f"| Peak worker RSS | {wide['worker_rss'] / mb:.0f} MB "
            f"| ≤ 1,536 MB: {'met' if wide['worker_rss'] <= 1.5 * 2**30 else 'not met'} |",
            f"| Worker CPU per job | {wide.get('worker_cpu_ms_per_job', float('nan')):.1f} ms | |",
            f"| Every job succeeded, two LLM calls each | {wide['correct']} | ok |",
        ]
    )


def main() -> None:
    signal.signal(signal.SIGTERM, TERMINATION.handle)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a few jobs per phase")
    parser.add_argument(
        "--only",
        choices=["ingest", "pickup", "drain", "latency", "wide", "postgres", "reference", "batch"],
        action="append",
    )
    parser.add_argument("--jobs", type=int, help="jobs in the latency-bound drain (default 1000)")
    parser.add_argument(
        "--concurrency", type=int, help="WORKER_CONCURRENCY of the latency-bound drain (default 32)"
    )
    args = parser.parse_args()
    scale = SMOKE if args.smoke else Scale()
    if args.jobs:
        scale = replace(scale, latency_jobs=args.jobs)
    if args.concurrency:
        scale = replace(scale, latency_concurrency=args.concurrency)
    phases = set(
        args.only or ["ingest", "pickup", "drain", "latency", "wide", "postgres", "reference", "batch"]
    )
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="jobsvc-bench-") as tmp:
        workdir = Path(tmp)
        empty = {"jobs": 0, "seconds": float("nan"), "post_seconds": float("nan"), "jobs_per_s": float("nan"),
                 "correct": "not run", "web_rss": 0, "worker_rss": 0}  # fmt: skip
        latency_env = {"WORKER_CONCURRENCY": str(scale.latency_concurrency)}
        ingest = measure_ingest(workdir, scale) if "ingest" in phases else []
        pickup = {"median_ms": float("nan"), "p95_ms": float("nan")}
        if "pickup" in phases:
            pickup = measure_pickup(workdir, scale)
        drain = measure_drain(workdir, "drain", scale.drain_jobs, 0.0, {}) if "drain" in phases else empty
        latency = empty
        if "latency" in phases:
            jobs, seconds = scale.latency_jobs, scale.latency_seconds
            latency = measure_drain(workdir, "latency", jobs, seconds, latency_env)
        wide = empty
        if "wide" in phases:
            wide_env = {"WORKER_CONCURRENCY": str(scale.wide_concurrency)}
            wide = measure_drain(workdir, "wide", scale.wide_jobs, scale.latency_seconds, wide_env)
        postgres = measure_postgres(workdir, scale) if "postgres" in phases else None
        reference = measure_reference(workdir, scale) if "reference" in phases else {}
        batch = measure_batch(workdir, scale) if "batch" in phases else {}
        print(report(scale, ingest, pickup, drain, latency, postgres))
        print(report_wide(scale, wide))
        print(report_targets(reference, batch, drain))
    print(f"\n(bench took {time.monotonic() - began:.0f} s)")
    pg_drain = [postgres["drain"]] if postgres else []
    pg_ingest = [postgres["ingest"]] if postgres and postgres["ingest"] else []
    checked = [*ingest, *pg_ingest, *(reference[name] for name in ("jobsvc", "reference") if reference)]
    ok = all(r["non_2xx"] + r["socket_errors"] == 0 for r in checked) and all(
        d["correct"] in {"ok", "not run"} for d in (drain, latency, wide, *pg_drain)
    )
    ok = ok and (not batch or batch["stored"] == batch["jobs"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

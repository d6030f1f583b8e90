"""The benchmark still runs: `bench/run.py --smoke` on a few jobs per phase (no timing is checked)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from tests.support import wait_for

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def bench(*args: str) -> Iterator[subprocess.Popen[str]]:
    """`bench/run.py` with `args`; if it is still running when the block ends, SIGTERM first,
    so that it stops the stacks it started (they run in sessions of their own)."""
    process = subprocess.Popen(
        [sys.executable, "bench/run.py", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


@pytest.mark.timeout(900)
def test_the_benchmark_smoke_run_measures_every_phase_and_finds_every_job_correct():
    # One run of every phase (a stack each): the slowest test, so it runs once.
    with bench("--smoke") as process:
        stdout, stderr = process.communicate(timeout=840)

    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]
    for row in ("| Pickup", "| Drain", "| Latency-bound drain", "| Peak RSS, worker"):
        assert row in stdout
    assert "drain: ok; latency-bound: ok" in stdout
    assert "| Ten times the concurrency" in stdout
    # Ingest against the bare reference endpoint, measured in the same run, and batch ingest.
    for row in ("| jobsvc POST /jobs/", "| bench/reference_app.py", "| **Ratio jobsvc / reference**"):
        assert row in stdout
    assert "| 100 jobs in batches of 50 |" in stdout and "100 rows stored" in stdout


def command_line(process: psutil.Process) -> str:
    """The process's command line; "" once it has exited (the bench's short-lived `release`)."""
    try:
        return " ".join(process.cmdline())
    except psutil.NoSuchProcess:
        return ""


@pytest.mark.timeout(300)
def test_a_benchmark_stopped_with_sigterm_stops_the_stack_it_started():
    with bench("--smoke", "--only", "drain") as process:
        # Its stack is up once the worker runs: redis, the fake LLM, web and worker.
        wait_for(
            lambda: any("worker.py" in command_line(p) for p in psutil.Process(process.pid).children()),
            timeout=120,
            what="the bench's worker",
        )
        stack = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=120)

    _, alive = psutil.wait_procs(stack, timeout=10)
    left = [command_line(p) for p in alive]
    for straggler in alive:  # so that a failure here leaves nothing running for later tests
        with contextlib.suppress(psutil.NoSuchProcess):
            straggler.kill()
    assert process.returncode == 128 + signal.SIGTERM
    assert left == []

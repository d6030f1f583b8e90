"""The benchmark still runs: `bench/run.py --smoke` on a few jobs per phase (no timing is checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(900)
def test_the_benchmark_smoke_run_measures_every_phase_and_finds_every_job_correct():
    # One run of every phase (a stack each): the slowest test, so it runs once.
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--smoke"], cwd=REPO, capture_output=True, text=True, timeout=840
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for row in ("| Pickup", "| Drain", "| Latency-bound drain", "| Peak RSS, worker"):
        assert row in result.stdout
    assert "drain: ok; latency-bound: ok" in result.stdout
    assert "| Ten times the concurrency" in result.stdout
    # Ingest against the bare reference endpoint, measured in the same run, and batch ingest.
    for row in ("| jobsvc POST /jobs/", "| bench/reference_app.py", "| **Ratio jobsvc / reference**"):
        assert row in result.stdout
    assert "| 100 jobs in batches of 50 |" in result.stdout and "100 rows stored" in result.stdout

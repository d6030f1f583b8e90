"""The benchmark still runs: `bench/run.py --smoke` on a few jobs per phase (no timing is checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_benchmark_smoke_run_measures_every_phase_and_finds_every_job_correct():
    # The ingest-ratio and batch phases have a smoke test of their own, below: each stays
    # within the per-test timeout.
    phases = [arg for phase in ("ingest", "pickup", "drain", "latency") for arg in ("--only", phase)]
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--smoke", *phases],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for row in ("| Pickup", "| Drain", "| Latency-bound drain", "| Peak RSS, worker"):
        assert row in result.stdout
    assert "drain: ok; latency-bound: ok" in result.stdout


def test_the_smoke_run_compares_ingest_with_the_bare_reference_and_measures_batch_ingest():
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--smoke", "--only", "reference", "--only", "batch"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for row in ("| jobsvc POST /jobs/", "| bench/reference_app.py", "| **Ratio jobsvc / reference**"):
        assert row in result.stdout
    assert "| 100 jobs in batches of 50 |" in result.stdout and "100 rows stored" in result.stdout

"""Entry point of the worker process: `python worker.py`."""

from jobsvc import create_app
from jobsvc.worker.runner import run_worker

if __name__ == "__main__":
    run_worker(create_app())

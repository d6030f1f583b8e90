"""Entry point of the worker process: `python worker.py`."""

import logging
import os
import sys

from jobsvc import create_app
from jobsvc.worker.runner import run_worker

if __name__ == "__main__":
    run_worker(create_app())
    # Everything the worker owns is in the database and Redis, and has been said goodbye
    # to. Skip the interpreter's teardown: its full garbage collection over the app took
    # 2 to 3 s on a busy 2-core host (measured), time a stop waits for before honcho's or
    # a platform's kill.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

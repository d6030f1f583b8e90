"""Group commit: concurrent callers in one process share one flush of their entries.

A caller hands in its entry and waits. The first caller to find no flush in progress
becomes the leader: it takes every entry waiting at that moment (its own included) and
flushes them at once, for example in one database transaction and one Redis pipeline.
Entries that arrive meanwhile wait for the next flush, which the first of them leads once
the current one has ended. So the cost of a flush is shared by as many callers as arrive
during one, and no caller waits for more than the flush in progress plus its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Entry(Generic[T]):
    """One caller's item and what its flush made of it: a result or an error."""

    __slots__ = ("_lead", "_wake", "error", "item", "result")

    def __init__(self, item: T) -> None:
        self.item = item
        self.result: object = None
        self.error: BaseException | None = None
        self._wake = threading.Event()
        self._lead = False


class GroupCommit(Generic[T]):
    """Runs `flush(entries)` for batches of concurrently submitted entries, one batch at a time.

    `flush` sets `result` or `error` on every entry it is given; an exception it raises
    becomes the error of every entry in its batch.
    """

    def __init__(self, flush: Callable[[list[Entry[T]]], None]) -> None:
        self._flush = flush
        self._mutex = threading.Lock()
        self._waiting: list[Entry[T]] = []
        self._flushing = False

    @property
    def waiting(self) -> int:
        """Entries handed in and not yet taken by a flush."""
        with self._mutex:
            return len(self._waiting)

    def submit(self, item: T) -> object:
        """Flush `item` together with whatever else is waiting; its result, or its error raised."""
        entry = Entry(item)
        with self._mutex:
            self._waiting.append(entry)
            entry._lead = not self._flushing
            self._flushing = True
        if not entry._lead:
            entry._wake.wait()  # set when a flush has handled the entry, or when it is to lead
        if entry._lead:
            self._lead()
        if entry.error is not None:
            raise entry.error
        return entry.result

    def _lead(self) -> None:
        with self._mutex:
            batch, self._waiting = self._waiting, []
        try:
            self._flush(batch)
        except BaseException as exc:
            for entry in batch:
                if entry.error is None:
                    entry.error = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            with self._mutex:
                if self._waiting:
                    # The next batch's first entry leads it.
                    successor = self._waiting[0]
                    successor._lead = True
                    successor._wake.set()
                else:
                    self._flushing = False
            for entry in batch:
                entry._lead = False
                entry._wake.set()

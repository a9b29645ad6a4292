"""Group commit: writes that arrive while a transaction is being written share the next one.

Each acknowledged event must be durable, so each transaction ends in a sync to disk; with one
transaction per request, single-event requests are capped at one sync each. Here one writer
thread takes every write that queued up meanwhile and hands them to ``write`` together (one
transaction, one sync), then gives each caller its own result. A caller's future completes only
once its items are written; an idle writer adds no delay. If a shared write fails, each
caller's items are written alone, so one bad request never fails another.

Callers wait on a `concurrent.futures.Future`: a thread with ``.result()``, an event loop with
``asyncio.wrap_future`` (the service's request handlers do, so a write costs them no thread of
their own).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_GROUP_ITEMS = 20_000  # one write takes at most this many items


class GroupCommit(Generic[T, R]):
    """Runs ``write(items) -> one result per item`` on a writer thread, grouping concurrent
    callers' items into one call."""

    def __init__(self, write: Callable[[Sequence[T]], list[R]]) -> None:
        self.write = write
        self._turn = threading.Condition()  # guards the queue, the thread and closing
        self._queue: deque[tuple[Sequence[T], Future[list[R]]]] = deque()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, items: Sequence[T]) -> Future[list[R]]:
        """Queue ``items`` for the next write; the future holds their results once written."""
        done: Future[list[R]] = Future()
        if not items:
            done.set_result([])
            return done
        with self._turn:
            if self._closed:
                raise RuntimeError("the writer is closed")
            self._queue.append((items, done))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="driftrec-group-commit", daemon=True
                )
                self._thread.start()
            self._turn.notify()
        return done

    def append(self, items: Sequence[T]) -> list[R]:
        """`submit` and wait: returns once the items are written."""
        return self.submit(items).result()

    def close(self) -> None:
        """Write what is queued, then stop the writer thread; later submits are refused."""
        with self._turn:
            self._closed = True
            thread = self._thread
            self._turn.notify()
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._turn:
                while not self._queue and not self._closed:
                    self._turn.wait()
                if not self._queue:
                    return  # closed and drained
                group = self._take()
            if group:
                self._write(group)

    def _take(self) -> list[tuple[Sequence[T], Future[list[R]]]]:
        """The queued writes for one call (at most `MAX_GROUP_ITEMS` items unless a single
        write is larger), oldest first, leaving out any a caller cancelled before it began;
        the caller holds the lock."""
        group: list[tuple[Sequence[T], Future[list[R]]]] = []
        total = 0
        while self._queue and (not group or total + len(self._queue[0][0]) <= MAX_GROUP_ITEMS):
            items, done = self._queue.popleft()
            if done.set_running_or_notify_cancel():  # a cancelled write was never acknowledged
                group.append((items, done))
                total += len(items)
        return group

    def _write(self, group: list[tuple[Sequence[T], Future[list[R]]]]) -> None:
        try:
            results = self.write([item for items, _ in group for item in items])
        except Exception:
            for items, done in group:  # one caller at a time: a bad one fails only itself
                try:
                    done.set_result(self.write(items))
                except Exception as err:
                    done.set_exception(err)
            return
        start = 0
        for items, done in group:
            done.set_result(results[start : start + len(items)])
            start += len(items)


class WriteBehind(Generic[T]):
    """Collects items and hands them to ``write`` together every ``interval`` seconds on a
    thread of its own: for logs nobody waits for (the served lists), so a request pays a list
    append, not a transaction, and the database sees a few transactions a second however many
    requests there are. What a crash catches in the buffer (at most ``interval`` seconds of
    it) is lost; a failed write is reported to ``failed`` and dropped."""

    def __init__(
        self,
        write: Callable[[Sequence[T]], object],
        failed: Callable[[Exception], None],
        interval: float = 0.2,
    ) -> None:
        self.write, self.failed, self.interval = write, failed, interval
        self._turn = threading.Condition()
        self._buffer: list[T] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="driftrec-write-behind", daemon=True)
        self._thread.start()

    def add(self, items: Sequence[T]) -> None:
        with self._turn:
            if self._closed:
                raise RuntimeError("the writer is closed")
            self._buffer.extend(items)

    def flush(self) -> None:
        """Write what is buffered now (tests and shutdown)."""
        with self._turn:
            items, self._buffer = self._buffer, []
        for start in range(0, len(items), MAX_GROUP_ITEMS):
            try:
                self.write(items[start : start + MAX_GROUP_ITEMS])
            except Exception as err:
                self.failed(err)

    def close(self) -> None:
        """Write what is buffered and stop the thread; later adds are refused."""
        with self._turn:
            self._closed = True
            self._turn.notify()
        self._thread.join()
        self.flush()

    def _run(self) -> None:
        while True:
            with self._turn:
                if not self._closed:
                    self._turn.wait(self.interval)
                if self._closed:
                    return
            self.flush()


__all__ = ["MAX_GROUP_ITEMS", "GroupCommit", "WriteBehind"]

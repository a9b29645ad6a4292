"""Group commit: appends that arrive while a transaction is being written share the next one.

Each acknowledged event must be durable, so each transaction ends in a sync to disk; with one
transaction per request, single-event requests are capped at one sync each. Here the first
caller becomes the leader and writes every append that queued up meanwhile in one transaction
(one sync), then hands each caller its own result. A caller returns only once its events are
committed, exactly as with `EventStore.append`; an idle store adds no delay. If a shared
transaction fails, each caller's events are written alone, so one bad request never fails
another.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future

from driftrec.store.events import EventStore, StoredEvent

MAX_GROUP_EVENTS = 20_000  # one transaction takes at most this many events


class GroupCommit:
    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._queue: list[tuple[Sequence[StoredEvent], Future[list[bool]]]] = []
        self._leading = False

    def append(self, events: Sequence[StoredEvent]) -> list[bool]:
        """`EventStore.append`, sharing a transaction with concurrent callers."""
        done: Future[list[bool]] = Future()
        with self._lock:
            self._queue.append((events, done))
            lead = not self._leading
            self._leading = True
        if lead:
            self._lead()
        return done.result()

    def _lead(self) -> None:
        while True:
            with self._lock:
                group, total = [], 0
                while self._queue and (
                    not group or total + len(self._queue[0][0]) <= MAX_GROUP_EVENTS
                ):
                    events, done = self._queue.pop(0)
                    group.append((events, done))
                    total += len(events)
                if not group:
                    self._leading = False
                    return
            self._write(group)

    def _write(self, group: list[tuple[Sequence[StoredEvent], Future[list[bool]]]]) -> None:
        try:
            new = self.store.append([e for events, _ in group for e in events])
        except Exception:
            for events, done in group:
                try:
                    done.set_result(self.store.append(events))
                except Exception as err:
                    done.set_exception(err)
            return
        start = 0
        for events, done in group:
            done.set_result(new[start : start + len(events)])
            start += len(events)


__all__ = ["GroupCommit"]

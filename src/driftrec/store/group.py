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
        self._turn = threading.Condition()  # guards the queue and who leads
        self._queue: list[tuple[Sequence[StoredEvent], Future[list[bool]]]] = []
        self._leading = False

    def append(self, events: Sequence[StoredEvent]) -> list[bool]:
        """`EventStore.append`, sharing a transaction with concurrent callers. A caller leads
        transactions only until its own events are written (oldest queued first), then hands
        over: no caller keeps writing other callers' events for ever."""
        done: Future[list[bool]] = Future()
        with self._turn:
            self._queue.append((events, done))
        while True:
            with self._turn:
                while self._leading and not done.done():
                    self._turn.wait()
                if done.done():
                    break
                self._leading = True  # nobody is writing and these events are still queued
                group = self._take()
            try:
                self._write(group)
            finally:
                with self._turn:
                    self._leading = False
                    self._turn.notify_all()
        return done.result()

    def _take(self) -> list[tuple[Sequence[StoredEvent], Future[list[bool]]]]:
        """The queued appends for one transaction (at most `MAX_GROUP_EVENTS` events unless a
        single append is larger), oldest first; the caller holds the lock."""
        group, total = [], 0
        while self._queue and (not group or total + len(self._queue[0][0]) <= MAX_GROUP_EVENTS):
            events, done = self._queue.pop(0)
            group.append((events, done))
            total += len(events)
        return group

    def _write(self, group: list[tuple[Sequence[StoredEvent], Future[list[bool]]]]) -> None:
        try:
            new = self.store.append([e for events, _ in group for e in events])
        except Exception:
            for events, done in group:  # one caller at a time: a bad one fails only itself
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

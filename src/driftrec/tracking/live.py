"""Live user state: each active user's recent events, bounded in memory, consistent with the store.

A write stores the events (durable) and appends them to the user's cached state under that
user's lock; a read rebuilds an evicted or never-seen user from their training history and the
store under the same lock, so a read never misses an acknowledged event and an event is never
applied twice. Whatever depends on the events (query vectors, profiles) is cached per state and
recomputed once an event has arrived: the model's forward pass belongs to the next read.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from driftrec.data.events import Event
from driftrec.store import EventStore, StoredEvent
from driftrec.store.group import GroupCommit

T = TypeVar("T")

LOCK_STRIPES = 256


@dataclass
class UserState:
    """A user's events, oldest first (at most ``window``), and what was computed from them."""

    events: list[Event]  # replaced, never mutated: a reader's snapshot stays whole
    derived: dict[Any, tuple[list[Event], Any]] = field(default_factory=dict)

    def extend(self, events: Sequence[Event], window: int) -> None:
        merged = self.events + list(events)
        merged.sort(key=lambda e: e.timestamp)  # stable: equal times keep their arrival order
        self.events = merged[-window:]

    def cached(self, key: Any, compute: Callable[[list[Event]], T]) -> T:
        """``compute(events)``, remembered until the events change (a value computed from a
        snapshot that an event has since replaced is never served)."""
        events = self.events
        hit = self.derived.get(key)
        if hit is not None and hit[0] is events:
            return hit[1]
        value = compute(events)
        self.derived[key] = (events, value)
        return value

    def running(
        self,
        key: Any,
        start: Callable[[list[Event]], T],
        advance: Callable[[T, list[Event]], T],
        slide: Callable[[T, list[Event]], T] | None = None,
    ) -> T:
        """A value kept up with the events: ``advance(value, added)`` when events were only
        added after those it was computed from, else ``start(events)`` (an event that arrived
        out of time order starts it over). When the window dropped the oldest events too, a
        value that may keep what they contributed (a detector's memory, unlike a query vector
        that must equal one computed from the window) is told with ``slide(value, gone)``, the
        events gone, and advanced; without ``slide`` it starts over."""
        events = self.events
        hit = self.derived.get(key)
        if hit is not None:
            old, value = hit
            if old is events:
                return value
            dropped = _dropped(old, events) if slide is not None else 0
            kept = len(old) - dropped
            if len(events) > kept and all(
                a is b for a, b in zip(old[dropped:], events, strict=False)
            ):
                if dropped and slide is not None:
                    value = slide(value, old[:dropped])
                value = advance(value, events[kept:])
                self.derived[key] = (events, value)
                return value
        value = start(events)
        self.derived[key] = (events, value)
        return value


def _dropped(old: list[Event], events: list[Event]) -> int:
    """How many of ``old``'s first events are gone from the front of ``events`` (0 when the
    first of ``events`` is not one of ``old``'s)."""
    if not events:
        return 0
    first = events[0]
    return next((n for n, e in enumerate(old) if e is first), 0)


class LiveUsers:
    """An LRU of `UserState`s (``capacity`` users) in front of the store.

    ``history`` gives a user's events from before the store (their training history in the
    served model), the start of every rebuild; ``stages`` is told how long each step took.
    ``follow=False`` freezes every user at their history: events are stored but never read,
    the comparison that shows what following users live is worth."""

    def __init__(
        self,
        store: EventStore,
        history: Callable[[str], list[Event]],
        capacity: int = 100_000,
        window: int = 1_000,
        stages: Callable[[str, float], None] | None = None,
        follow: bool = True,
    ) -> None:
        self.store, self.history, self.follow = store, history, follow
        # one writer thread; concurrent writes share a transaction
        self._commit: GroupCommit[StoredEvent, bool] = GroupCommit(self._write)
        self.stages = stages or (lambda stage, seconds: None)
        self.capacity, self.window = capacity, window
        self._states: OrderedDict[str, UserState] = OrderedDict()
        self._lru = threading.Lock()  # guards the OrderedDict and the generation
        self._generation = 0  # counts `clear` calls: a rebuild started before one is not kept
        self._locks = [threading.RLock() for _ in range(LOCK_STRIPES)]

    @contextmanager
    def locked(self, users: Sequence[str]) -> Iterator[None]:
        """Hold the locks of ``users`` (in a fixed order, so two batches never deadlock)."""
        stripes = sorted({zlib.crc32(u.encode()) % LOCK_STRIPES for u in users})
        with ExitStack() as stack:
            for s in stripes:
                stack.enter_context(self._locks[s])
            yield

    def submit(self, events: Sequence[StoredEvent]) -> Future[list[bool]]:
        """Queue ``events`` for the writer: they are stored (one transaction, shared with
        concurrent writes), then applied to cached users; the future says whether each was
        new (see `EventStore.append`) once both are done."""
        return self._commit.submit(events)

    def append(self, events: Sequence[StoredEvent]) -> list[bool]:
        """`submit` and wait."""
        return self._commit.append(events)

    def close(self) -> None:
        """Write what is queued and stop the writer."""
        self._commit.close()

    def _write(self, events: Sequence[StoredEvent]) -> list[bool]:
        """Store and apply, under the users' locks: a reader sees all of it or none."""
        with self.locked([e.user for e in events]):
            start = time.perf_counter()
            new = self.store.append(events)
            stored = time.perf_counter()
            self.stages("store", stored - start)
            by_user: dict[str, list[Event]] = {}
            for e, fresh in zip(events, new, strict=True):
                if fresh:
                    by_user.setdefault(e.user, []).append(e.event)
            with self._lru:
                cached = {u: self._states.get(u) for u in by_user}
            for user, added in by_user.items():
                state = cached[user]
                if state is not None and self.follow:
                    state.extend(added, self.window)
            self.stages("state", time.perf_counter() - stored)
        return new

    def get(self, user: str) -> UserState:
        """The user's state, rebuilt from history and store when not cached."""
        with self._lru:
            state = self._states.get(user)
            if state is not None:
                self._states.move_to_end(user)
                return state
        with self.locked([user]):
            with self._lru:
                state = self._states.get(user)
                generation = self._generation
            if state is None:
                state = UserState([])
                stored = self.store.events_of(user, newest=self.window) if self.follow else []
                state.extend(self.history(user) + stored, self.window)
                self._put(user, state, generation)
            return state

    def _put(self, user: str, state: UserState, generation: int) -> UserState:
        """Keep ``state`` (unless a `clear` came since ``generation``); returns it."""
        with self._lru:
            if generation != self._generation:
                return state  # built from a model replaced meanwhile: answer, never keep it
            self._states[user] = state
            self._states.move_to_end(user)
            while len(self._states) > self.capacity:
                self._states.popitem(last=False)  # the least recently used user
        return state

    def drop(self, user: str) -> bool:
        """Forget the user's state (erasure); whether this process held one."""
        return self.drop_local(user)

    def drop_local(self, user: str) -> bool:
        """Forget the user's state cached in this process; whether there was one."""
        with self._lru:
            return self._states.pop(user, None) is not None

    def clear(self) -> None:
        """Forget every cached state (a new model: histories are rebuilt from it), including
        any being rebuilt from the old model right now."""
        with self._lru:
            self._states.clear()
            self._generation += 1

    def __contains__(self, user: object) -> bool:
        with self._lru:
            return user in self._states

    def __len__(self) -> int:
        return len(self._states)


__all__ = ["LiveUsers", "UserState"]

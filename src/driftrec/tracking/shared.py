"""Live users whose events live in Redis (`SharedState`), so that several replicas of the
service answer any user alike: an event accepted by one replica is in every replica's next
answer for that user.

A replica keeps its own LRU of user states as `LiveUsers` does, but only as a cache of what it
computed (query vectors, drift detectors): every read first asks Redis, in one round trip,
whether the copy it holds is current and gets the events appended since when not. A write
stores the events (the store's commit is the acknowledgement), then appends them to Redis;
the replica's own cache is left alone and catches up on its next read like any other's.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

import redis

from driftrec.data.events import Event
from driftrec.store import EventStore, StoredEvent
from driftrec.store.shared import Copy, Row, SharedState, row_key
from driftrec.store.stream import EventStream
from driftrec.tracking.live import LiveUsers, UserState

log = logging.getLogger("driftrec.tracking")
FILL_ATTEMPTS = 5  # builds refused (events kept arriving) before the store's copy is served


@dataclass
class SharedUserState(UserState):
    """A `UserState` with what Redis said of the copy it was built from."""

    epoch: str | None = None
    n: int = 0  # events Redis had counted for the user when this copy was current
    # keys of the stored events held, oldest first (a dict keeps their order)
    keys: dict[str, None] = field(default_factory=dict)

    def add(self, rows: Sequence[Row], n: int, window: int) -> None:
        """Add the rows not held yet (a build and an append can both carry one)."""
        fresh = []
        for key, e in rows:
            if key not in self.keys:
                self.keys[key] = None
                fresh.append(e)
        if fresh:
            self.extend(fresh, window)
            if len(self.keys) > 2 * window:  # the repeats worth catching are the newest
                self.keys = dict.fromkeys(list(self.keys)[-window:])
        self.n = max(self.n, n)


class SharedUsers(LiveUsers):
    """`LiveUsers` over a `SharedState` (the window is the shared one's)."""

    def __init__(
        self,
        store: EventStore,
        shared: SharedState,
        history: Callable[[str], list[Event]],
        capacity: int = 100_000,
        stages: Callable[[str, float], None] | None = None,
        stream: EventStream | None = None,
    ) -> None:
        super().__init__(store, history, capacity, shared.window, stages)
        self.shared, self.stream = shared, stream
        self._stale: set[str] = set()  # users whose lists missed stored events
        self._repairing: threading.Thread | None = None

    def _write(self, events: Sequence[StoredEvent]) -> list[bool]:
        if self.stream is not None:
            return self._publish(events)
        start = time.perf_counter()
        ids = self.store.insert(events)
        stored = time.perf_counter()
        self.stages("store", stored - start)
        rows = [
            (e.user, row_key(i, e.event_id), e.event)
            for e, i in zip(events, ids, strict=True)
            if i is not None
        ]
        try:
            self.shared.append(rows)
        except redis.RedisError as err:
            # stored, so acknowledged: never raise (a retry would store them again); the
            # users' lists miss them until dropped, which a repair thread keeps trying
            log.error("events stored but not added to the shared state", exc_info=err)
            self._repair_later({user for user, _, _ in rows})
        self.stages("state", time.perf_counter() - stored)
        return [i is not None for i in ids]

    def _repair_later(self, users: set[str]) -> None:
        """Drop these users' lists (they missed stored events) as soon as Redis answers, so
        they are built again from the store: tried on a thread, backing off to 5 s."""
        with self._lru:
            self._stale |= users
            if self._repairing is not None and self._repairing.is_alive():
                return
            self._repairing = threading.Thread(target=self._repair, daemon=True)
            self._repairing.start()

    def _repair(self) -> None:
        pause = 0.05
        while True:
            with self._lru:
                stale, self._stale = self._stale, set()
                if not stale:
                    self._repairing = None
                    return
            try:
                self.shared.drop(sorted(stale))
            except redis.RedisError:
                with self._lru:
                    self._stale |= stale
                time.sleep(pause)
                pause = min(5.0, 2 * pause)

    def submit(self, events: Sequence[StoredEvent]) -> Future[list[bool]]:
        """As `LiveUsers.submit`; through a stream, events without an event_id get one first,
        so a write retried after a failure publishes them under the same ids."""
        if self.stream is not None:
            events = [
                e if e.event_id else replace(e, event_id=secrets.token_hex(16)) for e in events
            ]
        return super().submit(events)

    def _publish(self, events: Sequence[StoredEvent]) -> list[bool]:
        """Put the events in the stream and the users' live state at once (the stream's
        consumers store them); every event is taken as new (a retry is dropped when a consumer
        stores it). A user with no list in Redis gets one built first."""
        start = time.perf_counter()
        for _ in range(FILL_ATTEMPTS):
            missing = self.stream.publish(events, self.shared)  # type: ignore[union-attr]
            if not missing:
                self.stages("state", time.perf_counter() - start)
                return [True] * len(events)
            for user in missing:
                self.get(user)
        raise RuntimeError(f"no live state could be built for {len(missing)} users")

    def get(self, user: str) -> UserState:
        with self._lru:
            state = self._states.get(user)
            if state is not None:
                self._states.move_to_end(user)
        held = state if isinstance(state, SharedUserState) else None
        copy = (
            self.shared.read(user, held.epoch, held.n) if held else self.shared.read(user, None, 0)
        )
        if held is not None and copy.epoch == held.epoch and copy.rows is None:
            return held  # current: the one round trip of a read
        with self.locked([user]):
            with self._lru:
                generation = self._generation
            if copy.epoch is None:
                return self._build(user, copy.n, generation)
            if held is not None and copy.epoch == held.epoch and not copy.whole:
                held.add(copy.rows or [], copy.n, self.window)
                return held
            return self._put(user, self._state(user, copy), generation)

    def _state(self, user: str, copy: Copy) -> SharedUserState:
        state = SharedUserState([], epoch=copy.epoch)
        state.extend(self.history(user), self.window)
        state.add(copy.rows or [], copy.n, self.window)
        return state

    def _build(self, user: str, seen: int, generation: int) -> UserState:
        """Build the user's list from the store and put it in Redis; another replica's list
        is taken when it got there first."""
        for _ in range(FILL_ATTEMPTS):
            rows = self._stored(user)
            filled = self.shared.fill(user, seen, rows)
            if filled is not None:
                copy = filled if filled.rows is not None else Copy(filled.epoch, filled.n, rows)
                return self._put(user, self._state(user, copy), generation)
            again = self.shared.read(user, None, 0)  # events arrived: read again
            if again.epoch is not None:  # and another replica built the list meanwhile
                return self._put(user, self._state(user, again), generation)
            seen = again.n
        # events keep coming: answer from the store as read, keep nothing
        return self._state(user, Copy(None, 0, self._stored(user)))

    def _stored(self, user: str) -> list[Row]:
        return [
            (row_key(row_id, event_id), e)
            for row_id, event_id, e in self.store.rows_of(user, newest=self.window)
        ]

    def drop(self, user: str) -> bool:
        """Forget the user's cached state here and their list in Redis (erasure); through a
        stream, the erasure goes into it too (`EventStream.erase`)."""
        had = self.drop_local(user)
        if self.stream is not None:
            self.stream.erase(user, self.shared)
        else:
            self.shared.drop([user])
        return had


__all__ = ["SharedUserState", "SharedUsers"]

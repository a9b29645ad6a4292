"""Users' live events in Redis (store/shared.py, tracking/shared.py) on the real Redis server
(127.0.0.1:6379, which every machine, CI's included, runs) and the real stores: two
`SharedUsers` over one store and one Redis stand for two replicas."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import redis

from driftrec.data.events import Event
from driftrec.errors import InputError
from driftrec.store import EventStore, StoredEvent
from driftrec.store.changes import Changes
from driftrec.store.shared import SharedState, connect, row_key
from driftrec.tracking.shared import SharedUsers, SharedUserState

REDIS = "redis://127.0.0.1:6379/0"


def _history(user: str) -> list[Event]:
    return [Event("trained", 1)] if user.startswith("t") else []


def _replicas(
    store: EventStore, redis_prefix: str, window: int = 1_000
) -> tuple[SharedUsers, SharedUsers, SharedState]:
    shared = SharedState(connect(REDIS), window=window, prefix=redis_prefix)
    other = SharedState(connect(REDIS), window=window, prefix=redis_prefix)
    return SharedUsers(store, shared, _history), SharedUsers(store, other, _history), shared


SCRIPTING = ("evalsha", "eval", "script|exists", "script|load")


def _commands(client: redis.Redis) -> Counter[str]:
    """Scripting commands Redis has run, by name (INFO commandstats counts the commands a
    script runs too; these are what clients send)."""
    stats = client.info("commandstats")
    return Counter(
        {name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in SCRIPTING}
    )


def _ev(user: str, item: str, t: int, event_id: str | None = None) -> StoredEvent:
    return StoredEvent(user, Event(item, t), event_id)


def _rows(store: EventStore, user: str) -> list[tuple[str, Event]]:
    return [(row_key(i, eid), e) for i, eid, e in store.rows_of(user)]


def _items(users: SharedUsers, user: str) -> list[str | None]:
    return [e.item for e in users.get(user).events]


def test_an_event_written_through_one_replica_is_read_by_the_other(
    store: EventStore, redis_prefix: str
) -> None:
    a, b, _ = _replicas(store, redis_prefix)
    assert _items(b, "tu") == ["trained"]  # built from the history and the (empty) store
    assert a.append([_ev("tu", "x", 10), _ev("u2", "y", 11)]) == [True, True]
    assert _items(b, "tu") == ["trained", "x"]
    assert _items(b, "u2") == ["y"]
    b.append([_ev("tu", "z", 5)])  # out of time order: sorted in
    assert _items(a, "tu") == ["trained", "z", "x"]
    assert _items(b, "tu") == ["trained", "z", "x"]
    a.close(), b.close()


def test_a_copy_that_is_current_costs_one_round_trip_and_keeps_its_cache(
    store: EventStore, redis_prefix: str
) -> None:
    a, b, shared = _replicas(store, redis_prefix)
    a.append([_ev("u", "x", 1)])
    state = b.get("u")
    assert isinstance(state, SharedUserState)
    computed = state.running("n", len, lambda value, added: value + len(added))
    before = _commands(shared.redis)
    assert b.get("u") is state
    assert _commands(shared.redis) - before == Counter(evalsha=1)  # one command: one round trip
    a.append([_ev("u", "y", 2), _ev("u2", "z", 3)])
    assert _commands(shared.redis) - before == Counter(evalsha=2)  # two users' appends: one
    assert b.get("u") is state  # caught up in place: the running value advances
    assert state.running("n", len, lambda value, added: value + 100 * len(added)) == computed + 100
    a.close(), b.close()


def test_a_retried_event_is_applied_once(store: EventStore, redis_prefix: str) -> None:
    a, b, _ = _replicas(store, redis_prefix)
    b.get("u")
    assert a.append([_ev("u", "x", 1, "e1")]) == [True]
    assert b.append([_ev("u", "x", 1, "e1")]) == [False]
    assert _items(a, "u") == ["x"] and _items(b, "u") == ["x"]
    a.close(), b.close()


def test_a_build_racing_a_write_never_misses_it_nor_holds_it_twice(
    store: EventStore, redis_prefix: str
) -> None:
    """The three orders a build (read n, read the store, fill) and a write (store, append)
    can take on two replicas, done by hand."""
    a, b, shared = _replicas(store, redis_prefix)
    # 1. the write lands between the build's reads: the fill is refused, the build reads again
    seen = shared.read("u1", None, 0).n
    a.append([_ev("u1", "x", 1)])
    assert shared.fill("u1", seen, _rows(store, "u1")) is None
    assert _items(b, "u1") == ["x"]
    # 2. stored before the build read the store, appended after the fill: held once
    seen = shared.read("u2", None, 0).n
    (row,) = store.insert([_ev("u2", "y", 2)])
    assert shared.fill("u2", seen, _rows(store, "u2")) is not None
    shared.append([("u2", row_key(row, None), Event("y", 2))])
    assert _items(b, "u2") == ["y"]
    # 3. a replica holding a copy catches up after another built and appended
    assert _items(a, "u2") == ["y"]
    b.append([_ev("u2", "z", 3)])
    assert _items(a, "u2") == ["y", "z"]
    a.close(), b.close()


def test_the_window_and_a_copy_too_far_behind(store: EventStore, redis_prefix: str) -> None:
    a, b, _ = _replicas(store, redis_prefix, window=3)
    a.append([_ev("u", f"i{t}", t) for t in range(5)])
    assert _items(b, "u") == ["i2", "i3", "i4"]
    b.append([_ev("u", f"j{t}", 10 + t) for t in range(5)])  # more than the window since a read
    assert _items(b, "u") == ["j2", "j3", "j4"]
    assert _items(a, "u") == ["j2", "j3", "j4"]
    a.close(), b.close()


def test_an_erased_user_is_gone_from_every_replica_and_never_rebuilt_from_before(
    store: EventStore, redis_prefix: str
) -> None:
    a, b, shared = _replicas(store, redis_prefix)
    a.append([_ev("u", "x", 1)])
    assert _items(b, "u") == ["x"] and _items(a, "u") == ["x"]
    store.delete_user("u")
    assert a.drop("u") is True
    assert _items(b, "u") == []
    # a build from before an erasure is refused: "v" is stored with no list in Redis yet
    store.insert([_ev("v", "y", 2)])
    seen = shared.read("v", None, 0).n
    rows = _rows(store, "v")
    store.delete_user("v")
    assert a.drop("v") is False
    assert shared.fill("v", seen, rows) is None
    assert _items(b, "v") == []
    a.close(), b.close()


def test_a_wrong_state_url_is_a_one_line_error() -> None:
    with pytest.raises(InputError, match="state URL"):
        connect("http://127.0.0.1:6379")
    with pytest.raises(InputError, match="does not answer"):
        connect("redis://127.0.0.1:1/0")


def test_changes_reach_every_other_replica(redis_prefix: str) -> None:
    import threading

    mine, theirs = Changes(connect(REDIS), redis_prefix), Changes(connect(REDIS), redis_prefix)
    got: list[tuple[str, str | None]] = []
    done = threading.Event()

    def apply(change: object) -> None:
        got.append((change.kind, change.user))  # type: ignore[attr-defined]
        if len(got) == 2:
            done.set()

    theirs.follow(apply, lambda err: None)
    mine.follow(lambda change: got.append(("own", None)), lambda err: None)
    mine.publish("items", items=["i1"])
    mine.publish("erase", "u")
    assert done.wait(10)
    mine.close(), theirs.close()
    assert got == [("items", None), ("erase", "u")]  # and the publisher skipped its own


def test_events_stored_when_redis_fails_are_acknowledged_once_and_repaired(
    store: EventStore, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis fails after the store's commit (injected into one append): the write is still
    acknowledged (a retry would store the events twice), and the user's list is dropped once
    Redis answers again, so every replica rebuilds it with the event."""
    a, b, _ = _replicas(store, redis_prefix)
    a.append([_ev("u", "x", 1)])
    assert _items(b, "u") == ["x"]

    def down(rows: object) -> None:
        raise redis.ConnectionError("injected: Redis unreachable")

    monkeypatch.setattr(a.shared, "append", down)
    monkeypatch.setattr(a.shared, "drop", down)  # still down when the repair first tries
    assert a.append([_ev("u", "y", 2)]) == [True]
    assert [e.item for e in store.events_of("u")] == ["x", "y"]  # stored once
    assert _items(b, "u") == ["x"]  # the list missed it...
    monkeypatch.undo()  # ...until Redis answers again and the repair drops it
    deadline = time.monotonic() + 10
    while _items(b, "u") != ["x", "y"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _items(b, "u") == ["x", "y"]
    a.close(), b.close()

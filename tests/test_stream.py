"""Ingest through the event stream (store/stream.py) on the real Redis and the real stores:
publishing with the live state, consumers that share partitions by leases, take over what a
stopped one left, and store each event once in each user's order."""

from __future__ import annotations

import time

import pytest

from driftrec.data.events import Event
from driftrec.errors import InputError
from driftrec.store import EventStore, StoredEvent
from driftrec.store.shared import SharedState, connect
from driftrec.store.stream import GROUP, RedisEventStream, StreamConsumer
from driftrec.tracking.shared import SharedUsers

REDIS = "redis://127.0.0.1:6379/0"


def _setup(
    store: EventStore, redis_prefix: str, partitions: int = 4
) -> tuple[SharedUsers, RedisEventStream]:
    stream = RedisEventStream(connect(REDIS), redis_prefix, partitions)
    shared = SharedState(connect(REDIS), prefix=redis_prefix)
    return SharedUsers(store, shared, lambda user: [], stream=stream), stream


def _ev(user: str, item: str, t: int, event_id: str | None = None) -> StoredEvent:
    return StoredEvent(user, Event(item, t), event_id)


def _drain(*consumers: StreamConsumer, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while consumers[0].lag() and time.monotonic() < deadline:
        for c in consumers:
            c.step(block=0.05)
    assert consumers[0].lag() == 0


def test_a_published_event_is_read_at_once_and_stored_once_by_a_consumer(
    store: EventStore, redis_prefix: str
) -> None:
    users, stream = _setup(store, redis_prefix)
    assert users.append([_ev("u", "x", 1, "e1"), _ev("u", "y", 2), _ev("v", "z", 3)]) == [True] * 3
    assert [e.item for e in users.get("u").events] == ["x", "y"]  # before any consumer ran
    assert store.count() == 0
    users.append([_ev("u", "x", 1, "e1")])  # a retry: in the stream twice, held once
    assert [e.item for e in users.get("u").events] == ["x", "y"]
    consumer = StreamConsumer(stream, store, "c1")
    _drain(consumer)
    assert sorted(e.item for e in store.events_of("u")) == ["x", "y"]
    assert store.count() == 3
    users.close(), consumer.close()


def test_an_erasure_takes_the_events_before_it_and_keeps_those_after(
    store: EventStore, redis_prefix: str
) -> None:
    users, stream = _setup(store, redis_prefix)
    users.append([_ev("u", "x", 1), _ev("u", "y", 2)])
    assert users.drop("u") is True  # the erasure: into the stream, and the list emptied
    assert [e.item for e in users.get("u").events] == []
    users.append([_ev("u", "z", 3)])
    consumer = StreamConsumer(stream, store, "c1")
    consumer.step(block=0.05)  # stores x and y, erases them, stores z: never rebuilt between
    _drain(consumer)
    assert [e.item for e in store.events_of("u")] == ["z"]
    assert [e.item for e in users.get("u").events] == ["z"]
    users.close(), consumer.close()


def test_a_stopped_consumers_partitions_and_pending_entries_are_taken_over(
    store: EventStore, redis_prefix: str
) -> None:
    """c1 reads every entry and stores half of them, then stops without acknowledging
    anything (a kill -9 between the store's commit and the acknowledgement); once its leases
    run out c2 takes its partitions, finishes its entries, and each event is stored once."""
    users, stream = _setup(store, redis_prefix)
    events = [_ev(f"u{n % 7}", f"i{n}", n, f"e{n}") for n in range(60)]
    users.append(events)
    c1 = StreamConsumer(stream, store, "c1", lease=0.5)
    c1.balance()
    assert c1.owned == set(range(4))
    read = c1.redis.xreadgroup(GROUP, "c1", {stream.key(p): ">" for p in range(4)}, count=1000)
    entries = [fields for _, got in read for _, fields in got]
    assert len(entries) == 60
    store.append([e for e in events[::2]])  # committed, never acknowledged
    c2 = StreamConsumer(stream, store, "c2", lease=0.5)
    assert c2.balance() == []  # c1's leases still hold
    time.sleep(0.6)
    claimed = 0
    deadline = time.monotonic() + 20
    while c2.lag() and time.monotonic() < deadline:
        claimed += c2.step(block=0.05).claimed
    assert claimed == 60 and c2.lag() == 0
    assert store.count() == 60
    for n in range(7):
        assert [e.item for e in store.events_of(f"u{n}")] == [
            e.event.item for e in events if e.user == f"u{n}"
        ]
    users.close(), c2.close()


def test_consumers_share_the_partitions_fairly(store: EventStore, redis_prefix: str) -> None:
    _, stream = _setup(store, redis_prefix, partitions=8)
    a, b = StreamConsumer(stream, store, "a"), StreamConsumer(stream, store, "b")
    a.balance()
    b.balance()  # b sees two members, takes what is free: nothing yet
    a.balance()  # a gives back above its share of 4
    b.balance()
    assert len(a.owned) == 4 and len(b.owned) == 4 and not a.owned & b.owned
    a.close()
    b.balance()
    assert len(b.owned) == 8
    b.close()


def test_a_stream_created_with_other_partitions_is_refused(redis_prefix: str) -> None:
    RedisEventStream(connect(REDIS), redis_prefix, 4)
    with pytest.raises(InputError, match="created with 4"):
        RedisEventStream(connect(REDIS), redis_prefix, 8)

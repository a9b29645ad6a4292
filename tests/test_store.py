"""The event store, against the embedded SQLite file and the real PostgreSQL server alike.

PostgreSQL is the server on 127.0.0.1:5432 (trust auth, database `test`) that every machine,
CI's included, runs; each test gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from driftrec.data.events import Event
from driftrec.errors import InputError
from driftrec.store import CatalogItem, EventStore, StoredEvent
from driftrec.store.group import GroupCommit, WriteBehind


def test_events_come_back_in_time_order_with_every_field(store: EventStore) -> None:
    events = [
        StoredEvent("u1", Event("i2", 200, "click", 1.0)),
        StoredEvent("u1", Event(None, 100, "search", 1.0, text="jazz records")),
        StoredEvent("u2", Event("i1", 50, "rating", 4.5)),
        StoredEvent("u1", Event("i3", 200, "purchase", 2.0)),  # same time as i2, stored after
    ]
    assert sum(store.append(events)) == 4
    assert store.events_of("u1") == [
        Event(None, 100, "search", 1.0, "jazz records"),
        Event("i2", 200, "click", 1.0),
        Event("i3", 200, "purchase", 2.0),
    ]
    assert store.events_of("nobody") == [] and store.count() == 4


def test_a_batch_is_stored_whole_or_not_at_all(store: EventStore) -> None:
    good = StoredEvent("u1", Event("i1", 1))
    broken = StoredEvent(None, Event("i2", 2))  # type: ignore[arg-type]  # no user: refused
    with pytest.raises(sa.exc.IntegrityError):
        store.append([good, broken])
    assert store.count() == 0


def test_a_retried_event_id_is_stored_once(store: EventStore) -> None:
    first = [StoredEvent("u1", Event("i1", 1), "e-1"), StoredEvent("u1", Event("i2", 2), "e-2")]
    assert sum(store.append(first)) == 2
    assert sum(store.append([*first, StoredEvent("u1", Event("i3", 3), "e-3")])) == 1
    assert sum(store.append([StoredEvent("u2", Event("i1", 1), "e-1")])) == 1  # ids are per user
    assert sum(store.append([StoredEvent("u1", Event("i9", 9))] * 2)) == 2  # no id: both kept
    assert store.count() == 6


def test_concurrent_clients_with_retries_store_every_event_exactly_once(store: EventStore) -> None:
    """8 clients post overlapping users, each sending every batch twice (a retry)."""

    def client(c: int) -> int:
        stored = 0
        for b in range(10):
            batch = [
                StoredEvent(f"u{(c + j) % 5}", Event(f"i{j}", b * 10 + j), f"c{c}-b{b}-{j}")
                for j in range(5)
            ]
            stored += sum(store.append(batch)) + sum(store.append(batch))
        return stored

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(client, range(8))) == 8 * 10 * 5
    assert store.count() == 8 * 10 * 5


def test_deleting_a_user_erases_all_their_events_and_nothing_else(store: EventStore) -> None:
    store.append([StoredEvent("u1", Event(f"i{j}", j)) for j in range(3)])
    store.append([StoredEvent("u2", Event("i1", 1))])
    assert store.delete_user("u1") == 3 and store.delete_user("u1") == 0
    assert store.events_of("u1") == [] and store.count() == 1


@pytest.mark.parametrize("url", ["not a url", "mysql+pymysql://u@127.0.0.1/db", "nosuch://x"])
def test_a_database_url_driftrec_cannot_use_is_named(url: str) -> None:
    with pytest.raises(InputError, match="database URL"):
        EventStore(url)


def test_append_says_which_events_were_new(store: EventStore) -> None:
    sent = StoredEvent("u1", Event("i1", 1), "e-1")
    assert store.append([sent, sent, StoredEvent("u1", Event("i2", 2))]) == [True, False, True]
    assert store.append([sent]) == [False]


def test_catalog_items_are_added_updated_and_read_back_in_order(store: EventStore) -> None:
    assert store.put_items([CatalogItem("b", "B", "about b", ("x",)), CatalogItem("a")]) == [
        "b",
        "a",
    ]
    assert store.put_items([CatalogItem("a", "A", "now with text", ("y", "z"))]) == []
    assert store.items() == [
        CatalogItem("b", "B", "about b", ("x",)),
        CatalogItem("a", "A", "now with text", ("y", "z")),
    ]


def test_group_commit_shares_transactions_and_keeps_each_callers_answer(
    store: EventStore,
) -> None:
    group: GroupCommit[StoredEvent, bool] = GroupCommit(store.append)

    def client(c: int) -> list[bool]:
        answers = []
        for b in range(20):
            sent = StoredEvent(f"u{c % 3}", Event(f"i{b}", b), f"c{c}-{b}")
            answers += group.append([sent]) + group.append([sent])  # and its retry
        return answers

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(client, range(8)))
    assert all(r == [True, False] * 20 for r in results)
    assert store.count() == 8 * 20


def test_a_failing_caller_does_not_fail_the_others_in_its_group(store: EventStore) -> None:
    group: GroupCommit[StoredEvent, bool] = GroupCommit(store.append)
    good = [StoredEvent("u1", Event("i1", 1))]
    broken = [StoredEvent(None, Event("i2", 2))]  # type: ignore[arg-type]

    def send(events: list[StoredEvent]) -> object:
        try:
            return group.append(events)
        except sa.exc.IntegrityError as err:
            return err

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(send, [good, broken] * 10))
    assert results[::2] == [[True]] * 10
    assert all(isinstance(r, sa.exc.IntegrityError) for r in results[1::2])
    assert store.count() == 10


def test_only_the_newest_events_are_read_when_asked(store: EventStore) -> None:
    store.append([StoredEvent("u1", Event(f"i{j}", j % 3)) for j in range(6)])
    assert [e.item for e in store.events_of("u1", newest=3)] == ["i4", "i2", "i5"]
    assert len(store.events_of("u1")) == 6


def test_closing_the_group_commit_writes_what_is_queued_then_refuses(store: EventStore) -> None:
    group: GroupCommit[StoredEvent, bool] = GroupCommit(store.append)
    futures = [group.submit([StoredEvent("u1", Event(f"i{j}", j))]) for j in range(50)]
    group.close()
    assert [f.result(timeout=0) for f in futures] == [[True]] * 50
    assert store.count() == 50
    with pytest.raises(RuntimeError, match="closed"):
        group.submit([StoredEvent("u1", Event("i1", 1))])


def test_a_write_cancelled_before_it_began_is_not_written(store: EventStore) -> None:
    gate = threading.Event()

    def slow(events: Sequence[StoredEvent]) -> list[bool]:
        gate.wait(10)
        return store.append(events)

    group: GroupCommit[StoredEvent, bool] = GroupCommit(slow)
    first = group.submit([StoredEvent("u1", Event("i1", 1))])  # holds the writer
    cancelled = group.submit([StoredEvent("u1", Event("i2", 2))])
    assert cancelled.cancel()
    gate.set()
    assert first.result(10) == [True]
    group.close()
    assert [e.item for e in store.events_of("u1")] == ["i1"]


def test_write_behind_batches_what_is_added_and_writes_it_all_on_close() -> None:
    written: list[list[int]] = []
    failures: list[Exception] = []
    behind = WriteBehind(lambda items: written.append(list(items)), failures.append, 60.0)
    behind.add([1, 2])
    behind.add([3])
    assert written == []  # nothing before the interval, a flush or close
    behind.flush()
    assert written == [[1, 2, 3]]
    behind.add([4])
    behind.close()
    assert written == [[1, 2, 3], [4]] and failures == []
    with pytest.raises(RuntimeError):
        behind.add([5])
    broken = WriteBehind(lambda items: 1 / 0, failures.append, 60.0)
    broken.add([1])
    broken.close()  # a failed write is reported, not raised
    assert len(failures) == 1 and isinstance(failures[0], ZeroDivisionError)

"""Preprocessing of raw frames: deduplication, k-core, pseudonymisation and `prepare`."""

from __future__ import annotations

import pandas as pd
import pytest

from driftrec.data.preprocess import deduplicate, k_core, prepare, pseudonymise
from driftrec.data.report import ImportReport


def frame(rows: list[tuple]) -> pd.DataFrame:
    """Raw events from (user, item, timestamp[, event[, text]]) tuples."""
    full = [(*r, *("view", None)[len(r) - 3 :]) for r in rows]
    events = pd.DataFrame(full, columns=["user", "item", "timestamp", "event", "text"])
    events["value"] = 1.0
    return events.astype({"user": object, "item": object, "text": object})


def test_deduplicate_keeps_the_first_of_exact_repeats() -> None:
    events = frame(
        [
            ("u1", "a", 1),
            ("u1", "a", 1),  # repeat
            ("u1", "a", 1, "purchase"),  # other event type: kept
            ("u1", "a", 2),  # other time: kept
            ("u2", None, 3, "search", "shoes"),
            ("u2", None, 3, "search", "boots"),  # other query in the same second: kept
            ("u2", None, 3, "search", "shoes"),  # repeat
            ("u1", "a", 1),  # repeat, later in the file
        ]
    )
    events["value"] = range(len(events))
    out, removed = deduplicate(events)
    assert removed == 3
    assert out["value"].tolist() == [0, 2, 3, 4, 5]  # first occurrences, original order


def test_k_core_iterates_to_a_fixed_point() -> None:
    # One pass is not enough: dropping u5 drops d, which leaves u4 with one item, which drops c,
    # which leaves u3 with one item. Only u1 and u2 on a and b survive.
    events = frame(
        [
            ("u1", "a", 1),
            ("u1", "b", 2),
            ("u1", None, 3, "search", "lamp"),  # text-only: kept with its user, not counted
            ("u2", "a", 1),
            ("u2", "b", 2),
            ("u3", "b", 1),
            ("u3", "c", 2),
            ("u4", "c", 1),
            ("u4", "d", 2),
            ("u5", "d", 1),
            ("u5", None, 2, "search", "desk"),
        ]
    )
    out, stats = k_core(events, min_user=2, min_item=2)
    assert sorted(set(out["user"])) == ["u1", "u2"]
    assert sorted(set(out["item"].dropna())) == ["a", "b"]
    assert out["text"].dropna().tolist() == ["lamp"]
    assert stats == {"passes": 4, "events_removed": 6, "users_removed": 3, "items_removed": 2}
    again, stats_again = k_core(out, min_user=2, min_item=2)
    assert len(again) == len(out) and stats_again["events_removed"] == 0


def test_k_core_default_keeps_search_only_users() -> None:
    events = frame([("u1", "a", 1), ("u2", None, 1, "search", "x")])
    out, stats = k_core(events)
    assert len(out) == 2 and stats["events_removed"] == 0


def test_pseudonymise_is_keyed_stable_and_hides_the_raw_id() -> None:
    events = frame([("alice@example.com", "a", 1), ("bob", "b", 2), ("alice@example.com", "c", 3)])
    users = pd.DataFrame({"user": ["alice@example.com", "bob"], "country": ["FR", "DE"]})
    first, first_users = pseudonymise(events, users, "s3cret")
    again, _ = pseudonymise(events, None, b"s3cret")
    other, _ = pseudonymise(events, None, "another")
    assert first["user"].tolist() == again["user"].tolist()
    assert first["user"].iloc[0] == first["user"].iloc[2] != first["user"].iloc[1]
    assert set(first["user"]).isdisjoint(other["user"])
    assert all(len(u) == 32 and int(u, 16) >= 0 for u in first["user"])
    assert not any(raw in p for raw in ("alice", "bob") for p in first["user"])
    assert first_users["user"].tolist() == first["user"].iloc[[0, 1]].tolist()
    assert events["user"].iloc[0] == "alice@example.com"  # the input is not modified
    with pytest.raises(ValueError, match="secret"):
        pseudonymise(events, None, "")


def test_prepare_records_what_each_step_removed() -> None:
    events = frame(
        [
            ("u1", "a", 1),
            ("u1", "a", 1),
            ("u1", "b", 2),
            ("u2", "a", 1),
            ("u2", "b", 2),
            ("u3", "z", 1),
        ]
    )
    items = pd.DataFrame({"item": ["a", "b", "z", "cold"], "title": ["A", "B", "Z", "C"]})
    report = ImportReport(source="log.csv", rows_read=7, rows_imported=6)
    report.add_bad("log.csv", 5, "user", "missing_user", ",x,1")
    dataset = prepare(
        events,
        items,
        name="shop",
        min_user=2,
        min_item=2,
        secret="k",
        report=report,
        info={"source": "log.csv"},
    )
    steps = dataset.info["preprocessing"]
    assert steps["events_in"] == 6 and steps["duplicates_removed"] == 1
    assert steps["k_core"]["events_removed"] == 1 and steps["k_core"]["users_removed"] == 1
    assert steps["k_core"]["catalog_items_removed"] == 1  # z; "cold" never had events and stays
    assert steps["pseudonymised"] is True and steps["events_out"] == 4
    assert dataset.info["import_report"]["skipped"] == {"missing_user": 1}
    assert dataset.info["source"] == "log.csv"
    assert sorted(dataset.item_ids) == ["a", "b", "cold"]
    assert dataset.n_users == 2 and "u1" not in set(dataset.user_ids)

"""Dataset.from_frames, its views and its on-disk round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftrec.data.dataset import DEFAULT_EVENT_TYPES, NO_ITEM, Dataset


def _events(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


def _small() -> Dataset:
    """Users u1, u2, u3; catalog a, b, c (c never consumed); one text-only search by u1.

    Source rows (user, item, ts, event, value, text):
      0: u2  b     5  view    1    -
      1: u1  -     2  search  1    "q"
      2: u1  a     2  review  4.5  "great"
      3: u3  a     1  click   1    -
      4: u1  b     1  view    1    -
    """
    events = _events(
        user=["u2", "u1", "u1", "u3", "u1"],
        item=["b", None, "a", "a", "b"],
        timestamp=[5, 2, 2, 1, 1],
        event=["view", "search", "review", "click", "view"],
        value=[1.0, 1.0, 4.5, 1.0, 1.0],
        text=[None, "q", "great", None, None],
    )
    items = pd.DataFrame(
        {
            "item": ["a", "b", "c"],
            "title": ["A", "B", None],
            "categories": ["x|y", ["z"], None],
            "tags": [None, "fun|old", ["new"]],
        }
    )
    users = pd.DataFrame({"user": ["u1", "u2", "zz"], "age": [30, 40, 50]})
    return Dataset.from_frames(events, items, name="small", info={"source": "hand"}, users=users)


# ---------------------------------------------------------------------- id maps


def test_numeric_ids_are_sorted_numerically() -> None:
    ds = Dataset.from_frames(
        _events(user=[10, 2, 1, 2], item=[100, 9, 20, 9], timestamp=[0, 0, 0, 1])
    )
    np.testing.assert_array_equal(ds.user_ids, ["1", "2", "10"])
    np.testing.assert_array_equal(ds.item_ids, ["9", "20", "100"])
    # user "10" -> 2, item "100" -> 2
    row = ds.events[ds.events["user"] == 2]
    np.testing.assert_array_equal(row["item"], [2])
    assert ds.user_ids.dtype == object and ds.item_ids.dtype == object


def test_negative_numeric_ids_sorted_numerically() -> None:
    ds = Dataset.from_frames(_events(user=["-3", "12", "4"], item=["x"] * 3, timestamp=[0, 0, 0]))
    np.testing.assert_array_equal(ds.user_ids, ["-3", "4", "12"])


def test_non_numeric_ids_sorted_as_strings() -> None:
    ds = Dataset.from_frames(
        _events(user=["b", "10", "9", "a"], item=["i2", "i10", "i1", "i2"], timestamp=[0] * 4)
    )
    # Not all integers -> plain string order ("10" < "9" < "a" < "b").
    np.testing.assert_array_equal(ds.user_ids, ["10", "9", "a", "b"])
    np.testing.assert_array_equal(ds.item_ids, ["i1", "i10", "i2"])


def test_id_maps_do_not_depend_on_event_order() -> None:
    events = _events(user=["3", "1", "2"], item=["z", "x", "y"], timestamp=[1, 2, 3])
    a = Dataset.from_frames(events)
    b = Dataset.from_frames(events.iloc[::-1].reset_index(drop=True))
    np.testing.assert_array_equal(a.user_ids, b.user_ids)
    np.testing.assert_array_equal(a.item_ids, b.item_ids)
    pd.testing.assert_frame_equal(a.events, b.events)


def test_catalog_items_without_events_are_kept() -> None:
    ds = _small()
    np.testing.assert_array_equal(ds.item_ids, ["a", "b", "c"])
    assert ds.n_items == 3
    assert ds.items["title"].tolist() == ["A", "B", ""]
    assert ds.items["text"].tolist() == ["", "", ""]
    assert ds.items["categories"].tolist() == [["x", "y"], ["z"], []]
    np.testing.assert_array_equal(ds.item_counts(), [2, 2, 0])
    np.testing.assert_array_equal(ds.interactions().toarray()[:, 2], [0, 0, 0])


def test_event_items_missing_from_catalog_are_added() -> None:
    ds = Dataset.from_frames(
        _events(user=["u"], item=["new"], timestamp=[0]),
        items=pd.DataFrame({"item": ["old"], "title": ["Old"]}),
    )
    np.testing.assert_array_equal(ds.item_ids, ["new", "old"])
    assert ds.items["title"].tolist() == ["", "Old"]


# ---------------------------------------------------------------------- events table


def test_events_time_ordered_per_user_with_stable_ties() -> None:
    ds = _small()
    ev = ds.events
    # u1 (index 0): b@1, then the two events at ts=2 in source order (search row 1, review row 2)
    # u2 (index 1): b@5;  u3 (index 2): a@1
    assert ev["user"].tolist() == [0, 0, 0, 1, 2]
    assert ev["timestamp"].tolist() == [1, 2, 2, 5, 1]
    assert ev["item"].tolist() == [1, NO_ITEM, 0, 1, 0]
    assert ev["text"].tolist() == [None, "q", "great", None, None]
    names = [ds.event_types[c] for c in ev["event"]]
    assert names == ["view", "search", "review", "view", "click"]
    np.testing.assert_allclose(ev["value"], [1, 1, 4.5, 1, 1])
    assert ev["user"].dtype == np.int32
    assert ev["item"].dtype == np.int32
    assert ev["timestamp"].dtype == np.int64
    assert ev["event"].dtype == np.int8
    assert ev["value"].dtype == np.float32


def test_ties_keep_source_order_over_many_equal_timestamps() -> None:
    items = [f"i{j}" for j in (5, 3, 9, 1, 7, 2, 8)]
    ds = Dataset.from_frames(_events(user=["u"] * 7, item=items, timestamp=[0] * 7))
    assert ds.item_ids[ds.events["item"].to_numpy()].tolist() == items


def test_defaults_for_missing_optional_columns() -> None:
    ds = Dataset.from_frames(_events(user=["u"], item=["i"], timestamp=[3]))
    assert ds.event_types == DEFAULT_EVENT_TYPES
    assert ds.events["event"].tolist() == [DEFAULT_EVENT_TYPES.index("interaction")]
    assert ds.events["value"].tolist() == [1.0]
    assert ds.events["text"].tolist() == [None]
    assert ds.name == "dataset"
    assert ds.info == {}
    assert ds.users.shape == (1, 0)


def test_unknown_event_names_are_appended_to_event_types() -> None:
    ds = Dataset.from_frames(
        _events(
            user=["u", "u", "u"],
            item=["i", "j", "k"],
            timestamp=[0, 1, 2],
            event=["like", "view", "share"],
        )
    )
    assert ds.event_types == (*DEFAULT_EVENT_TYPES, "like", "share")
    codes = ds.events["event"].tolist()
    assert codes == [len(DEFAULT_EVENT_TYPES), 1, len(DEFAULT_EVENT_TYPES) + 1]


def test_missing_required_column_raises() -> None:
    with pytest.raises(ValueError, match="timestamp"):
        Dataset.from_frames(_events(user=["u"], item=["i"]))


def test_text_only_event_needs_text() -> None:
    ok = Dataset.from_frames(
        _events(user=["u", "u"], item=["i", None], timestamp=[0, 1], text=[None, "shoes"])
    )
    assert ok.n_events == 2 and ok.n_items == 1
    assert ok.events["item"].tolist() == [0, NO_ITEM]
    with pytest.raises(ValueError, match="must carry text"):
        Dataset.from_frames(_events(user=["u", "u"], item=["i", None], timestamp=[0, 1]))
    with pytest.raises(ValueError, match="must carry text"):
        # An empty string is no text either.
        Dataset.from_frames(
            _events(user=["u", "u"], item=["i", None], timestamp=[0, 1], text=["x", ""])
        )


def test_empty_text_becomes_none() -> None:
    ds = Dataset.from_frames(
        _events(user=["u", "u"], item=["i", "j"], timestamp=[0, 1], text=["", np.nan])
    )
    assert ds.events["text"].tolist() == [None, None]


def test_numeric_item_ids_with_text_only_events() -> None:
    events = _events(
        user=[1, 1, 2], item=[3, None, 10], timestamp=[1, 2, 3], text=[None, "q", None]
    )
    ds = Dataset.from_frames(events, items=pd.DataFrame({"item": [2, 3, 10]}))
    np.testing.assert_array_equal(ds.item_ids, ["2", "3", "10"])


# ---------------------------------------------------------------------- users table


def test_user_attributes_follow_user_index() -> None:
    ds = _small()
    assert list(ds.users.columns) == ["age"]
    # u1 -> 30, u2 -> 40, u3 has no row (None); "zz" has no events and is dropped.
    assert ds.users["age"].tolist() == [30, 40, None]
    assert ds.n_users == 3


# ---------------------------------------------------------------------- views


def test_item_events_exclude_text_only() -> None:
    ev = _small().item_events()
    assert len(ev) == 4
    assert (ev["item"] != NO_ITEM).all()


def test_histories_all_users_and_selected() -> None:
    ds = _small()
    h = ds.histories()
    np.testing.assert_array_equal(h.indptr, [0, 2, 3, 4])
    np.testing.assert_array_equal(h.items, [1, 0, 1, 0])  # u1: b, a ; u2: b ; u3: a
    np.testing.assert_array_equal(h.timestamps, [1, 2, 5, 1])
    np.testing.assert_allclose(h.values, [1, 4.5, 1, 1])
    np.testing.assert_array_equal(h.users, [0, 1, 2])
    sub = ds.histories(np.array([2, 0]))
    np.testing.assert_array_equal(sub.users, [2, 0])
    np.testing.assert_array_equal(sub.items, [0, 1, 0])


def test_histories_user_without_item_events_has_empty_row() -> None:
    ds = Dataset.from_frames(
        _events(user=["a", "b"], item=["i", None], timestamp=[0, 0], text=[None, "hello"])
    )
    h = ds.histories()
    np.testing.assert_array_equal(h.lengths, [1, 0])


def test_interactions_binary_and_weighted() -> None:
    ds = Dataset.from_frames(
        _events(user=["u", "u", "v"], item=["i", "i", "j"], timestamp=[0, 1, 0], value=[2, 3, 5])
    )
    np.testing.assert_array_equal(ds.interactions().toarray(), [[1, 0], [0, 1]])
    np.testing.assert_array_equal(ds.interactions(binary=False).toarray(), [[5, 0], [0, 5]])
    # item_counts counts distinct users, not events
    np.testing.assert_array_equal(ds.item_counts(), [1, 1])


def test_item_counts_distinct_users() -> None:
    ds = Dataset.from_frames(
        _events(user=["u", "u", "u", "v", "w"], item=["i", "i", "j", "i", "i"], timestamp=[0] * 5)
    )
    # i: 4 events by 3 users (u twice, v, w); j: 1 event by u
    np.testing.assert_array_equal(ds.item_counts(), [3, 1])
    assert ds.item_counts().dtype == np.int64


def test_user_and_item_index_lookup_and_errors() -> None:
    ds = _small()
    np.testing.assert_array_equal(ds.user_index(["u3", "u1"]), [2, 0])
    np.testing.assert_array_equal(ds.item_index(["c", "a"]), [2, 0])
    with pytest.raises(KeyError, match="unknown user id 'nope'"):
        ds.user_index(["u1", "nope", "other"])
    with pytest.raises(KeyError, match="unknown item id 'zz'"):
        ds.item_index(["zz"])


def test_summary_counts() -> None:
    s = _small().summary()
    assert s["users"] == 3 and s["items"] == 3
    assert s["events"] == 5 and s["item_events"] == 4 and s["text_only_events"] == 1
    assert s["density"] == pytest.approx(4 / 9)
    assert s["event_types"] == {"view": 2, "search": 1, "review": 1, "click": 1}


def test_with_events_keeps_maps_and_merges_info() -> None:
    ds = _small()
    part = ds.with_events(ds.events.iloc[3:], part="tail")
    assert part.n_events == 2
    assert part.events.index.tolist() == [0, 1]
    assert part.info == {"source": "hand", "part": "tail"}
    np.testing.assert_array_equal(part.item_ids, ds.item_ids)
    assert part.n_users == 3


# ---------------------------------------------------------------------- persistence


def test_save_load_round_trip(tmp_path: Path) -> None:
    ds = _small()
    out = ds.save(tmp_path / "ds")
    assert sorted(p.name for p in out.iterdir()) == [
        "events.parquet",
        "items.parquet",
        "manifest.json",
        "users.parquet",
    ]
    back = Dataset.load(out)
    pd.testing.assert_frame_equal(back.events, ds.events)
    assert back.events["text"].tolist() == [None, "q", "great", None, None]
    np.testing.assert_array_equal(back.user_ids, ds.user_ids)
    np.testing.assert_array_equal(back.item_ids, ds.item_ids)
    assert back.items["title"].tolist() == ["A", "B", ""]
    assert back.items["categories"].tolist() == [["x", "y"], ["z"], []]
    assert all(isinstance(c, list) for c in back.items["categories"])
    assert back.items["tags"].tolist() == [[], ["fun", "old"], ["new"]]
    assert back.event_types == ds.event_types
    assert back.name == "small"
    assert back.info == {"source": "hand"}
    ages = back.users["age"].tolist()
    assert ages[:2] == [30, 40] and pd.isna(ages[2])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["summary"]["text_only_events"] == 1
    # A loaded dataset behaves like the original.
    np.testing.assert_array_equal(back.interactions().toarray(), ds.interactions().toarray())


def test_load_rejects_non_dataset_and_wrong_version(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"manifest\.json"):
        Dataset.load(tmp_path)
    out = _small().save(tmp_path / "ds")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["format_version"] = 999
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="format_version 999"):
        Dataset.load(out)

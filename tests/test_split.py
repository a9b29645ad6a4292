"""leave_one_out and temporal_split on small hand-made logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftrec.data.dataset import NO_ITEM, Dataset
from driftrec.data.split import EvalSet, leave_one_out, temporal_split


def _loo_dataset() -> Dataset:
    """Item ids sort as i1 i2 i3 i4 p q x y z -> indices 0..8; users a b c d -> 0..3.

    a: i1@1 i2@2 "s1"@3 i3@4 "s2"@5 i4@6 "s3"@7   -> valid i3, test i4; s2, s3 must not leak
    b: x@1 y@5 z@5 (y before z in the source)      -> valid y, test z (tie kept in source order)
    c: p@1 q@2                                     -> too short for min_history=1 (needs 3)
    d: only the search "s4"                        -> no item events, not counted as too short
    """
    events = pd.DataFrame(
        {
            "user": ["a", "a", "a", "a", "a", "a", "a", "b", "b", "b", "c", "c", "d"],
            "item": ["i1", "i2", None, "i3", None, "i4", None, "x", "y", "z", "p", "q", None],
            "timestamp": [1, 2, 3, 4, 5, 6, 7, 1, 5, 5, 1, 2, 1],
            "text": [None, None, "s1", None, "s2", None, "s3", None, None, None, None, None, "s4"],
        }
    )
    return Dataset.from_frames(events)


def test_leave_one_out_targets() -> None:
    split = leave_one_out(_loo_dataset())
    assert split.protocol == "leave-one-out"
    assert len(split.valid) == len(split.test) == 2
    np.testing.assert_array_equal(split.valid.histories.users, [0, 1])
    np.testing.assert_array_equal(split.valid.target_indptr, [0, 1, 2])
    np.testing.assert_array_equal(split.valid.target_items, [2, 7])  # i3 for a, y for b
    np.testing.assert_array_equal(split.test.target_indptr, [0, 1, 2])
    np.testing.assert_array_equal(split.test.target_items, [3, 8])  # i4 for a, z for b
    np.testing.assert_array_equal(split.test.targets(1), [8])
    np.testing.assert_allclose(split.test.target_values, [1, 1])


def test_leave_one_out_histories() -> None:
    split = leave_one_out(_loo_dataset())
    valid_h, test_h = split.valid.histories, split.test.histories
    # Validation input: training history only.
    np.testing.assert_array_equal(valid_h.row(0), [0, 1])  # a: i1 i2
    np.testing.assert_array_equal(valid_h.row(1), [6])  # b: x
    # Test input: training history + the validation event, in time order.
    np.testing.assert_array_equal(test_h.row(0), [0, 1, 2])  # a: i1 i2 i3
    np.testing.assert_array_equal(test_h.row(1), [6, 7])  # b: x y
    np.testing.assert_array_equal(test_h.timestamps, [1, 2, 4, 1, 5])
    np.testing.assert_array_equal(test_h.users, [0, 1])


def test_leave_one_out_train_part_and_info() -> None:
    split = leave_one_out(_loo_dataset())
    train = split.train.events
    rows = list(zip(train["user"], train["item"], train["text"], strict=True))
    assert rows == [
        (0, 0, None),  # a: i1
        (0, 1, None),  # a: i2
        (0, NO_ITEM, "s1"),  # a: the search before the validation event stays
        (1, 6, None),  # b: x
        (2, 4, None),  # c: p (too short, kept whole)
        (2, 5, None),  # c: q
        (3, NO_ITEM, "s4"),  # d: text only, kept
    ]
    # Nothing at or after a's validation time (4) leaks into training.
    assert train.loc[train["user"] == 0, "timestamp"].max() < 4
    assert split.info == {
        "evaluated_users": 2,
        "users_too_short": 1,
        "train_events": 7,
        "held_out_text_events": 2,
    }
    # Same id maps as the source.
    np.testing.assert_array_equal(split.train.item_ids, _loo_dataset().item_ids)


def test_leave_one_out_ties_follow_source_order() -> None:
    def split_for(order: list[str]) -> tuple[int, int]:
        ds = Dataset.from_frames(
            pd.DataFrame({"user": ["u"] * 4, "item": ["a", *order], "timestamp": [0, 9, 9, 9]})
        )
        s = leave_one_out(ds)
        return int(s.valid.target_items[0]), int(s.test.target_items[0])

    # items a b c d -> 0 1 2 3; the last two source rows at the tied time are valid, test
    assert split_for(["b", "c", "d"]) == (2, 3)
    assert split_for(["d", "c", "b"]) == (2, 1)
    assert split_for(["c", "d", "b"]) == (3, 1)


def test_leave_one_out_min_history() -> None:
    split = leave_one_out(_loo_dataset(), min_history=2)
    # Only a has >= 4 item events; b (3) and c (2) are too short.
    np.testing.assert_array_equal(split.test.histories.users, [0])
    assert split.info["evaluated_users"] == 1
    assert split.info["users_too_short"] == 2
    # b is kept whole in training.
    train = split.train.events
    assert train.loc[train["user"] == 1, "item"].tolist() == [6, 7, 8]


def test_leave_one_out_nobody_evaluated() -> None:
    ds = Dataset.from_frames(
        pd.DataFrame({"user": ["u", "v"], "item": ["a", "b"], "timestamp": [0, 1]})
    )
    split = leave_one_out(ds)
    assert len(split.valid) == 0 and len(split.test) == 0
    assert split.info["users_too_short"] == 2
    assert split.train.n_events == 2


def test_evalset_take() -> None:
    split = leave_one_out(_loo_dataset())
    sub = split.test.take(np.array([1]))
    assert isinstance(sub, EvalSet)
    np.testing.assert_array_equal(sub.histories.users, [1])
    np.testing.assert_array_equal(sub.histories.row(0), [6, 7])
    np.testing.assert_array_equal(sub.target_indptr, [0, 1])
    np.testing.assert_array_equal(sub.target_items, [8])


# ---------------------------------------------------------------------- temporal


def _temporal_dataset() -> Dataset:
    """Ten events at times 0..9. With valid_fraction=0.2, test_fraction=0.3 the cuts are
    times[int(10 * 0.5)] = 5 and times[int(10 * 0.7)] = 7: train 0-4, valid 5-6, test 7-9.

    a: i0@0 i1@1 | i2@5 (valid) | i3@7 (test)
    b: i0@2 i1@3 i2@4 |          | i4@8 (test)
    c:                | i5@6 (valid, no history)
    d:                |          | i0@9 (test, no history)
    """
    events = pd.DataFrame(
        {
            "user": ["a", "a", "a", "a", "b", "b", "b", "b", "c", "d"],
            "item": ["i0", "i1", "i2", "i3", "i0", "i1", "i2", "i4", "i5", "i0"],
            "timestamp": [0, 1, 5, 7, 2, 3, 4, 8, 6, 9],
        }
    )
    return Dataset.from_frames(events)


def test_temporal_split_cut_points_and_info() -> None:
    split = temporal_split(_temporal_dataset(), valid_fraction=0.2, test_fraction=0.3)
    assert split.protocol == "temporal"
    assert split.info == {
        "valid_start": 5,
        "test_start": 7,
        "train_events": 5,
        "valid_users": 1,
        "test_users": 2,
        "valid_users_without_history": 1,
        "test_users_without_history": 1,
    }
    assert split.train.events["timestamp"].tolist() == [0, 1, 2, 3, 4]


def test_temporal_split_eval_sets() -> None:
    split = temporal_split(_temporal_dataset(), valid_fraction=0.2, test_fraction=0.3)
    # Validation: only a (c has no history before time 5).
    np.testing.assert_array_equal(split.valid.histories.users, [0])
    np.testing.assert_array_equal(split.valid.histories.row(0), [0, 1])
    np.testing.assert_array_equal(split.valid.target_items, [2])
    # Test: a and b; their histories include the validation part; d has none.
    np.testing.assert_array_equal(split.test.histories.users, [0, 1])
    np.testing.assert_array_equal(split.test.histories.row(0), [0, 1, 2])
    np.testing.assert_array_equal(split.test.histories.row(1), [0, 1, 2])
    np.testing.assert_array_equal(split.test.target_indptr, [0, 1, 2])
    np.testing.assert_array_equal(split.test.target_items, [3, 4])


def test_temporal_split_several_targets_per_user() -> None:
    ds = Dataset.from_frames(
        pd.DataFrame(
            {
                "user": ["u"] * 10,
                "item": [f"i{j}" for j in range(10)],
                "timestamp": list(range(10)),
            }
        )
    )
    split = temporal_split(ds, valid_fraction=0.2, test_fraction=0.3)
    np.testing.assert_array_equal(split.valid.target_items, [5, 6])
    np.testing.assert_array_equal(split.test.target_items, [7, 8, 9])
    np.testing.assert_array_equal(split.test.histories.row(0), [0, 1, 2, 3, 4, 5, 6])


def test_temporal_split_equal_times_stay_on_one_side() -> None:
    # 10 events, times [0,0,0,0,0,0,1,1,1,1]: the valid cut is times[int(10 * 0.6)] = 1 and the
    # test cut times[8] = 1, so every event at time 1 is a test event and validation is empty.
    ds = Dataset.from_frames(
        pd.DataFrame(
            {
                "user": ["u"] * 10,
                "item": [f"i{j}" for j in range(10)],
                "timestamp": [0] * 6 + [1] * 4,
            }
        )
    )
    split = temporal_split(ds, valid_fraction=0.2, test_fraction=0.2)
    assert split.info["valid_start"] == 1 and split.info["test_start"] == 1
    assert len(split.valid) == 0
    np.testing.assert_array_equal(split.test.target_items, [6, 7, 8, 9])


@pytest.mark.parametrize(("valid", "test"), [(0, 0.1), (0.1, 0), (0.5, 0.5), (1.2, 0.1)])
def test_temporal_split_rejects_bad_fractions(valid: float, test: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        temporal_split(_temporal_dataset(), valid_fraction=valid, test_fraction=test)


def test_temporal_split_cut_points_are_exact() -> None:
    # 100 events at times 0..99; 5% test -> times 95..99, the 5% before -> times 90..94.
    ds = Dataset.from_frames(
        pd.DataFrame(
            {
                "user": ["u"] * 100,
                "item": [f"i{j:03d}" for j in range(100)],
                "timestamp": range(100),
            }
        )
    )
    split = temporal_split(ds, valid_fraction=0.05, test_fraction=0.05)
    assert split.info["test_start"] == 95
    assert split.info["valid_start"] == 90
    assert split.info["train_events"] == 90

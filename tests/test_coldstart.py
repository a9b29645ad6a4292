"""Cold-start item evaluation: held-out items, the split around them and the cold/warm report."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from driftrec.data.dataset import Dataset
from driftrec.data.histories import Histories
from driftrec.data.split import EvalSet, leave_one_out
from driftrec.evaluation.coldstart import (
    ColdStartSplit,
    cold_item_split,
    cold_target_rows,
    evaluate_cold_start,
    hold_out_items,
    random_hit_rate,
)
from driftrec.models import create


def _random_dataset(n_users: int = 30, n_items: int = 40, per_user: int = 8) -> Dataset:
    """Each user touches ``per_user`` distinct random items; the catalog has two unused items."""
    rng = np.random.default_rng(7)
    rows = [
        (f"u{u:02d}", f"i{i:02d}", t)
        for u in range(n_users)
        for t, i in enumerate(rng.choice(n_items, per_user, replace=False))
    ]
    events = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    items = pd.DataFrame({"item": [f"i{j:02d}" for j in range(n_items + 2)]})
    return Dataset.from_frames(events, items)


def _tiny_loo() -> Dataset:
    """Items a..f -> 0..5, users u1..u5 -> 0..4; held out below: d (3).

    u1: a b c d      train a b, valid c, test d (cold); test input a b c
    u2: d a e        train d (-> empty), valid a, test e; test input d a -> a
    u3: e d f        train e, valid d (cold: row dropped), test f; test input e d -> e
    u4: b d          too short: stays in training, d removed
    u5: f e a b d    train f e a, valid b, test d (cold); test input f e a b
    """
    seqs = {
        "u1": "abcd",
        "u2": "dae",
        "u3": "edf",
        "u4": "bd",
        "u5": "feabd",
    }
    rows = [(u, item, t) for u, seq in seqs.items() for t, item in enumerate(seq)]
    return Dataset.from_frames(pd.DataFrame(rows, columns=["user", "item", "timestamp"]))


def _tiny_temporal() -> Dataset:
    """30 events at t = 0..29: validation is t 24-26, test t 27-29. Items a..f -> 0..5; d is cold.

    A: a b c @0-2, d @27, e @28   -> test row with a cold (d) and a warm (e) target
    B: b @3, d @24                -> validation row whose only target is cold: dropped
    C: c @4, d @25, a @26         -> validation row with d and a: only a is kept
    D: f @5, d @29                -> test row with only a cold target
    E: (a b c d e e) x 3 @6-23    -> filler: makes e the most popular item in training
    """
    rows = [("A", x, t) for x, t in zip("abc", range(3), strict=True)]
    rows += [("A", "d", 27), ("A", "e", 28), ("B", "b", 3), ("B", "d", 24)]
    rows += [("C", "c", 4), ("C", "d", 25), ("C", "a", 26), ("D", "f", 5), ("D", "d", 29)]
    rows += [("E", x, 6 + t) for t, x in enumerate("abcdee" * 3)]
    return Dataset.from_frames(pd.DataFrame(rows, columns=["user", "item", "timestamp"]))


def _fit_pop(cold: ColdStartSplit):
    return create("pop").fit(cold.split.train, valid=cold.split.valid)


# ---------------------------------------------------------------- the split


def test_share_and_determinism_by_seed() -> None:
    ds = _random_dataset()
    cold = cold_item_split(ds, share=0.1, seed=3)
    assert len(cold.cold_items) == round(0.1 * 40) == cold.info["cold_items"]  # 40 items used
    assert np.all(np.diff(cold.cold_items) > 0)  # sorted, distinct
    assert not np.isin(cold.cold_items, [40, 41]).any()  # items without events are never picked
    assert cold.info["share"] == 0.1 and cold.info["seed"] == 3
    np.testing.assert_array_equal(cold.cold_items, cold_item_split(ds, 0.1, seed=3).cold_items)
    assert not np.array_equal(cold.cold_items, cold_item_split(ds, 0.1, seed=4).cold_items)
    assert len(cold_item_split(ds, share=0.25).cold_items) == 10


def test_cold_items_never_reach_a_model() -> None:
    ds = _random_dataset()
    cold = cold_item_split(ds, share=0.2, seed=1)
    split = cold.split
    assert not np.isin(split.train.events["item"], cold.cold_items).any()
    assert not np.isin(split.valid.histories.items, cold.cold_items).any()
    assert not np.isin(split.test.histories.items, cold.cold_items).any()
    assert not np.isin(split.valid.target_items, cold.cold_items).any()
    base = leave_one_out(ds)
    removed = np.isin(base.train.events["item"], cold.cold_items).sum()
    assert cold.info["train_events_removed"] == removed > 0
    assert len(split.train.events) == len(base.train.events) - removed
    assert split.info["train_events"] == len(split.train.events)
    assert split.protocol == "leave-one-out+cold-items"


def test_catalog_and_test_targets_unchanged() -> None:
    ds = _random_dataset()
    cold = cold_item_split(ds, share=0.1, seed=0)
    train = cold.split.train
    assert train.n_items == ds.n_items == 42
    np.testing.assert_array_equal(train.item_ids, ds.item_ids)
    np.testing.assert_array_equal(train.user_ids, ds.user_ids)
    assert len(train.items) == ds.n_items
    base, test = leave_one_out(ds).test, cold.split.test
    np.testing.assert_array_equal(test.histories.users, base.histories.users)
    np.testing.assert_array_equal(test.target_indptr, base.target_indptr)
    np.testing.assert_array_equal(test.target_items, base.target_items)
    np.testing.assert_array_equal(test.target_values, base.target_values)
    # Test inputs are the normal ones less the cold items, in the same order.
    for i in range(len(test)):
        row = base.histories.row(i)
        np.testing.assert_array_equal(test.histories.row(i), row[~np.isin(row, cold.cold_items)])


def test_validation_rows_with_a_cold_target_dropped_and_counted() -> None:
    ds = _random_dataset()
    cold = cold_item_split(ds, share=0.2, seed=2)
    base = leave_one_out(ds).valid
    cold_rows = cold_target_rows(base, cold.cold_items)
    assert cold_rows.any()
    assert cold.info["valid_rows_dropped"] == cold_rows.sum() == cold.info["valid_targets_dropped"]
    valid = cold.split.valid
    assert len(valid) == len(base) - cold_rows.sum()
    np.testing.assert_array_equal(valid.histories.users, base.histories.users[~cold_rows])
    np.testing.assert_array_equal(valid.target_items, base.target_items[~cold_rows])


def test_tiny_leave_one_out_by_hand() -> None:
    cold = hold_out_items(_tiny_loo(), [3])
    split = cold.split
    train = split.train.histories()
    assert [train.row(u).tolist() for u in range(5)] == [[0, 1], [], [4], [1], [5, 4, 0]]
    np.testing.assert_array_equal(split.valid.histories.users, [0, 1, 4])  # u3 dropped
    np.testing.assert_array_equal(split.valid.target_items, [2, 0, 1])
    assert split.valid.histories.row(1).tolist() == []  # u2's only training event was d
    # Validation rows know it too (a model choosing how far to rank cold items must not count
    # an item the user already consumed as one that displaces the target).
    assert [split.valid.seen.row(i).tolist() for i in range(3)] == [[0, 1], [3], [5, 4, 0]]
    test = split.test
    np.testing.assert_array_equal(test.histories.users, [0, 1, 2, 4])
    np.testing.assert_array_equal(test.target_items, [3, 4, 5, 3])
    assert [test.histories.row(i).tolist() for i in range(4)] == [[0, 1, 2], [0], [4], [5, 4, 0, 1]]
    # What the users really saw, cold d included: not shown to models, still excluded.
    assert [cold.test_seen.row(i).tolist() for i in range(4)] == [
        [0, 1, 2],
        [3, 0],
        [4, 3],
        [5, 4, 0, 1],
    ]
    assert cold.info == {
        "cold_items": 1,
        "share": 1 / 6,
        "seed": None,
        "train_events_removed": 2,
        "users_with_empty_train_history": 1,
        "valid_rows_dropped": 1,
        "valid_targets_dropped": 1,
        "valid_history_events_removed": 1,
        "test_history_events_removed": 2,
        "test_rows": 4,
        "test_rows_cold": 2,
        "test_rows_warm": 2,
        "test_rows_mixed": 0,
    }


def test_bad_arguments() -> None:
    ds = _tiny_loo()
    for share in (0, 1, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="share"):
            cold_item_split(ds, share=share)
    with pytest.raises(ValueError, match="cold_items"):
        hold_out_items(ds, [6])
    with pytest.raises(ValueError, match="protocol"):
        cold_item_split(ds, share=0.5, protocol="random")


# ---------------------------------------------------------------- the report


def test_cold_and_warm_rows_partition_the_test_set() -> None:
    cold = cold_item_split(_random_dataset(), share=0.2, seed=5)
    test = cold.split.test
    is_cold = cold_target_rows(test, cold.cold_items)
    assert 0 < is_cold.sum() < len(test)
    report = evaluate_cold_start(_fit_pop(cold), cold, ks=(5,))
    assert report["rows"] == {"cold": is_cold.sum(), "warm": (~is_cold).sum(), "both": 0}
    assert report["rows"]["cold"] + report["rows"]["warm"] == len(test)
    assert report["rows"]["cold"] == cold.info["test_rows_cold"]
    assert report["rows"]["warm"] == cold.info["test_rows_warm"]


def test_pop_cannot_rank_cold_items() -> None:
    cold = cold_item_split(_random_dataset(), share=0.2, seed=5)
    model = _fit_pop(cold)
    assert np.all(model.counts_[cold.cold_items] == 0)  # cold items were never counted
    test, k = cold.split.test, 5
    rows = np.flatnonzero(cold_target_rows(test, cold.cold_items))
    # Every cold row has at least k unseen items Pop prefers to any cold item...
    for i in rows:
        unseen = np.setdiff1d(np.flatnonzero(model.counts_ > 0), test.histories.row(i))
        assert len(unseen) >= k
    # ...so none of them is hit, while warm rows get ordinary, finite figures.
    report = evaluate_cold_start(model, cold, ks=(k,))
    assert report["cold"]["HR@5"] == report["cold"]["NDCG@5"] == 0.0
    assert report["cold_hr_over_random@k"][5] == 0.0
    assert 0 < report["random_hr@k"][5] < 1
    assert all(math.isfinite(v) for v in report["warm"].values())
    assert report["warm"]["HR@5"] > 0
    assert report["notes"] == []


def test_tiny_report_by_hand() -> None:
    """Pop counts on training: a 2, b 2, c 0, d 0 (cold), e 2, f 1.

    Cold rows: u1 (seen a b c; candidates d e f) and u5 (seen f e a b; candidates c d).
    Warm rows: u2 (seen a, target e) and u3 (seen e, target f).
    """
    cold = hold_out_items(_tiny_loo(), [3])
    report = evaluate_cold_start(_fit_pop(cold), cold, ks=(1, 2))
    assert report["rows"] == {"cold": 2, "warm": 2, "both": 0}
    # u5 has only c and d left: d is second, a hit at k = 2 only.
    assert report["cold"]["HR@1"] == 0.0 and report["cold"]["HR@2"] == 0.5
    # u2's top 2 are b, e (b first by index): a hit at k = 2; u3's top 2 are a, b: a miss.
    assert report["warm"]["HR@1"] == 0.0 and report["warm"]["HR@2"] == 0.5
    # Random: u1 one target among 3 candidates, u5 among 2 -> min(1, k / m) averaged.
    assert report["random_hr@k"][1] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert report["random_hr@k"][2] == pytest.approx((2 / 3 + 1) / 2)
    assert report["cold_hr_over_random@k"] == {1: 0.0, 2: pytest.approx(0.5 / (5 / 6))}
    # Without excluding seen items every row has the whole catalog (6 items) as candidates.
    report = evaluate_cold_start(_fit_pop(cold), cold, ks=(2,), exclude_seen=False)
    assert report["random_hr@k"][2] == pytest.approx(2 / 6)


def test_random_hit_rate_formula() -> None:
    """10 items, k = 3: m candidates, t targets -> 1 - C(m - t, 3) / C(m, 3)."""
    histories = Histories.from_sequences([[1, 2], [], list(range(1, 9)), [], [7]], users=range(5))
    eval_set = EvalSet(
        histories,
        target_indptr=np.array([0, 1, 2, 3, 5, 7]),
        target_items=np.array([5, 0, 0, 0, 1, 7, 9], np.int32),
        target_values=np.ones(7, np.float32),
    )
    expected = [3 / 8, 3 / 10, 1.0, 1 - math.comb(8, 3) / math.comb(10, 3), 3 / 9]
    np.testing.assert_allclose(random_hit_rate(eval_set, 10, 3), expected)
    only_seen = EvalSet(histories.take([4]), np.array([0, 1]), np.array([7], np.int32), np.ones(1))
    assert np.isnan(random_hit_rate(only_seen, 10, 3)).all()  # no target left: skipped
    # The last row's seen target (7) is not counted, as the evaluator drops it.
    everything = [3 / 10, 3 / 10, 3 / 10, expected[3], 1 - math.comb(8, 3) / math.comb(10, 3)]
    np.testing.assert_allclose(random_hit_rate(eval_set, 10, 3, exclude_seen=False), everything)


def test_a_cold_target_the_user_already_consumed_is_skipped_and_counted() -> None:
    """u1 and u2 as in `_tiny_loo`, plus u6: d a d, whose test target d (cold) is a repeat: the
    model is shown only a, but d was seen, so the row has no target left and is skipped."""
    seqs = {"u1": "abcd", "u2": "dae", "u6": "dad"}
    rows = [(u, item, t) for u, seq in seqs.items() for t, item in enumerate(seq)]
    data = Dataset.from_frames(pd.DataFrame(rows, columns=["user", "item", "timestamp"]))
    d = int(np.flatnonzero(np.asarray(data.item_ids) == "d")[0])
    cold = hold_out_items(data, [d])
    report = evaluate_cold_start(_fit_pop(cold), cold, ks=(1,))
    assert report["rows"]["cold"] == 1 and report["rows_skipped"] == {"cold": 1, "warm": 0}
    # The random baseline averages over the same single row (u1: candidates d e, k = 1).
    assert report["random_hr@k"][1] == pytest.approx(1 / 2)


def test_no_cold_test_rows_gives_empty_cold_metrics() -> None:
    cold = hold_out_items(_tiny_loo(), [2])  # c is never a test target
    report = evaluate_cold_start(_fit_pop(cold), cold, ks=(2,))
    assert report["cold"] == {} and report["random_hr@k"] == {}
    assert report["rows"] == {"cold": 0, "warm": 4, "both": 0}
    assert report["notes"] == ["no test row has a cold target: its metrics are empty"]
    assert report["warm"]["HR@2"] >= 0


def test_temporal_rows_with_cold_and_warm_targets() -> None:
    cold = hold_out_items(_tiny_temporal(), [3], protocol="temporal")
    split = cold.split
    assert split.protocol == "temporal+cold-items"
    assert not (split.train.events["item"] == 3).any()
    # Validation: B's row (only d) is dropped, C keeps a but loses d.
    np.testing.assert_array_equal(split.valid.histories.users, [2])
    np.testing.assert_array_equal(split.valid.target_items, [0])
    assert cold.info["valid_rows_dropped"] == 1 and cold.info["valid_targets_dropped"] == 2
    # Test: A (d, e) and D (d) keep all their targets.
    np.testing.assert_array_equal(split.test.histories.users, [0, 3])
    assert sorted(split.test.targets(0).tolist()) == [3, 4]
    np.testing.assert_array_equal(cold_target_rows(split.test, cold.cold_items), [True, True])
    assert cold.info["test_rows_mixed"] == 1
    # Pop (e most popular) puts e first for A: a hit in the warm part, never in the cold one.
    report = evaluate_cold_start(_fit_pop(cold), cold, ks=(1,))
    assert report["rows"] == {"cold": 2, "warm": 1, "both": 1}
    assert report["cold"]["HR@1"] == 0.0
    assert report["warm"]["HR@1"] == 1.0
    # A: one cold target among d e f; D (seen f): among a b c d e.
    assert report["random_hr@k"][1] == pytest.approx((1 / 3 + 1 / 5) / 2)

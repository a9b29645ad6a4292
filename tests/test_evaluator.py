"""evaluate() with a fake model whose scores are fixed, so every figure is worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from driftrec.data.dataset import Dataset
from driftrec.data.histories import Histories
from driftrec.data.split import EvalSet, leave_one_out
from driftrec.evaluation.evaluator import category_matrix, evaluate
from driftrec.models.base import Recommender

LOG2_3 = math.log2(3)


class FixedScores(Recommender):
    """Returns row ``histories.users[i]`` of a fixed (n_users, n_items) matrix."""

    name = "fixed"

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = np.asarray(matrix, np.float32)
        self.calls = 0

    def _fit(self, dataset: Dataset, valid: object = None) -> None:
        pass

    def _state_items(self) -> int:
        return self.matrix.shape[1]

    def score(self, histories):
        self.calls += 1
        return self.matrix[histories.users].copy()


class FixedRatings(FixedScores):
    """Also predicts the same rating (3) for every target."""

    name = "fixed-ratings"

    def predict_ratings(self, histories, items):
        return np.full(len(items), 3.0, np.float32)


def _train() -> Dataset:
    """Items i0..i5 -> 0..5 (categories: i0, i1 = a; i3, i4 = b; others none).

    Training histories: u0 = [i0], u1 = [i1, i2], u2 = [i5, i1].
    Item popularity (distinct users): i0 1, i1 2, i2 1, i3 0, i4 0, i5 1; 3 users.
    """
    events = pd.DataFrame(
        {
            "user": ["u0", "u1", "u1", "u2", "u2"],
            "item": ["i0", "i1", "i2", "i5", "i1"],
            "timestamp": [0, 0, 1, 0, 1],
            "event": ["rating"] * 5,
            "value": [4.0, 3.0, 2.0, 5.0, 1.0],
        }
    )
    items = pd.DataFrame(
        {
            "item": [f"i{j}" for j in range(6)],
            "categories": ["a", "a", None, "b", "b", None],
        }
    )
    return Dataset.from_frames(events, items)


# Scores per user (items i0..i5):
#   u0: i0 is seen. Unmasked order i0 .9, i1 .8, i3 .5, i4 .3, i5 .2, i2 .1
#   u1: i1, i2 are seen. i0 and i4 tie at .5 -> the lower index (i0) goes first.
#   u2: i5 is its only high score.
SCORES = np.array(
    [
        [0.9, 0.8, 0.1, 0.5, 0.3, 0.2],
        [0.5, 0.9, 0.95, 0.1, 0.5, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
    ]
)


def _eval_set(train: Dataset) -> EvalSet:
    """Targets: u0 {i3}; u1 {i2 (already seen), i4}; u2 {i5 (already seen)}.

    Target values (ratings) 5, 3, 1, 3.
    """
    return EvalSet(
        histories=train.histories(),
        target_indptr=np.array([0, 1, 3, 4], np.int64),
        target_items=np.array([3, 2, 4, 5], np.int32),
        target_values=np.array([5.0, 3.0, 1.0, 3.0], np.float32),
    )


def _model(cls=FixedScores) -> FixedScores:
    return cls(SCORES).fit(_train())


def test_exclude_seen_figures_by_hand() -> None:
    train = _train()
    result = evaluate(_model(), _eval_set(train), train, ks=(1, 3))
    # After masking history items and dropping seen targets:
    #   u0 list @3 = [i1, i3, i4], target i3 at rank 2
    #   u1 list @3 = [i0, i4, i3] (tie i0/i4 -> i0 first), target i4 at rank 2
    #   u2 has no target left -> skipped
    r = result.metrics
    assert result.n_users == 2
    assert r["HR@1"] == 0.0
    assert r["HR@3"] == 1.0
    assert r["Recall@3"] == 1.0
    assert r["NDCG@1"] == 0.0
    assert r["NDCG@3"] == pytest.approx(1 / LOG2_3)  # 1 / log2(2 + 1) for both users
    assert r["MRR@3"] == pytest.approx(0.5)
    assert r["Precision@3"] == pytest.approx(1 / 3)
    assert r["F1@3"] == pytest.approx(0.5)  # 2 * (1/3) * 1 / (4/3)
    # Items listed @3: {1, 3, 4} | {0, 4, 3} = 4 of 6
    assert r["Coverage@3"] == pytest.approx(4 / 6)
    # @1: u0 -> i1, u1 -> i0
    assert r["Coverage@1"] == pytest.approx(2 / 6)
    # Novelty: -log2(p), p = users / 3 (0 counts as 1): i1 -> log2(3/2), others log2(3)
    #   u0 [i1, i3, i4] -> (log2(1.5) + 2 log2 3) / 3 = log2 3 - 1/3 ;  u1 [i0, i4, i3] -> log2 3
    assert r["Novelty@3"] == pytest.approx(LOG2_3 - 1 / 6)
    assert r["Novelty@1"] == pytest.approx((math.log2(1.5) + LOG2_3) / 2)
    # Diversity (jaccard on categories): both lists hold one 'a' item and the two 'b' items
    #   similarities 0, 0, 1 -> mean 1/3 -> diversity 2/3. A list of one item -> 0.
    assert r["Diversity@3"] == pytest.approx(2 / 3)
    assert r["Diversity@1"] == 0.0
    assert result.info["exclude_seen"] is True
    assert result.info["targets_already_seen"] == 2
    assert result.info["users_without_targets"] == 1
    assert "RMSE" not in r  # FixedScores predicts no ratings


def test_seen_overrides_what_is_excluded() -> None:
    """The model is shown u0 = [i0] but u0 also saw i1 (hidden from it, as cold-start does)."""
    train = _train()
    eval_set = _eval_set(train)
    seen = Histories.from_sequences([[0, 1], [1, 2], [5, 1]], users=[0, 1, 2])
    result = evaluate(_model(), eval_set, train, ks=(1,), seen=seen)
    # u0: i0 and i1 excluded -> top 1 = i3, its target; u1 as before: i0, a miss.
    assert result.metrics["HR@1"] == 0.5
    assert evaluate(_model(), eval_set, train, ks=(1,)).metrics["HR@1"] == 0.0
    with pytest.raises(ValueError, match="seen has 1 rows for 3 evaluation rows"):
        evaluate(_model(), eval_set, train, seen=seen.take([0]))


def test_metric_names_in_fixed_order() -> None:
    train = _train()
    result = evaluate(_model(), _eval_set(train), train, ks=(1, 3))
    expected = [
        f"{n}@{k}" for k in (1, 3) for n in ("HR", "Recall", "NDCG", "MRR", "Precision", "F1")
    ]
    expected += [f"{n}@{k}" for k in (1, 3) for n in ("Coverage", "Diversity", "Novelty")]
    assert list(result.metrics) == expected
    assert result.to_dict()["n_users"] == 2


def test_without_exclude_seen_figures_by_hand() -> None:
    train = _train()
    result = evaluate(_model(), _eval_set(train), train, ks=(3,), exclude_seen=False)
    # u0: [i0, i1, i3] -> target i3 at rank 3: NDCG 1/log2(4) = 0.5, MRR 1/3
    # u1: [i2, i1, i0] -> targets {i2, i4}: i2 at rank 1; ideal over min(2, 3) = 2 places
    #     NDCG = 1 / (1 + 1/log2 3), Recall 1/2, MRR 1
    # u2: [i5, i0, i1] -> target i5 at rank 1: NDCG 1, MRR 1
    r = result.metrics
    assert result.n_users == 3
    assert r["HR@3"] == 1.0
    assert r["NDCG@3"] == pytest.approx((0.5 + 1 / (1 + 1 / LOG2_3) + 1) / 3)
    assert r["MRR@3"] == pytest.approx((1 / 3 + 1 + 1) / 3)
    assert r["Recall@3"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert r["Precision@3"] == pytest.approx(1 / 3)
    assert result.info["targets_already_seen"] == 0
    assert result.info["users_without_targets"] == 0


def test_batching_does_not_change_results() -> None:
    train = _train()
    model = _model()
    whole = evaluate(model, _eval_set(train), train, ks=(1, 3))
    calls = model.calls
    one_by_one = evaluate(model, _eval_set(train), train, ks=(1, 3), batch_size=1)
    assert model.calls - calls == 3  # one score() call per row
    assert one_by_one.metrics == pytest.approx(whole.metrics)
    assert one_by_one.info["targets_already_seen"] == 2


def test_ties_broken_by_lower_item_index() -> None:
    train = _train()
    flat = FixedScores(np.zeros((3, 6))).fit(train)
    # All scores equal, no masking: every list is [i0, i1, i2, i3, ...].
    eval_set = EvalSet(
        histories=train.histories(),
        target_indptr=np.array([0, 1, 2, 3], np.int64),
        target_items=np.array([3, 2, 0], np.int32),
        target_values=np.ones(3, np.float32),
    )
    r = evaluate(flat, eval_set, train, ks=(3, 4), exclude_seen=False).metrics
    # u0: i3 at rank 4 ; u1: i2 at rank 3 ; u2: i0 at rank 1
    assert r["HR@3"] == pytest.approx(2 / 3)
    assert r["MRR@4"] == pytest.approx((1 / 4 + 1 / 3 + 1) / 3)
    assert r["NDCG@4"] == pytest.approx((1 / math.log2(5) + 1 / math.log2(4) + 1) / 3)
    assert r["Coverage@3"] == pytest.approx(3 / 6)


def test_masking_ties_with_exclude_seen() -> None:
    train = _train()
    flat = FixedScores(np.zeros((3, 6))).fit(train)
    eval_set = EvalSet(
        histories=train.histories(),
        target_indptr=np.array([0, 1, 2, 3], np.int64),
        target_items=np.array([3, 3, 3], np.int32),
        target_values=np.ones(3, np.float32),
    )
    r = evaluate(flat, eval_set, train, ks=(3,)).metrics
    # Seen items are pushed down; remaining items in index order:
    #   u0 (seen i0):     [i1, i2, i3] -> i3 at rank 3
    #   u1 (seen i1, i2): [i0, i3, i4] -> rank 2
    #   u2 (seen i5, i1): [i0, i2, i3] -> rank 3
    assert r["MRR@3"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 3) / 3)


def test_rating_metrics_for_rating_models() -> None:
    train = _train()
    result = evaluate(_model(FixedRatings), _eval_set(train), train, ks=(3,))
    # Predicted 3 for targets rated 5, 3, 1, 3 -> errors 2, 0, -2, 0
    #   RMSE = sqrt(8 / 4) = sqrt 2 ; MAE = 4 / 4 = 1
    assert result.metrics["RMSE"] == pytest.approx(math.sqrt(2))
    assert result.metrics["MAE"] == pytest.approx(1.0)
    assert list(result.metrics)[-2:] == ["RMSE", "MAE"]


def test_no_rating_metrics_without_rating_events() -> None:
    base = _train()
    train = base.with_events(base.events.assign(event=np.int8(0)))  # all "interaction"
    result = evaluate(FixedRatings(SCORES).fit(train), _eval_set(train), train, ks=(3,))
    assert "RMSE" not in result.metrics and "MAE" not in result.metrics


def test_item_features_override_and_cosine() -> None:
    train = _train()
    # One-hot vectors: every pair of distinct items is orthogonal -> diversity 1.
    result = evaluate(
        _model(),
        _eval_set(train),
        train,
        ks=(3,),
        item_features=np.eye(6),
        diversity_kind="cosine",
    )
    assert result.metrics["Diversity@3"] == pytest.approx(1.0)


def test_category_matrix() -> None:
    matrix = category_matrix(_train())
    np.testing.assert_array_equal(matrix, [[1, 0], [1, 0], [0, 0], [0, 1], [0, 1], [0, 0]])
    no_categories = Dataset.from_frames(
        pd.DataFrame({"user": ["u"], "item": ["i"], "timestamp": [0]})
    )
    assert category_matrix(no_categories) is None


def test_evaluate_on_leave_one_out_split() -> None:
    # u: a b c d (a..d -> 0..3), v: d c b a ; the fake model prefers higher item indices.
    events = pd.DataFrame(
        {
            "user": ["u"] * 4 + ["v"] * 4,
            "item": ["a", "b", "c", "d", "d", "c", "b", "a"],
            "timestamp": [0, 1, 2, 3] * 2,
        }
    )
    split = leave_one_out(Dataset.from_frames(events))
    model = FixedScores(np.tile([0.1, 0.2, 0.3, 0.4], (2, 1))).fit(split.train)
    result = evaluate(model, split.test, split.train, ks=(2,))
    # Test input u: a b c -> only d left, target d at rank 1.
    # Test input v: d c b -> only a left, target a at rank 1.
    assert result.metrics["HR@2"] == 1.0
    assert result.metrics["NDCG@2"] == 1.0
    # Masked items all score -inf and tie, so the lower index fills the second place:
    # lists [d, a] and [a, b] -> 3 of 4 items.
    assert result.metrics["Coverage@2"] == pytest.approx(0.75)


def test_standard_errors_of_the_per_user_means() -> None:
    """u0's target i3 moved to the top (rank 1), u1's i4 stays at rank 2: HR@1 is 1 and 0 over
    two users, sample sd sqrt(1/2), error 1/2; NDCG@3 is 1 and 1/log2(3): error half their gap.
    Both hit @3: no spread, no error. Catalog-wide metrics (coverage, novelty) get none."""
    train = _train()
    scores = SCORES.copy()
    scores[0, 3] = 0.85
    result = evaluate(FixedScores(scores).fit(train), _eval_set(train), train, ks=(1, 3))
    assert result.stderr["HR@1"] == pytest.approx(0.5)
    assert result.stderr["NDCG@3"] == pytest.approx((1 - 1 / LOG2_3) / 2)
    assert result.stderr["HR@3"] == 0.0
    assert "Coverage@3" not in result.stderr and "Novelty@3" not in result.stderr
    assert result.to_dict()["stderr"] == result.stderr

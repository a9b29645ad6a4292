"""Every metric against small examples worked out by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from driftrec.evaluation import metrics as m

# Three users, lists of length 5 (1 = the item at that rank is a target).
#   u0: one target, found at rank 3 (0-based 2)
#   u1: three targets, two found, at ranks 1 and 4 (0-based 0 and 3)
#   u2: two targets, none found
HITS = np.array(
    [
        [0, 0, 1, 0, 0],
        [1, 0, 0, 1, 0],
        [0, 0, 0, 0, 0],
    ],
    bool,
)
N_TARGETS = np.array([1, 3, 2])


def test_hit_rate() -> None:
    # @5: u0 yes, u1 yes, u2 no.  @2: only u1 (its hit at rank 1).
    np.testing.assert_array_equal(m.hit_rate(HITS, 5), [1, 1, 0])
    np.testing.assert_array_equal(m.hit_rate(HITS, 2), [0, 1, 0])
    np.testing.assert_array_equal(m.hit_rate(HITS, 3), [1, 1, 0])
    assert m.hit_rate(HITS, 5).dtype == np.float64


def test_recall() -> None:
    # @5: u0 1/1, u1 2/3, u2 0/2.   @2: u0 0, u1 1/3, u2 0.
    np.testing.assert_allclose(m.recall(HITS, N_TARGETS, 5), [1, 2 / 3, 0])
    np.testing.assert_allclose(m.recall(HITS, N_TARGETS, 2), [0, 1 / 3, 0])
    # No targets: divided by max(0, 1) = 1, no division by zero.
    np.testing.assert_allclose(m.recall(np.zeros((1, 3), bool), np.array([0]), 3), [0])


def test_precision() -> None:
    # @5: u0 1/5, u1 2/5, u2 0.   @1: u1's first item is a hit -> 1.
    np.testing.assert_allclose(m.precision(HITS, 5), [0.2, 0.4, 0])
    np.testing.assert_allclose(m.precision(HITS, 1), [0, 1, 0])


def test_f1() -> None:
    # u0 @5: p = 0.2, r = 1      -> 2 * 0.2 * 1 / 1.2 = 1/3
    # u1 @5: p = 0.4, r = 2/3    -> 2 * 0.4 * (2/3) / (0.4 + 2/3) = (8/15) / (16/15) = 1/2
    # u2: p = r = 0              -> 0 (not nan)
    np.testing.assert_allclose(m.f1(HITS, N_TARGETS, 5), [1 / 3, 0.5, 0])
    # u1 @2: p = 1/2, r = 1/3 -> 2 * (1/6) / (5/6) = 2/5
    np.testing.assert_allclose(m.f1(HITS, N_TARGETS, 2), [0, 0.4, 0])


def test_ndcg_single_target() -> None:
    # u0 @5: DCG = 1 / log2(3 + 1) = 1/2; ideal with min(1, 5) = 1 target = 1 / log2(2) = 1.
    assert m.ndcg(HITS[:1], N_TARGETS[:1], 5)[0] == pytest.approx(0.5)
    # Rank 3 is outside the top 2 -> 0.
    assert m.ndcg(HITS[:1], N_TARGETS[:1], 2)[0] == 0
    # One target at rank 1 -> 1; at rank 2 -> 1 / log2(3).
    one = np.array([[1, 0, 0], [0, 1, 0]], bool)
    np.testing.assert_allclose(m.ndcg(one, np.array([1, 1]), 3), [1, 1 / math.log2(3)])


def test_ndcg_multi_target_ideal_over_min_targets_k() -> None:
    # u1 @5: DCG = 1/log2(2) + 1/log2(5) = 1 + 0.430677 = 1.430677
    #        ideal with min(3, 5) = 3 hits = 1 + 1/log2(3) + 1/log2(4) = 1 + 0.630930 + 0.5
    #        = 2.130930 -> NDCG = 0.671386
    dcg = 1 + 1 / math.log2(5)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert dcg / ideal == pytest.approx(0.671386, abs=1e-6)
    # u1 @2: DCG = 1; ideal with min(3, 2) = 2 hits = 1 + 1/log2(3) = 1.630930 -> 0.613147
    np.testing.assert_allclose(m.ndcg(HITS, N_TARGETS, 5), [0.5, dcg / ideal, 0])
    np.testing.assert_allclose(m.ndcg(HITS, N_TARGETS, 2), [0, 1 / (1 + 1 / math.log2(3)), 0])
    np.testing.assert_allclose(m.ndcg(HITS, N_TARGETS, 2)[1], 0.613147, atol=1e-6)


def test_ndcg_perfect_list_is_one() -> None:
    # Two targets in the first two places: DCG equals the ideal DCG -> 1.
    hits = np.array([[1, 1, 0, 0]], bool)
    np.testing.assert_allclose(m.ndcg(hits, np.array([2]), 4), [1.0])
    # More targets than k and all k places hit: ideal is over k places -> also 1.
    np.testing.assert_allclose(m.ndcg(np.ones((1, 3), bool), np.array([10]), 3), [1.0])


def test_mrr() -> None:
    # u0: first hit at rank 3 -> 1/3; u1: rank 1 -> 1; u2: none -> 0.
    np.testing.assert_allclose(m.mrr(HITS, 5), [1 / 3, 1, 0])
    # @2: u0's hit is outside -> 0.
    np.testing.assert_allclose(m.mrr(HITS, 2), [0, 1, 0])
    # Only the first hit counts: hits at ranks 2 and 3 -> 1/2.
    np.testing.assert_allclose(m.mrr(np.array([[0, 1, 1]], bool), 3), [0.5])


def test_k_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        m.hit_rate(HITS, 0)
    with pytest.raises(ValueError, match="at least 1"):
        m.ndcg(HITS, N_TARGETS, 0)


def test_k_beyond_the_ranked_list_counts_the_missing_places_as_misses() -> None:
    """A catalog of fewer than k items ranks all of them; the list cannot be longer."""
    k = HITS.shape[1]
    np.testing.assert_allclose(m.hit_rate(HITS, k + 5), m.hit_rate(HITS, k))
    np.testing.assert_allclose(m.ndcg(HITS, N_TARGETS, k + 5), m.ndcg(HITS, N_TARGETS, k))
    np.testing.assert_allclose(m.precision(HITS, k + 5), m.precision(HITS, k) * k / (k + 5))


def test_coverage() -> None:
    # Items 0, 1, 2 appear in some list, out of 10 -> 0.3.
    assert m.coverage(np.array([[0, 1], [1, 2]]), 10) == pytest.approx(0.3)
    assert m.coverage(np.array([[3, 3], [3, 3]]), 4) == pytest.approx(0.25)


# Category indicators (columns A, B, C):
#   item 0 = {A, B}, item 1 = {B, C}, item 2 = {A}, item 3 = {} (no category)
CATEGORIES = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 0], [0, 0, 0]], np.float32)


def test_intra_list_diversity_jaccard_by_hand() -> None:
    # List [0, 1, 2]:
    #   J(0, 1) = |{B}| / |{A, B, C}| = 1/3
    #   J(0, 2) = |{A}| / |{A, B}|    = 1/2
    #   J(1, 2) = 0 / 3               = 0
    #   mean similarity = (1/3 + 1/2 + 0) / 3 = 5/18 -> diversity 13/18
    out = m.intra_list_diversity(np.array([[0, 1, 2]]), CATEGORIES, "jaccard")
    np.testing.assert_allclose(out, [13 / 18])


def test_intra_list_diversity_jaccard_edge_cases() -> None:
    lists = np.array(
        [
            [0, 0],  # the same item twice: similarity 1 -> diversity 0
            [3, 3],  # two items without categories count as dissimilar -> 1
            [2, 1],  # disjoint sets -> 1
            [0, 2],  # J = 1/2 -> 1/2
        ]
    )
    np.testing.assert_allclose(m.intra_list_diversity(lists, CATEGORIES), [0, 1, 1, 0.5])


def test_intra_list_diversity_cosine_by_hand() -> None:
    vectors = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0], [0.0, 0.0]])
    # List [0, 1, 2]:
    #   cos(0, 1) = 1 / sqrt(2);  cos(0, 2) = 0;  cos(1, 2) = 2 / (sqrt(2) * 2) = 1 / sqrt(2)
    #   mean similarity = (2 / sqrt(2)) / 3 = sqrt(2) / 3 = 0.471405 -> diversity 0.528595
    # List [0, 3]: a zero vector has similarity 0 with everything -> 1
    # List [1, 1]: identical direction -> 0
    out = m.intra_list_diversity(np.array([[0, 1, 2]]), vectors, "cosine")
    np.testing.assert_allclose(out, [1 - math.sqrt(2) / 3])
    np.testing.assert_allclose(out, [0.528595], atol=1e-6)
    np.testing.assert_allclose(
        m.intra_list_diversity(np.array([[0, 3], [1, 1]]), vectors, "cosine"), [1, 0], atol=1e-12
    )


def test_intra_list_diversity_short_lists_and_bad_kind() -> None:
    np.testing.assert_array_equal(m.intra_list_diversity(np.array([[0], [1]]), CATEGORIES), [0, 0])
    with pytest.raises(ValueError, match="kind"):
        m.intra_list_diversity(np.array([[0, 1]]), CATEGORIES, "euclid")


def test_novelty_by_hand() -> None:
    # 8 training users; item popularity (users) [4, 2, 1, 0]
    #   p = [4/8, 2/8, 1/8, 1/8 (never touched counts as once)]
    #   -log2 p = [1, 2, 3, 3]
    item_users = np.array([4, 2, 1, 0])
    recommended = np.array([[0, 1], [2, 3], [0, 3]])
    np.testing.assert_allclose(m.novelty(recommended, item_users, 8), [1.5, 3.0, 2.0])


def test_rmse_and_mae_by_hand() -> None:
    # errors [1, 0, -2]: squared mean 5/3 -> RMSE sqrt(5/3) = 1.290994; MAE 3/3 = 1
    predicted, actual = [3.0, 4.0, 5.0], [2.0, 4.0, 7.0]
    assert m.rmse(predicted, actual) == pytest.approx(math.sqrt(5 / 3))
    assert m.mae(predicted, actual) == pytest.approx(1.0)
    assert isinstance(m.rmse(predicted, actual), float)
    assert m.rmse([1.0], [1.0]) == 0.0

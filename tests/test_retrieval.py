"""Retrieval indexes: exact equals brute force, the approximate one finds >= 95% of the exact top
10, and exclusion and k hold exactly for both, on clustered vectors and on a fitted model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tinydata import clustered

from driftrec.models import create
from driftrec.retrieval import ApproximateIndex, ExactIndex


def _catalog(n: int = 20_000, d: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, d))
    vectors = centres[rng.integers(0, 50, n)] + 0.5 * rng.normal(size=(n, d))
    return vectors.astype(np.float32), rng.normal(scale=0.5, size=n).astype(np.float32)


@pytest.fixture(scope="module")
def catalog() -> tuple[np.ndarray, np.ndarray]:
    return _catalog()


def test_exact_index_is_brute_force_with_exclusion(catalog) -> None:
    vectors, bias = catalog
    queries = np.random.default_rng(1).normal(size=(5, vectors.shape[1])).astype(np.float32)
    scores = queries @ vectors.T + bias
    exclude = [np.argsort(-s)[:3] for s in scores]  # each row's three best are excluded
    found = ExactIndex(vectors, bias).search(queries, 10, exclude)
    for row, s in enumerate(scores):
        expected = np.argsort(-s, kind="stable")[3:13]
        assert found.items[row].tolist() == expected.tolist()
        np.testing.assert_allclose(found.scores[row], s[expected], rtol=1e-5)


def test_approximate_index_recall_and_exact_exclusion(catalog) -> None:
    vectors, bias = catalog
    queries = np.random.default_rng(2).normal(size=(200, vectors.shape[1])).astype(np.float32)
    exact_scores = queries @ vectors.T + bias
    exclude = [np.argsort(-s)[::7][:20] for s in exact_scores]  # some good items excluded
    exact = ExactIndex(vectors, bias).search(queries, 10, exclude)
    approximate = ApproximateIndex(vectors, bias).search(queries, 10, exclude)
    hits = [
        len(set(a.tolist()) & set(e.tolist()))
        for a, e in zip(approximate.items, exact.items, strict=True)
    ]
    assert np.mean(hits) / 10 >= 0.95
    assert (approximate.lengths == 10).all()
    for row, excluded in enumerate(exclude):
        assert not set(approximate.items[row].tolist()) & set(excluded.tolist())
        np.testing.assert_allclose(  # candidates are scored exactly
            approximate.scores[row], exact_scores[row, approximate.items[row]], rtol=1e-5
        )


def test_short_catalogs_pad_and_added_items_are_found() -> None:
    vectors, bias = _catalog(n=30, d=4, seed=3)
    for index in (ExactIndex(vectors, bias), ApproximateIndex(vectors, bias)):
        found = index.search(vectors[:1], 50, [np.arange(25)])  # 5 items left
        assert found.lengths.tolist() == [5] and (found.items[0, 5:] == -1).all()
        index.add(vectors[:1] * 10, np.array([100.0], np.float32))  # a new, unbeatable item
        assert index.search(vectors[:1], 1).items[0, 0] == 30


def test_an_index_over_a_model_recommends_what_the_model_does() -> None:
    data = clustered()
    model = create("als", factors=8, iterations=3).fit(data)
    histories = model.histories_for(["u00", "u20", "u29"])
    exclude = [histories.row(i) for i in range(len(histories))]
    found = ExactIndex(model.item_vectors(), model.item_bias()).search(
        model.query_vectors(histories), 5, exclude
    )
    expected = model.recommend(["u00", "u20", "u29"], k=5)
    np.testing.assert_array_equal(found.items, expected.items)


def test_an_index_is_read_back_from_the_cache_for_the_same_items(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 8)).astype(np.float32)
    built = ApproximateIndex(vectors, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("ivf-*.faiss"))) == 1
    again = ApproximateIndex(vectors, cache_dir=tmp_path)
    queries = rng.normal(size=(5, 8)).astype(np.float32)
    assert np.array_equal(built.search(queries, 10).items, again.search(queries, 10).items)
    ApproximateIndex(vectors[:200], cache_dir=tmp_path)  # other items: another index
    assert len(list(tmp_path.glob("ivf-*.faiss"))) == 2

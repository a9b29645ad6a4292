"""Offline metrics, each a small pure function checked against hand-worked examples in the tests.

Ranking metrics take ``hits``: a (n, K) boolean matrix whose [u, r] entry says whether the item at
rank r (0-based) of user u's list is one of u's targets, and ``n_targets``: (n,) how many targets u
has. They return one value per user; the evaluator averages them.
"""

from __future__ import annotations

import numpy as np

from driftrec.errors import InputError


def _check(hits: np.ndarray, k: int) -> np.ndarray:
    """The first k columns. ``hits`` may be narrower than k when the catalog holds fewer than k
    items: a list cannot be longer, and the places beyond it are misses."""
    if k < 1:
        raise ValueError(f"k={k} must be at least 1")
    return hits[:, :k]


def hit_rate(hits: np.ndarray, k: int) -> np.ndarray:
    """1 if any target is in the top k. Equals Recall@k when each user has one target."""
    return _check(hits, k).any(axis=1).astype(np.float64)


def recall(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    """Share of a user's targets found in the top k."""
    return _check(hits, k).sum(axis=1) / np.maximum(n_targets, 1)


def precision(hits: np.ndarray, k: int) -> np.ndarray:
    """Share of the top k that are targets."""
    return _check(hits, k).sum(axis=1) / k


def f1(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    """Harmonic mean of precision@k and recall@k (0 where both are 0)."""
    p, r = precision(hits, k), recall(hits, n_targets, k)
    total = p + r
    return np.divide(2 * p * r, total, out=np.zeros_like(total), where=total > 0)


def ndcg(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    """DCG of the top k (binary gains, log2 discount) over the best DCG possible with min(|T|, k)
    targets. With one target: 1 / log2(rank + 2) for a 0-based rank below k, else 0."""
    top = _check(hits, k)  # (n, min(k, list length)); a user has at most that many targets
    discounts = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    dcg = (top * discounts).sum(axis=1)
    ideal = np.cumsum(discounts)[np.clip(n_targets, 1, top.shape[1]) - 1]
    return dcg / ideal


def mrr(hits: np.ndarray, k: int) -> np.ndarray:
    """Reciprocal (1-based) rank of the first target in the top k, 0 if none."""
    top = _check(hits, k)
    first = top.argmax(axis=1)
    return np.where(top.any(axis=1), 1.0 / (first + 1), 0.0)


def coverage(recommended: np.ndarray, n_items: int) -> float:
    """Share of the catalog that appears in at least one list. recommended: (n, k) item indices."""
    return len(np.unique(recommended)) / n_items


def intra_list_diversity(
    recommended: np.ndarray, item_features: np.ndarray, kind: str = "jaccard"
) -> np.ndarray:
    """Mean pairwise dissimilarity inside each list.

    ``item_features`` is (n_items, d): 0/1 category indicators for ``kind="jaccard"`` (1 - Jaccard
    similarity of the category sets; two items without categories count as dissimilar), or
    embeddings for ``kind="cosine"`` (1 - cosine similarity). recommended: (n, k) -> (n,)
    """
    n, k = recommended.shape
    if k < 2:
        return np.zeros(n)
    x = item_features[recommended].astype(np.float64)  # (n, k, d)
    if kind == "jaccard":
        inter = x @ x.transpose(0, 2, 1)  # (n, k, k) shared categories
        sizes = x.sum(axis=2)  # (n, k)
        union = sizes[:, :, None] + sizes[:, None, :] - inter
        sim = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    elif kind == "cosine":
        norms = np.linalg.norm(x, axis=2, keepdims=True)
        x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
        sim = x @ x.transpose(0, 2, 1)
    else:
        raise InputError(f"kind must be 'jaccard' or 'cosine', got {kind!r}")
    off_diagonal = sim.sum(axis=(1, 2)) - np.trace(sim, axis1=1, axis2=2)
    return 1.0 - off_diagonal / (k * (k - 1))


def novelty(recommended: np.ndarray, item_users: np.ndarray, n_users: int) -> np.ndarray:
    """Mean self-information -log2(p) of the listed items, p = share of training users who
    interacted with the item (an item nobody touched counts as touched once). (n, k) -> (n,)"""
    p = np.maximum(item_users, 1) / max(n_users, 1)
    return (-np.log2(p))[recommended].mean(axis=1)


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error of predicted ratings."""
    return float(np.sqrt(np.mean((np.asarray(predicted) - np.asarray(actual)) ** 2)))


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error of predicted ratings."""
    return float(np.mean(np.abs(np.asarray(predicted) - np.asarray(actual))))

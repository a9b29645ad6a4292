"""Topics that interest profiles are shares over: the catalog's categories, or, for catalogs
without any (the Amazon sequence files), clusters of the model's item vectors labelled with the
words that set their items' titles apart."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import faiss
import numpy as np
import scipy.sparse as sp

MAX_TOPICS = 20
_WORD = re.compile(r"[a-z][a-z'-]{2,}")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "from",
        "this",
        "that",
        "your",
        "you",
        "are",
        "was",
        "not",
        "but",
        "all",
        "can",
        "has",
        "have",
        "its",
        "our",
        "out",
        "one",
        "two",
        "new",
        "set",
        "pack",
        "inch",
        "size",
    ]
)


class Topics:
    """``names`` (n_topics,) and ``membership`` (n_items, n_topics), each item's row summing to
    1 over its topics (0 for an item with none); ``source`` says where they came from."""

    def __init__(
        self,
        names: list[str],
        membership: sp.csr_matrix,
        source: str,
        centroids: np.ndarray | None = None,
    ) -> None:
        self.names = names
        self.membership = membership
        self.source = source  # "categories" or "clusters"
        self.centroids = centroids  # (n_topics, d) unit vectors, for clusters

    @classmethod
    def from_categories(cls, categories: Sequence[Sequence[str]]) -> Topics:
        names = sorted({c for cats in categories for c in cats})
        column = {n: j for j, n in enumerate(names)}
        return cls(names, _membership(categories, column), "categories")

    @classmethod
    def from_vectors(
        cls, vectors: np.ndarray, titles: Sequence[str] | None = None, seed: int = 0
    ) -> Topics:
        """Spherical k-means (faiss) over the item vectors, about one topic per 3·√n items up to
        `MAX_TOPICS`; each topic is named by its three most distinctive title words (or
        "topic N" without titles)."""
        unit = _unit(vectors)
        # √n/3 topics, fewer than 39 items each only when that leaves under two (faiss's floor)
        wanted = min(round(np.sqrt(len(unit)) / 3), len(unit) // 39)
        n_topics = min(int(np.clip(wanted, 2, MAX_TOPICS)), len(unit))
        kmeans = faiss.Kmeans(unit.shape[1], n_topics, niter=20, seed=seed, spherical=True)
        kmeans.train(unit)
        centroids = _unit(kmeans.centroids)
        assigned = _nearest(centroids, unit)
        names = _labels(assigned, n_topics, titles)
        membership = sp.csr_matrix(
            (np.ones(len(unit), np.float32), (np.arange(len(unit)), assigned)),
            shape=(len(unit), n_topics),
        )
        return cls(names, membership, "clusters", centroids)

    def add_items(
        self, categories: Sequence[Sequence[str]], vectors: np.ndarray | None = None
    ) -> Topics:
        """Topics with rows for new items appended: a category not seen before becomes a new
        topic; clustered topics take the nearest centroid of each new vector."""
        if self.source == "categories":
            names = self.names + sorted({c for cats in categories for c in cats} - set(self.names))
            rows = _membership(categories, {n: j for j, n in enumerate(names)})
            old = sp.csr_matrix(self.membership, shape=(self.membership.shape[0], len(names)))
            return Topics(names, sp.vstack([old, rows]).tocsr(), self.source)
        assert self.centroids is not None and vectors is not None
        assigned = _nearest(self.centroids, _unit(vectors))
        rows = sp.csr_matrix(
            (np.ones(len(assigned), np.float32), (np.arange(len(assigned)), assigned)),
            shape=(len(assigned), len(self.names)),
        )
        return Topics(
            self.names, sp.vstack([self.membership, rows]).tocsr(), self.source, self.centroids
        )

    def of_items(self, items: np.ndarray) -> list[list[str]]:
        """The topic names of each item index."""
        rows = self.membership[np.asarray(items, np.int64)]
        return [
            [self.names[j] for j in rows.indices[rows.indptr[r] : rows.indptr[r + 1]]]
            for r in range(rows.shape[0])
        ]


def _membership(categories: Sequence[Sequence[str]], column: dict[str, int]) -> sp.csr_matrix:
    rows, cols, vals = [], [], []
    for i, cats in enumerate(categories):
        distinct = list(dict.fromkeys(cats))
        if not distinct:
            continue
        rows += [i] * len(distinct)
        cols += [column[c] for c in distinct]
        vals += [1.0 / len(distinct)] * len(distinct)
    return sp.csr_matrix(
        (np.asarray(vals, np.float32), (rows, cols)), shape=(len(categories), len(column))
    )


def _unit(vectors: np.ndarray) -> np.ndarray:
    v = np.ascontiguousarray(vectors, np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.ascontiguousarray(v / np.where(norms > 0, norms, 1.0))


def _nearest(centroids: np.ndarray, unit: np.ndarray) -> np.ndarray:
    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(centroids)
    return index.search(unit, 1)[1][:, 0].astype(np.int64)


def _labels(assigned: np.ndarray, n_topics: int, titles: Sequence[str] | None) -> list[str]:
    fallback = [f"topic {j + 1}" for j in range(n_topics)]
    if titles is None or not any(titles):
        return fallback
    words = [set(_WORD.findall(str(t).lower())) - _STOP for t in titles]
    overall = Counter(w for ws in words for w in ws)
    names = []
    for j in range(n_topics):
        members = np.flatnonzero(assigned == j)
        inside = Counter(w for i in members for w in words[i])
        # distinctive: frequent here, rare elsewhere (a lift ranked by count)
        ranked = sorted(
            (w for w, c in inside.items() if c >= 2),
            key=lambda w: (-(inside[w] ** 2) / overall[w], w),
        )
        names.append(" / ".join(ranked[:3]) or fallback[j])
    counts = Counter(names)
    seen: Counter[str] = Counter()
    for j, name in enumerate(names):  # two clusters with the same words: number them
        if counts[name] > 1:
            seen[name] += 1
            names[j] = f"{name} ({seen[name]})"
    return names


__all__ = ["MAX_TOPICS", "Topics"]

"""Item indexes for retrieval: the best k items of each query vector, excluded items left out.

Both indexes rank items by ``query @ item + bias`` (the `Factorised` contract). `ExactIndex`
scores every item; `ApproximateIndex` asks an HNSW graph (faiss) for candidates, with the bias
folded in as one more dimension (item ``[v, b]``, query ``[q, 1]``) and the inner product turned
into a distance (see the class). Exclusion and k hold exactly either way: the graph is asked for
k plus the row's excluded items plus a margin, excluded candidates are dropped, and the search
widens until k remain or the catalog is exhausted. Candidates are scored exactly before ranking.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

from driftrec.models.base import top_k


@dataclass(frozen=True)
class Retrieved:
    """The k best items per query, best first; a row with fewer than k candidates left (after
    exclusion) is padded with item -1 and score -inf."""

    items: np.ndarray  # (m, k) int64
    scores: np.ndarray  # (m, k) float32

    @property
    def lengths(self) -> np.ndarray:
        """(m,) how many real items each row holds."""
        return (self.items >= 0).sum(axis=1)


class ItemIndex(Protocol):
    """What serving asks of an index."""

    def search(
        self, queries: np.ndarray, k: int, exclude: Sequence[np.ndarray] | None = None
    ) -> Retrieved: ...

    def add(self, vectors: np.ndarray, bias: np.ndarray | None = None) -> None: ...


def _with_bias(vectors: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """(n, d + 1) float32 item vectors with the bias as the last dimension (0 without one)."""
    column = np.zeros(len(vectors), np.float32) if bias is None else bias.astype(np.float32)
    return np.ascontiguousarray(np.column_stack([vectors.astype(np.float32), column]))


def _queries(queries: np.ndarray) -> np.ndarray:
    """(m, d + 1) float32 queries with a constant 1 meeting the items' bias dimension."""
    ones = np.ones((len(queries), 1), np.float32)
    return np.ascontiguousarray(np.hstack([queries.astype(np.float32), ones]))


def _padded(rows: list[tuple[np.ndarray, np.ndarray]], k: int) -> Retrieved:
    items = np.full((len(rows), k), -1, np.int64)
    scores = np.full((len(rows), k), -np.inf, np.float32)
    for i, (row_items, row_scores) in enumerate(rows):
        items[i, : len(row_items)] = row_items
        scores[i, : len(row_scores)] = row_scores
    return Retrieved(items, scores)


class ExactIndex:
    """Scores every item: the reference, and the right choice for small catalogs."""

    def __init__(self, vectors: np.ndarray, bias: np.ndarray | None = None) -> None:
        self.table = _with_bias(vectors, bias)  # (n, d + 1)

    def add(self, vectors: np.ndarray, bias: np.ndarray | None = None) -> None:
        self.table = np.vstack([self.table, _with_bias(vectors, bias)])

    def search(
        self, queries: np.ndarray, k: int, exclude: Sequence[np.ndarray] | None = None
    ) -> Retrieved:
        scores = _queries(queries) @ self.table.T  # (m, n)
        for row, items in enumerate(exclude or ()):
            scores[row, np.asarray(items, np.int64)] = -np.inf
        best = top_k(scores, k)
        top = np.take_along_axis(scores, best, axis=1)
        return _padded(
            [(b[t > -np.inf], t[t > -np.inf]) for b, t in zip(best, top, strict=True)], k
        )


class ApproximateIndex:
    """An HNSW graph over the item vectors (faiss), grown by `add`.

    Graphs find nearest neighbours far better than largest inner products, so the search is
    turned into one (the classic reduction): every item gets one more dimension making all
    norms equal to ``radius`` (``sqrt(radius² - |x|²)``) and queries get 0 there; the item
    nearest a query is then the one with the largest inner product. An added item longer than
    ``radius`` makes the graph rebuild with a larger one. ``neighbours`` is the graph's degree
    (M) and ``search_depth`` its efSearch: more of either costs time and buys recall (the lifted
    dimension makes queries far from the items, so the graph needs a deep search: 128 found 85%
    of the exact top 10 on the clustered test catalog, 512 found 99%). ``margin`` extra
    candidates are asked for beyond k and the excluded items.
    """

    def __init__(
        self,
        vectors: np.ndarray,
        bias: np.ndarray | None = None,
        neighbours: int = 32,
        build_depth: int = 100,
        search_depth: int = 512,
        margin: int = 16,
        slack: float = 1.05,
        cache_dir: Path | None = None,
    ) -> None:
        self.neighbours, self.build_depth = neighbours, build_depth
        self.search_depth, self.margin, self.slack = search_depth, margin, slack
        self.table = _with_bias(vectors, bias)  # (n, d + 1): what candidates are scored with
        self._build(cache_dir)

    def _build(self, cache_dir: Path | None = None) -> None:
        """Build the graph, or read it from ``cache_dir`` where the same items were indexed
        before with the same settings (a million items take minutes to index on 2 cores)."""
        norms = np.linalg.norm(self.table, axis=1)
        self.radius = float(norms.max(initial=1.0)) * self.slack
        cached = None if cache_dir is None else cache_dir / f"hnsw-{self._key()}.faiss"
        if cached is not None and cached.is_file():
            self.graph = faiss.read_index(str(cached))
            return
        self.graph = faiss.IndexHNSWFlat(self.table.shape[1] + 1, self.neighbours)  # L2
        self.graph.hnsw.efConstruction = self.build_depth
        self.graph.add(self._lifted(self.table))
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(f".{os.getpid()}.partial")
            faiss.write_index(self.graph, str(partial))
            os.replace(partial, cached)  # whole or absent, whatever another process does

    def _key(self) -> str:
        """What the graph depends on: the items' vectors and the build settings."""
        digest = hashlib.sha256(np.ascontiguousarray(self.table).tobytes())
        digest.update(f"{self.neighbours}:{self.build_depth}:{self.slack}".encode())
        return digest.hexdigest()[:24]

    def _lifted(self, rows: np.ndarray) -> np.ndarray:
        height = np.sqrt(np.maximum(self.radius**2 - (rows.astype(np.float64) ** 2).sum(1), 0))
        return np.ascontiguousarray(np.column_stack([rows, height]).astype(np.float32))

    def add(self, vectors: np.ndarray, bias: np.ndarray | None = None) -> None:
        rows = _with_bias(vectors, bias)
        self.table = np.vstack([self.table, rows])
        if np.linalg.norm(rows, axis=1).max(initial=0.0) > self.radius:
            self._build()  # the equal-norm lift no longer holds: a new radius
        else:
            self.graph.add(self._lifted(rows))

    def search(
        self, queries: np.ndarray, k: int, exclude: Sequence[np.ndarray] | None = None
    ) -> Retrieved:
        q = _queries(queries)
        lifted = np.ascontiguousarray(np.hstack([q, np.zeros((len(q), 1), np.float32)]))
        excluded = [set(np.asarray(e).tolist()) for e in (exclude or [()] * len(q))]
        total = len(self.table)
        rows = []
        for row in range(len(q)):
            wanted = min(total, k + len(excluded[row]) + self.margin)
            while True:  # the search depth goes with the call: nothing is written on the graph
                depth = faiss.SearchParametersHNSW(efSearch=max(self.search_depth, wanted))
                _, found = self.graph.search(lifted[row : row + 1], wanted, params=depth)
                keep = [  # ids past the table: items a newer copy of this index added
                    int(i)
                    for i in found[0]
                    if 0 <= i < len(self.table) and int(i) not in excluded[row]
                ]
                if len(keep) >= k or wanted >= total:
                    break
                wanted = min(total, 2 * wanted)
            candidates = np.array(keep, np.int64)
            exact = self.table[candidates] @ q[row]  # (c,) scored exactly before ranking
            order = np.argsort(-exact, kind="stable")[:k]
            rows.append((candidates[order], exact[order]))
        return _padded(rows, k)

"""A model made ready to serve: its retrieval index, topics, popular items and version.

An `Engine` is never changed once requests use it: adding items or erasing a user builds a new
one from a shallow copy of the model (whose methods replace arrays rather than write into them),
and the tracker swaps it in with one assignment, so a request keeps the engine it started with.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from driftrec.models.base import Recommender
from driftrec.models.capabilities import Factorised
from driftrec.paths import default_cache_dir
from driftrec.retrieval import ApproximateIndex, ExactIndex, ItemIndex
from driftrec.tracking.catalog import Catalog
from driftrec.tracking.topics import Topics

EXACT_MAX_ITEMS = 50_000  # larger catalogs are served from an approximate (inverted-file) index
POPULAR_ITEMS = 1_000  # the cold-start list kept per model


def model_version(path: str | Path) -> str:
    """A short fingerprint of a model directory: its config and its state file's size and
    modification time (two trainings with the same settings get different versions)."""
    path = Path(path)
    state = (path / "state.safetensors").stat()
    digest = hashlib.sha256((path / "config.json").read_bytes())
    digest.update(f"{state.st_size}:{state.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


_serials = itertools.count()


@dataclass(frozen=True)
class Engine:
    model: Recommender
    version: str
    index: ItemIndex | None  # None: the model is not factorised and scores every item
    topics: Topics | None  # None: no categories and no vectors to cluster
    popular: np.ndarray  # (≤ POPULAR_ITEMS,) item indices, most popular (recently) first
    popularity: np.ndarray  # (≤ POPULAR_ITEMS,) their recency-weighted event counts
    # unique per engine, new ones derived by `replace` included: what per-user caches key on
    serial: int = field(default_factory=lambda: next(_serials), init=False)

    @classmethod
    def build(
        cls,
        model: Recommender,
        version: str,
        catalog: Catalog,
        exact_max_items: int = EXACT_MAX_ITEMS,
    ) -> Engine:
        index = None
        if isinstance(model, Factorised):
            vectors, bias = model.item_vectors(), model.item_bias()
            index = (
                ExactIndex(vectors, bias)
                if model.n_items <= exact_max_items
                else ApproximateIndex(vectors, bias, cache_dir=default_cache_dir())
            )
        popular, popularity = _popular(model)
        return cls(model, version, index, _topics(model, catalog), popular, popularity)

    @property
    def exact(self) -> bool:
        return not isinstance(self.index, ApproximateIndex)

    def item_vectors(self, items: np.ndarray) -> np.ndarray | None:
        """(len(items), d) what diversity is measured on for these items: the model's item
        vectors, else their topic memberships; None when there is neither."""
        if isinstance(self.model, Factorised):
            return self.model.item_vectors()[items]
        if self.topics is not None:
            return self.topics.membership[items].toarray()
        return None

    def with_model(self, model: Recommender) -> Engine:
        """The same engine over a changed copy of the model (a user erased)."""
        return replace(self, model=model)

    def with_items(self, model: Recommender, catalog: Catalog, old_items: int) -> Engine:
        """The engine over ``model``, a copy that grew past ``old_items`` items: the index and
        the topics are extended with the new items only."""
        index = self.index
        if index is not None and isinstance(model, Factorised):
            index = copy.copy(index)  # the old engine keeps answering from its own table
            bias = model.item_bias()
            index.add(model.item_vectors()[old_items:], None if bias is None else bias[old_items:])
        topics = self.topics
        if topics is not None:
            new_ids = model.item_ids_[old_items:]
            vectors = model.item_vectors()[old_items:] if isinstance(model, Factorised) else None
            if topics.source == "categories" or vectors is not None:
                topics = topics.add_items(catalog.categories(new_ids), vectors)
        return replace(self, model=model, index=index, topics=topics)


def _popular(model: Recommender) -> tuple[np.ndarray, np.ndarray]:
    """The most popular items of the training events, each weighted by recency (a half-life of
    a tenth of the data's time span), so an answer for a stranger is popular and current."""
    history = model.history_
    weights = np.ones(len(history.items))
    if len(history.items):
        times = history.timestamps.astype(np.float64)
        span = times.max() - times.min()
        if span > 0:
            weights = 0.5 ** ((times.max() - times) / (span / 10))
    counts = np.bincount(history.items, weights, minlength=model.n_items)
    order = np.argsort(-counts, kind="stable")[:POPULAR_ITEMS]
    return order, counts[order].astype(np.float32)


def _topics(model: Recommender, catalog: Catalog) -> Topics | None:
    categories = catalog.categories(model.item_ids_)
    if any(categories):
        return Topics.from_categories(categories)
    if isinstance(model, Factorised):
        titles = [catalog.get(str(i)).title for i in model.item_ids_]
        return Topics.from_vectors(model.item_vectors(), titles if any(titles) else None)
    return None


__all__ = ["EXACT_MAX_ITEMS", "Engine", "model_version"]

"""What some models can do beyond the `Recommender` interface, as typed protocols.

Callers ask ``isinstance(model, PredictsRatings)`` instead of probing for a method with
``getattr``: the capability has a name, a signature a type checker sees, and one place that says
which models have it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from driftrec.data.dataset import Dataset
from driftrec.data.events import Event
from driftrec.data.histories import Histories
from driftrec.data.split import EvalSet


@runtime_checkable
class PredictsRatings(Protocol):
    """Predicts the rating a row would give an item (RMSE and MAE need it): the bias model."""

    def predict_ratings(self, histories: Histories, items: np.ndarray) -> np.ndarray:
        """(n,) predicted rating of ``items[i]`` for row i."""
        ...


@runtime_checkable
class ReportsTraining(Protocol):
    """Trains in epochs and reports how it went: the neural models."""

    def training_summary(self) -> dict[str, Any]:
        """Epochs run, the best epoch and its validation score, training seconds."""
        ...


@runtime_checkable
class HasDriftGate(Protocol):
    """Weighs long-term against short-term interest per user: the fused model."""

    def gate(self, histories: Histories) -> np.ndarray:
        """(n,) weight of the short-term side at each row's newest event."""
        ...


@runtime_checkable
class AddsItems(Protocol):
    """Grows its catalog without retraining, ranking new items from their text: the content
    model, and the neural models trained with ``features="text"``."""

    def add_items(self, item_ids: Sequence[str], texts: Sequence[str]) -> Any:
        """The model with the new items (ids not yet known) appended to its catalog."""
        ...


@runtime_checkable
class Factorised(Protocol):
    """Scores as an inner product, so a nearest-neighbour index (exact or approximate) can
    retrieve the best items without scoring the whole catalog: for every row and every item j
    the row has not seen,

        score(h)[i, j] == query_vectors(h)[i] @ item_vectors()[j] + item_bias()[j]

    (no bias term when `item_bias` is None). A seen item may score more (a model's learned bonus
    for coming back to an item); retrieval that excludes seen items does not need it. ALS, BPR,
    the content model and the neural models have it; ItemKNN and popularity do not.
    """

    def query_vectors(self, histories: Histories) -> np.ndarray:
        """(n, d) float32: one query vector per row."""
        ...

    def item_vectors(self) -> np.ndarray:
        """(n_items, d) float32: every item's vector, the same for every request."""
        ...

    def item_bias(self) -> np.ndarray | None:
        """(n_items,) float32 added to each item's inner product, or None."""
        ...


@runtime_checkable
class Incremental(Protocol):
    """Advances a history's query vector by newer events instead of recomputing it from the
    whole history: the content model (a decayed sum) and ALS (its fold-in's normal equations
    add up per item). For events ``a`` and events ``b`` no older than any in ``a``,

        query_vector(advance(start(a), b)) ≈ query_vectors(query_histories(events=[a + b]))[0]

    (to float rounding). The live tracker keeps the state per user. Not here, by decision
    (docs/service.md): BPR (its fold-in is a fresh run of gradient steps over the whole
    history; a warm start would answer differently for the same history) and the sequence
    models (they read a window of the newest events, which a running state cannot forget).
    """

    def start(self, events: Sequence[Event]) -> Any:
        """The state after ``events``."""
        ...

    def advance(self, state: Any, events: Sequence[Event]) -> Any:
        """The state after also ``events`` (none older than those already in it)."""
        ...

    def query_vector(self, state: Any) -> np.ndarray:
        """(d,) float32: the query vector of the history the state has seen."""
        ...


@runtime_checkable
class ContinuesTraining(Protocol):
    """Trains further on a grown dataset instead of from scratch (scikit-learn's
    ``partial_fit``): the neural sequence models and ALS. A full retrain costs the whole
    training again each time new events arrive; continuing costs in proportion to what is new.

    ``dataset`` holds every event, those the model learned from and newer ones, with the
    model's users, items and event types first in its order and new ones after them
    (`Dataset.reindexed`); the model grows by the new users and items and learns the events
    after ``since`` (default: its `trained_until_`, the newest event it learned from).
    """

    def partial_fit(
        self, dataset: Dataset, since: int | None = None, valid: EvalSet | None = None
    ) -> Any:
        """The model, trained further on ``dataset``; ``valid`` stops it early where it can."""
        ...


__all__ = [
    "AddsItems",
    "ContinuesTraining",
    "Factorised",
    "HasDriftGate",
    "Incremental",
    "PredictsRatings",
    "ReportsTraining",
]

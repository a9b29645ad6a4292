"""What some models can do beyond the `Recommender` interface, as typed protocols.

Callers ask ``isinstance(model, PredictsRatings)`` instead of probing for a method with
``getattr``: the capability has a name, a signature a type checker sees, and one place that says
which models have it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from driftrec.data.histories import Histories


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


__all__ = ["HasDriftGate", "PredictsRatings", "ReportsTraining"]

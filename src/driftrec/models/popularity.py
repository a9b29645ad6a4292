"""Most-popular baselines: the floor every personalised model has to beat."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from driftrec.data.dataset import Dataset
from driftrec.data.histories import Histories
from driftrec.data.split import EvalSet
from driftrec.models.base import Recommender, SavedState
from driftrec.params import Rule, number, optional


class Popularity(Recommender):
    """Ranks items by how many training events they received.

    ``window`` (a fraction in (0, 1]) counts only the most recent share of training events, which
    follows trends better than all-time counts; ``None`` counts everything.
    """

    name = "pop"
    param_rules: ClassVar[dict[str, Rule]] = {"window": optional(number(0, 1, low_open=True))}

    def __init__(self, window: float | None = None) -> None:
        self.window = window

    def _fit(self, dataset: Dataset, valid: EvalSet | None = None) -> None:
        if self.window is not None:
            dataset.require_timestamps("a recent window (use window=None)")
        events = dataset.item_events()
        items = events["item"].to_numpy()
        if self.window is not None and len(items):
            # The latest share of events by time; stable so equal timestamps keep source order.
            order = np.argsort(events["timestamp"].to_numpy(), kind="stable")
            keep = max(1, round(len(order) * self.window))
            items = items[order[len(order) - keep :]]
        self.counts_ = np.bincount(items, minlength=dataset.n_items).astype(np.float32)

    def score(self, histories: Histories) -> np.ndarray:
        return np.broadcast_to(self.counts_, (len(histories), self.n_items)).copy()

    def _state_items(self) -> int:
        return len(self.counts_)

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts_}

    def _set_state(self, state: SavedState) -> None:
        self.counts_ = state["counts"]

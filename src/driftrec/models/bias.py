"""Rating baseline: global mean + user bias + item bias, the reference point for RMSE and MAE."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from driftrec.data.dataset import Dataset
from driftrec.data.histories import Histories
from driftrec.data.split import EvalSet
from driftrec.models.base import Recommender, SavedState
from driftrec.params import NON_NEGATIVE, POSITIVE_INT, Rule


def _shrunk_mean(sums: np.ndarray, counts: np.ndarray, reg: float) -> np.ndarray:
    """sums / (counts + reg): a mean pulled towards 0 by ``reg`` pseudo-ratings; 0 where there
    is nothing to average (no rating and reg 0), not 0/0."""
    denominator = counts + reg
    return np.divide(sums, denominator, out=np.zeros(len(sums)), where=denominator > 0)


class BiasBaseline(Recommender):
    """Predicts r(u, i) = mean + b_u + b_i, biases fitted by regularised alternating averages.

    As a ranker it orders items by their bias (the best-rated items, shrunk towards the mean), the
    same for every user. A user's bias is recomputed from whatever history is scored, so it works
    for new users and for histories that grew since training.
    """

    name = "bias"
    param_rules: ClassVar[dict[str, Rule]] = {
        "reg_user": NON_NEGATIVE,
        "reg_item": NON_NEGATIVE,
        "iterations": POSITIVE_INT,
    }

    def __init__(self, reg_user: float = 5.0, reg_item: float = 10.0, iterations: int = 10) -> None:
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.iterations = iterations

    def _fit(self, dataset: Dataset, valid: EvalSet | None = None) -> None:
        ev = dataset.item_events()
        users, items = ev["user"].to_numpy(), ev["item"].to_numpy()
        ratings = ev["value"].to_numpy(np.float64)
        self.mean_ = np.float32(ratings.mean() if len(ratings) else 0.0)
        n_per_item = np.bincount(items, minlength=dataset.n_items)
        n_per_user = np.bincount(users, minlength=dataset.n_users)
        b_user = np.zeros(dataset.n_users)
        b_item = np.zeros(dataset.n_items)
        for _ in range(self.iterations):
            residual = ratings - self.mean_ - b_user[users]
            b_item = _shrunk_mean(
                np.bincount(items, residual, dataset.n_items), n_per_item, self.reg_item
            )
            residual = ratings - self.mean_ - b_item[items]
            b_user = _shrunk_mean(
                np.bincount(users, residual, dataset.n_users), n_per_user, self.reg_user
            )
        self.item_bias_ = b_item.astype(np.float32)

    def user_bias(self, histories: Histories) -> np.ndarray:
        """(n,) each row's bias from the ratings in its history."""
        residual = histories.values - self.mean_ - self.item_bias_[histories.items]
        total = np.bincount(histories.event_rows(), residual, len(histories))
        return _shrunk_mean(total, histories.lengths, self.reg_user).astype(np.float32)

    def predict_ratings(self, histories: Histories, items: np.ndarray) -> np.ndarray:
        """Predicted rating of ``items[i]`` for row i of ``histories``: (n,)."""
        return self.mean_ + self.user_bias(histories) + self.item_bias_[items]

    def score(self, histories: Histories) -> np.ndarray:
        return np.broadcast_to(self.item_bias_, (len(histories), self.n_items)).copy()

    def _state_items(self) -> int:
        return len(self.item_bias_)

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"item_bias": self.item_bias_, "mean": np.asarray([self.mean_], np.float32)}

    def _set_state(self, state: SavedState) -> None:
        self.item_bias_ = state["item_bias"]
        self.mean_ = np.float32(state["mean"][0])

"""Latent-factor models (long-term interest) trained with `implicit`: BPR-MF and ALS.

Both keep item factors and answer for any history by folding it in: a user's vector is the
least-squares fit of their items under the implicit-ALS objective, solved on the fly. A training
user whose items have not changed uses the vector learned in `fit`; one whose items changed (a new
event since training, or a history replaced by `update_histories`) or a new user gets a folded-in
vector, so the newest event moves the ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking
from threadpoolctl import threadpool_limits

from driftrec.data.dataset import Dataset
from driftrec.data.events import Event
from driftrec.data.histories import Histories
from driftrec.data.split import EvalSet
from driftrec.errors import DataFormatError
from driftrec.models.base import Recommender, SavedState, read_only
from driftrec.params import NON_NEGATIVE, POSITIVE, POSITIVE_INT, SEED, SIZE, Rule, integer

INCREMENTAL_ITERATIONS = 2  # rounds of `ALS.partial_fit`: touched items, then touched users


@dataclass(frozen=True)
class FoldInState:
    """What ALS's fold-in has summed over a history's distinct items: the items, (c - 1)·Y_uᵀY_u
    and c·Y_uᵀ1 (float64)."""

    seen: frozenset[int]
    outer: np.ndarray  # (f, f)
    total: np.ndarray  # (f,)


class _ImplicitFactorization(Recommender):
    """Fit through an `implicit` model; score with learned or folded-in user vectors."""

    param_rules: ClassVar[dict[str, Rule]] = {
        "factors": SIZE,
        "iterations": POSITIVE_INT,
        "seed": SEED,
    }

    factors: int
    regularization: float
    seed: int

    def _make(self) -> Any:
        raise NotImplementedError

    def _fit(self, dataset: Dataset, valid: EvalSet | None = None) -> None:
        # implicit parallelises itself; a multi-threaded BLAS underneath only adds contention.
        with threadpool_limits(1, "blas"):
            model = self._make()
            model.fit(dataset.interactions(), show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, np.float32)
        self.item_factors_ = np.asarray(model.item_factors, np.float32)

    def user_vectors(self, histories: Histories) -> np.ndarray:
        """(n, f) one vector per row, fitted to the row's items (`_fold_in`)."""
        return self._fold_in(histories)

    def _fold_in(self, histories: Histories) -> np.ndarray:
        """(n, f) user vectors fitted to each row's items with the item factors fixed."""
        raise NotImplementedError

    def score(self, histories: Histories) -> np.ndarray:
        return self.user_vectors(histories) @ self.item_factors_.T

    # the retrieval contract (capabilities.Factorised)
    def query_vectors(self, histories: Histories) -> np.ndarray:
        return self.user_vectors(histories)

    def item_vectors(self) -> np.ndarray:
        return read_only(self.item_factors_)

    def item_bias(self) -> None:
        return None  # BPR's item bias is the last factor, its user side fixed at 1

    def _state_items(self) -> int:
        return len(self.item_factors_)

    def _forget_user_rows(self, keep: np.ndarray, renumber: np.ndarray) -> None:
        self.user_factors_ = self.user_factors_[keep]

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def _set_state(self, state: SavedState) -> None:
        self.user_factors_ = state["user_factors"]
        self.item_factors_ = state["item_factors"]


class BPR(_ImplicitFactorization):
    """Bayesian Personalised Ranking matrix factorisation (Rendle et al. 2009).

    Item factors come from `implicit`; a user's vector is always fitted to the history being
    scored, by ``fold_in_steps`` BPR gradient steps with the item factors fixed. That beats the
    user factors `implicit` learns (on ml-100k leave-one-out, validation NDCG@10 0.077 against
    0.062; see docs/evaluation.md) and makes every new event count at once.
    """

    name = "bpr"
    param_rules: ClassVar[dict[str, Rule]] = {
        **_ImplicitFactorization.param_rules,
        "learning_rate": POSITIVE,
        "regularization": NON_NEGATIVE,
        "fold_in_steps": POSITIVE_INT,
    }
    fold_in_learning_rate = 0.05

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        fold_in_steps: int = 500,
        seed: int = 0,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.fold_in_steps = fold_in_steps
        self.seed = seed

    def _fold_in(self, histories: Histories) -> np.ndarray:
        """BPR steps on the user vector only: x += lr·(σ(-x·d)·d - λx), d = y_pos - y_neg.

        implicit's last factor is an item bias with the user side fixed at 1. The random draws
        are one table shared by all rows, so a row's vector does not depend on its batch.
        """
        y = self.item_factors_.astype(np.float64)  # (n_items, f + 1)
        x = np.zeros((len(histories), y.shape[1]))  # (n, f + 1)
        x[:, -1] = 1.0
        lengths = histories.lengths
        rows = np.flatnonzero(lengths > 0)
        draws = np.random.default_rng(self.seed).random((self.fold_in_steps, 2))
        lr, reg = self.fold_in_learning_rate, self.regularization
        for u_pos, u_neg in draws:
            pos = histories.items[histories.indptr[rows] + (u_pos * lengths[rows]).astype(np.int64)]
            diff = y[pos] - y[int(u_neg * len(y))]  # (n_rows, f + 1)
            x_rows = x[rows]
            weight = 1.0 / (1.0 + np.exp((x_rows * diff).sum(axis=1)))  # σ(-x·d)
            x[rows, :-1] += lr * (weight[:, None] * diff[:, :-1] - reg * x_rows[:, :-1])
        return x.astype(np.float32)

    def _make(self) -> BayesianPersonalizedRanking:
        return BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            random_state=self.seed,
        )


class ALS(_ImplicitFactorization):
    """Implicit-feedback alternating least squares (Hu, Koren & Volinsky 2008)."""

    name = "als"
    param_rules: ClassVar[dict[str, Rule]] = {
        **_ImplicitFactorization.param_rules,
        "regularization": POSITIVE,  # the fold-in's linear system is singular without it
        "alpha": POSITIVE,  # the confidence of a consumed item
    }

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 2.0,
        iterations: int = 15,
        seed: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed

    def _make(self) -> AlternatingLeastSquares:
        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.seed,
        )

    def _fit(self, dataset: Dataset, valid: EvalSet | None = None) -> None:
        super()._fit(dataset, valid)
        self.learned_items_ = self.history_.item_set_fingerprints(self.n_items)
        self.gram_ = self._gram()

    def partial_fit(
        self,
        dataset: Dataset,
        since: int | None = None,
        valid: EvalSet | None = None,
        *,
        iterations: int = INCREMENTAL_ITERATIONS,
    ) -> Self:
        """Continue on ``dataset`` (`capabilities.ContinuesTraining`): the factors of the users
        with item events after ``since`` (default `trained_until_`) and of the items those
        events name, new ones included, are solved again, ``iterations`` times in turn
        (implicit's ``partial_fit_items`` / ``partial_fit_users``), every other factor held,
        so a touched user's vector is the fold-in of their items, as `user_vectors` makes it.
        Exact for the rows it touches, and in proportion to them: a full fit sweeps every row
        ``self.iterations`` times. ``valid`` is not used (ALS does not stop early)."""
        integer(1).check(iterations, "iterations")
        since = self.trained_until_ if since is None else since
        history = self._growth(dataset, since)
        users, items = len(self.user_ids_), self.n_items
        self._adopt(dataset, history)
        new = history.timestamps > since
        touched_users = np.unique(history.event_rows()[new])
        touched_items = np.unique(history.items[new]).astype(np.int64)
        model = self._make()
        # New rows start at zero, and count for nothing until solved.
        model.user_factors = np.zeros((dataset.n_users, self.factors), np.float32)
        model.user_factors[:users] = self.user_factors_
        model.item_factors = np.zeros((dataset.n_items, self.factors), np.float32)
        model.item_factors[:items] = self.item_factors_
        matrix = dataset.interactions()  # (n_users, n_items), as `fit` reads it
        by_item = matrix.T.tocsr()
        with threadpool_limits(1, "blas"):
            for _ in range(iterations):  # items first, so the touched users end exact
                model.partial_fit_items(touched_items, by_item[touched_items])
                model.partial_fit_users(touched_users, matrix[touched_users])
        self.user_factors_ = np.asarray(model.user_factors, np.float32)
        self.item_factors_ = np.asarray(model.item_factors, np.float32)
        learned = np.zeros(dataset.n_users, np.uint64)  # untouched users: learned as before
        learned[:users] = self.learned_items_
        learned[touched_users] = history.take(touched_users).item_set_fingerprints(self.n_items)
        self.learned_items_ = learned
        self.gram_ = self._gram()
        return self

    def _gram(self) -> np.ndarray:
        """(f, f) YᵀY + λI, the part of every fold-in that depends only on the model."""
        y = self.item_factors_.astype(np.float64)
        return y.T @ y + self.regularization * np.eye(y.shape[1])

    def _fold_in(self, histories: Histories) -> np.ndarray:
        """Implicit-ALS user solve with confidence c = alpha on consumed items (implicit's
        ``recalculate_user``; training weighs items alpha·r): (YᵀY + (c - 1)·Y_uᵀY_u + λI) x =
        c·Y_uᵀ1, each distinct item once."""
        y = self.item_factors_.astype(np.float64)  # (n_items, f)
        c = self.alpha
        seen = histories.to_csr(self.n_items)
        a = np.repeat(self.gram_[None], len(histories), axis=0)  # (n, f, f)
        b = c * (seen @ y)  # (n, f)
        for row in range(len(histories)):
            yu = y[seen.indices[seen.indptr[row] : seen.indptr[row + 1]]]
            a[row] += (c - 1) * yu.T @ yu
        return np.linalg.solve(a, b[..., None])[..., 0].astype(np.float32)

    # incremental fold-in (capabilities.Incremental): the normal equations add up per item
    def start(self, events: Sequence[Event]) -> FoldInState:
        f = self.item_factors_.shape[1]
        empty = FoldInState(frozenset(), np.zeros((f, f)), np.zeros(f))
        return self.advance(empty, events)

    def advance(self, state: FoldInState, events: Sequence[Event]) -> FoldInState:
        items = self.query_histories(events=[events]).items
        new = sorted(set(items.tolist()) - state.seen)  # the fold-in counts an item once
        if not new:
            return state
        y = self.item_factors_[new].astype(np.float64)  # (m, f)
        return FoldInState(
            state.seen | frozenset(new),
            state.outer + (self.alpha - 1) * y.T @ y,
            state.total + self.alpha * y.sum(axis=0),
        )

    def query_vector(self, state: FoldInState) -> np.ndarray:
        return np.linalg.solve(self.gram_ + state.outer, state.total).astype(np.float32)

    def user_vectors(self, histories: Histories) -> np.ndarray:
        """(n, f) user vectors: learned ones where a known user still has exactly the items the
        vector was learned from, else folded in (a changed history of the same length too)."""
        users = histories.users
        known = users >= 0
        unchanged = np.zeros(len(histories), bool)
        fingerprints = histories.take(np.flatnonzero(known)).item_set_fingerprints(self.n_items)
        unchanged[known] = fingerprints == self.learned_items_[users[known]]
        vectors = np.empty((len(histories), self.item_factors_.shape[1]), np.float32)
        vectors[unchanged] = self.user_factors_[users[unchanged]]
        changed = np.flatnonzero(~unchanged)
        if len(changed):
            vectors[changed] = self._fold_in(histories.take(changed))
        return vectors

    def _forget_user_rows(self, keep: np.ndarray, renumber: np.ndarray) -> None:
        super()._forget_user_rows(keep, renumber)
        self.learned_items_ = self.learned_items_[keep]

    def _get_state(self) -> dict[str, np.ndarray]:
        return {**super()._get_state(), "learned_items": self.learned_items_}

    def _set_state(self, state: SavedState) -> None:
        super()._set_state(state)
        # models saved before the fingerprints: their histories are the ones they learned from
        learned = state.get("learned_items")
        if learned is None:
            learned = self.history_.item_set_fingerprints(len(self.item_factors_))
        if learned.shape != (len(self.history_),) or learned.dtype != np.uint64:
            raise DataFormatError(
                f"{state.path}: 'learned_items' must be one uint64 per user,"
                f" not {learned.dtype} {learned.shape}"
            )
        self.learned_items_ = learned
        self.gram_ = self._gram()

"""The one interface every driftrec model shares (scikit-learn style).

A model is configured in its constructor, learns in `fit(dataset)`, scores a batch of event
sequences in `score(histories)`, answers in `recommend(users or sequences, k)`, and is written and
read back with `save(path)` / `load(path)`. Scoring takes raw histories, not only user indices, so a
model can answer for a user it never saw or for a history that grew since training.

Model directory layout (shared by all models):

    config.json          {"model": name, "params": {...}, "driftrec_version": ..., "info": {...}}
    state.safetensors    every fitted array (factors, similarity matrices, training histories)
    ids.json             external user and item ids, in index order
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from safetensors.numpy import load_file, save_file

from driftrec.data.dataset import Dataset
from driftrec.data.histories import UNKNOWN_USER, Histories
from driftrec.data.split import EvalSet
from driftrec.text import get_encoder

_HISTORY_FIELDS = ("indptr", "items", "timestamps", "events", "values", "users")


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best items per row, best first, ties broken by lower item index.

    Deterministic (unlike argpartition alone), so evaluation figures do not depend on tie order.
    scores: (n, n_items) -> (n, k) int64
    """
    n, n_items = scores.shape
    k = min(k, n_items)
    if k == 0:
        return np.zeros((n, 0), np.int64)
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]  # (n, 1) k-th largest value
    above = scores > kth
    tied = scores == kth
    # Take all items above the threshold, then the lowest-index tied items to fill k places.
    room = k - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= room))
    cols = np.nonzero(chosen)[1].reshape(n, k)  # ascending item index within each row
    order = np.argsort(-np.take_along_axis(scores, cols, axis=1), axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1)


def mask_seen(scores: np.ndarray, histories: Histories) -> None:
    """Set the score of every item already in a row's history to -inf, in place."""
    scores[histories.event_rows(), histories.items] = -np.inf


@dataclass(frozen=True)
class Recommendations:
    """Top-k answers for a batch: external item ids and scores, best first."""

    item_ids: np.ndarray  # (n, k) object
    scores: np.ndarray  # (n, k) float32
    items: np.ndarray  # (n, k) int64 item indices
    users: list[str] | None = None

    def to_frame(self) -> pd.DataFrame:
        """Long table: one row per (query, rank)."""
        n, k = self.items.shape
        return pd.DataFrame(
            {
                "query": np.repeat(np.arange(n), k),
                "user": np.repeat(self.users if self.users is not None else [None] * n, k),
                "rank": np.tile(np.arange(1, k + 1), n),
                "item": self.item_ids.ravel(),
                "score": self.scores.ravel(),
            }
        )


class Recommender(ABC):
    """Base class of every model. Subclasses implement `_fit`, `score` and the state hooks."""

    name: ClassVar[str]

    user_ids_: np.ndarray
    item_ids_: np.ndarray
    history_: Histories  # every training user's item events, oldest first

    # ------------------------------------------------------------------ configuration
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, as scikit-learn exposes them (saved in config.json)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {p: getattr(self, p) for p in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ learning
    def fit(self, dataset: Dataset, valid: EvalSet | None = None) -> Self:
        """Learn from every item event in ``dataset``; keeps each user's history for `recommend`.

        ``valid`` (held-out events, e.g. ``split.valid``) lets iterative models stop early and keep
        their best epoch; models without epochs ignore it.
        """
        self.user_ids_ = np.asarray(dataset.user_ids, dtype=object)
        self.item_ids_ = np.asarray(dataset.item_ids, dtype=object)
        self.history_ = dataset.histories()
        self._fit(dataset, valid)
        return self

    @abstractmethod
    def _fit(self, dataset: Dataset, valid: EvalSet | None = None) -> None: ...

    @property
    def n_items(self) -> int:
        return len(self.item_ids_)

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "history_")

    # ------------------------------------------------------------------ answering
    @abstractmethod
    def score(self, histories: Histories) -> np.ndarray:
        """Scores of every item for every row, higher is better: (n, n_items) float32."""

    def recommend(
        self,
        users: Sequence[str] | None = None,
        k: int = 10,
        *,
        sequences: Sequence[Sequence[str]] | None = None,
        text: str | None = None,
        text_weight: float = 0.5,
        exclude_seen: bool = True,
    ) -> Recommendations:
        """Top-``k`` items for known ``users`` (external ids), for raw ``sequences`` of external
        item ids (oldest first, e.g. a new user's session), or for a free-text interest.

        ``text`` alone ranks items by how close their text is to the sentence; given with users
        or sequences, each row's scores and the text's are standardised and mixed, the text
        weighing ``text_weight``. Only models that read item text accept it. Unknown ids raise."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if not 0.0 <= text_weight <= 1.0:
            raise ValueError(f"text_weight must be in [0, 1], got {text_weight}")
        if text is not None and users is None and sequences is None:
            histories = Histories.from_sequences([[]])
            scores = self.text_scores([text])
        else:
            histories = self.query_histories(users, sequences)
            scores = self.score(histories)
            if text is not None:
                from_text = np.repeat(self.text_scores([text]), len(histories), axis=0)
                scores = (1 - text_weight) * _standardise(scores) + text_weight * _standardise(
                    from_text
                )
        scores = scores.astype(np.float32, copy=False)
        if exclude_seen:
            mask_seen(scores, histories)
        best = top_k(scores, k)
        return Recommendations(
            item_ids=self.item_ids_[best],
            scores=np.take_along_axis(scores, best, axis=1),
            items=best,
            users=None if users is None else [str(u) for u in users],
        )

    def _text_space(self) -> tuple[str, np.ndarray] | None:
        """For models that read text: the language model and the (n_items, dim) embeddings of
        the item texts in its space."""
        return None

    def text_scores(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), n_items) cosine similarity of each text to every item's text, in the
        language model's space: a free-text interest ranks items with no history at all."""
        space = self._text_space()
        if space is None:
            raise ValueError(
                f"model {self.name!r} does not read text: use 'content', or a sequence model"
                " trained with features='text'"
            )
        text_model, vectors = space
        return get_encoder(text_model).encode(list(texts), progress=False) @ vectors.T

    def _new_item_ids(self, item_ids: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Checked ids of items to add to the catalog: as many as texts, none known or repeated."""
        ids = [str(i) for i in item_ids]
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} item ids but {len(texts)} texts")
        clash = set(ids) & set(self.item_ids_.tolist()) or {i for i in ids if ids.count(i) > 1}
        if clash:
            raise ValueError(f"item id {sorted(clash)[0]!r} is already in the catalog or repeated")
        return np.asarray(ids, dtype=object)

    def query_histories(
        self,
        users: Sequence[str] | None = None,
        sequences: Sequence[Sequence[str]] | None = None,
    ) -> Histories:
        """The batch `recommend` scores: known users' training histories, or raw sequences of
        external item ids (oldest first). Unknown ids raise KeyError naming the first one."""
        if (users is None) == (sequences is None):
            raise ValueError("pass exactly one of users= or sequences=")
        if users is not None:
            return self.histories_for(users)
        index = pd.Index(self.item_ids_)
        rows = []
        for seq in sequences:
            found = index.get_indexer([str(i) for i in seq])
            if (found < 0).any():
                raise KeyError(f"unknown item id {str(seq[int(np.argmax(found < 0))])!r}")
            rows.append(found)
        return Histories.from_sequences(rows)

    def histories_for(self, users: Sequence[str]) -> Histories:
        """Training histories of known users, by external id."""
        index = pd.Index(self.user_ids_).get_indexer([str(u) for u in users])
        if (index < 0).any():
            missing = str(users[int(np.argmax(index < 0))])
            raise KeyError(
                f"unknown user id {missing!r}: not in the training data; score their events as"
                " a new sequence instead"
            )
        return self.history_.take(index)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        """Fitted arrays of the subclass (besides ids and histories)."""
        return {}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:  # noqa: B027 - optional hook
        """Restore what `_get_state` returned."""

    def save(self, path: str | Path, info: dict[str, Any] | None = None) -> Path:
        """Write the model directory (config.json, state.safetensors, ids.json)."""
        if not self.is_fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() before save()")
        from driftrec import __version__

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {
            f"history.{f}": np.ascontiguousarray(getattr(self.history_, f)) for f in _HISTORY_FIELDS
        }
        state.update({k: np.ascontiguousarray(v) for k, v in self._get_state().items()})
        save_file(state, str(path / "state.safetensors"))
        ids = {"users": [str(u) for u in self.user_ids_], "items": [str(i) for i in self.item_ids_]}
        (path / "ids.json").write_text(json.dumps(ids))
        config = {
            "model": self.name,
            "params": self.get_params(),
            "driftrec_version": __version__,
            "info": info or {},
        }
        (path / "config.json").write_text(json.dumps(config, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a model directory written by `save` (use `driftrec.models.load` for any model)."""
        path = Path(path)
        config = read_config(path)
        if config["model"] != cls.name:
            raise ValueError(f"{path}: holds a {config['model']!r} model, not {cls.name!r}")
        model = cls(**config["params"])
        state = load_file(str(path / "state.safetensors"))
        ids = json.loads((path / "ids.json").read_text())
        model.user_ids_ = np.array(ids["users"], dtype=object)
        model.item_ids_ = np.array(ids["items"], dtype=object)
        model.history_ = Histories(**{f: state.pop(f"history.{f}") for f in _HISTORY_FIELDS})
        model._set_state(state)
        return model


def _standardise(scores: np.ndarray) -> np.ndarray:
    """Each row shifted and scaled to mean 0 and standard deviation 1, so two scorers mix."""
    finite = np.where(np.isfinite(scores), scores, np.nan)
    mean = np.nanmean(finite, axis=1, keepdims=True)
    std = np.nanstd(finite, axis=1, keepdims=True)
    return (scores - mean) / np.where(std > 0, std, 1.0)


def read_config(path: Path) -> dict[str, Any]:
    """The config.json of a model directory, with a one-line error when it is not one."""
    config_path = Path(path) / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: not a driftrec model directory (no config.json)")
    return json.loads(config_path.read_text())


def sparse_state(prefix: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    """A CSR matrix as named arrays for state.safetensors."""
    return {
        f"{prefix}.data": matrix.data.astype(np.float32),
        f"{prefix}.indices": matrix.indices.astype(np.int64),
        f"{prefix}.indptr": matrix.indptr.astype(np.int64),
        f"{prefix}.shape": np.asarray(matrix.shape, np.int64),
    }


def sparse_from_state(prefix: str, state: dict[str, np.ndarray]) -> sp.csr_matrix:
    """Inverse of `sparse_state`."""
    return sp.csr_matrix(
        (state[f"{prefix}.data"], state[f"{prefix}.indices"], state[f"{prefix}.indptr"]),
        shape=tuple(int(s) for s in state[f"{prefix}.shape"]),
    )


__all__ = [
    "UNKNOWN_USER",
    "Recommendations",
    "Recommender",
    "mask_seen",
    "read_config",
    "top_k",
]

"""Content-based recommendations from a pretrained language model: no training, no cold start.

Every item's text (title, categories, description) and every behaviour text (search queries,
reviews) is embedded in one space by the text encoder. A user's interest vector is the
recency-weighted sum of what they consumed and wrote, each event weighing half as much per
``half_life`` newer events (or ``half_life_days`` days when given); items rank by cosine
similarity to it. Items that nobody has touched, and sentences such as "I recently watched a
sci-fi movie", take part like everything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp

from driftrec.data.dataset import Dataset
from driftrec.data.events import Event
from driftrec.data.histories import Histories, ragged_positions
from driftrec.data.split import EvalSet
from driftrec.errors import InputError
from driftrec.models.base import Recommender, SavedState, read_only
from driftrec.params import FLAG, NON_NEGATIVE, POSITIVE, TEXT, Rule, optional
from driftrec.text import DEFAULT_TEXT_MODEL, get_encoder, item_features

DAY = 86_400.0


@dataclass(frozen=True)
class InterestState:
    """A history's interest before normalising: the decayed sum of its item vectors (float64)
    and the time of its newest event (None before any)."""

    total: np.ndarray  # (dim,)
    newest: int | None


class ContentBased(Recommender):
    """Recency-weighted language-model interest vector, ranked by cosine similarity."""

    name = "content"
    param_rules: ClassVar[dict[str, Rule]] = {
        "text_model": TEXT,
        "half_life": POSITIVE,
        "half_life_days": optional(POSITIVE),
        "behaviour_weight": NON_NEGATIVE,
        "progress": FLAG,
    }

    def __init__(
        self,
        text_model: str = DEFAULT_TEXT_MODEL,
        half_life: float = 20.0,
        half_life_days: float | None = None,
        behaviour_weight: float = 1.0,
        progress: bool = True,
    ) -> None:
        self.text_model = text_model
        self.half_life = half_life
        self.half_life_days = half_life_days
        self.behaviour_weight = behaviour_weight
        self.progress = progress

    def _encode(self, texts: list[str]) -> np.ndarray:
        return get_encoder(self.text_model).encode(texts, progress=self.progress)

    def _fit(self, dataset: Dataset, valid: EvalSet | None = None) -> None:
        if self.half_life_days is not None:
            dataset.require_timestamps("a half-life in days (use half_life, in events)")
        self.item_vectors_ = item_features(dataset, "text", self.text_model, progress=self.progress)
        ev = dataset.events
        written = ev[ev["text"].notna()]  # searches and reviews, in time order
        self.text_users_ = written["user"].to_numpy(np.int64)
        self.text_times_ = written["timestamp"].to_numpy(np.int64)
        self.text_vectors_ = self._encode(written["text"].astype(str).tolist())  # (n_texts, dim)

    # ------------------------------------------------------------------ answering
    def interest(self, histories: Histories) -> np.ndarray:
        """(n, dim) unit interest vector of each row (zero for a row with nothing to read)."""
        n, n_items = len(histories), self.n_items
        rows = histories.event_rows()
        times = histories.timestamps
        source = histories.items.astype(np.int64)  # column in [item vectors | text vectors]
        text_rows, text_source = self._text_events(histories)
        rows = np.concatenate([rows, text_rows])
        times = np.concatenate([times, self.text_times_[text_source]])
        source = np.concatenate([source, n_items + text_source])
        scale = np.concatenate(
            [np.ones(len(histories.items)), np.full(len(text_rows), self.behaviour_weight)]
        )
        order = np.lexsort((times, rows))  # by row, then time
        rows, times, source, scale = rows[order], times[order], source[order], scale[order]
        counts = np.bincount(rows, minlength=n)
        if self.half_life_days is None:
            ends = np.cumsum(counts)
            age = ends[rows] - 1 - np.arange(len(rows))  # events newer than this one
            weights = 0.5 ** (age / self.half_life)
        else:
            newest = np.zeros(n, np.int64)
            np.maximum.at(newest, rows, times)
            weights = 0.5 ** ((newest[rows] - times) / (self.half_life_days * DAY))
        mixing = sp.csr_matrix(
            (weights * scale, (rows, source)), shape=(n, n_items + len(self.text_vectors_))
        )
        vectors = (
            mixing[:, :n_items] @ self.item_vectors_ + mixing[:, n_items:] @ self.text_vectors_
        )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    def _text_events(self, histories: Histories) -> tuple[np.ndarray, np.ndarray]:
        """(row, index into the text events) of every training-time text of each row's user,
        up to the row's newest event (nothing written later leaks into an earlier query)."""
        known = np.flatnonzero(histories.users >= 0)
        if len(known) == 0 or len(self.text_users_) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        users = histories.users[known]
        lo = np.searchsorted(self.text_users_, users, side="left")
        hi = np.searchsorted(self.text_users_, users, side="right")
        rows = np.repeat(known, hi - lo)
        index = ragged_positions(lo, hi)[1].astype(np.int64)
        lengths = histories.lengths[rows]
        newest = np.zeros(len(rows), np.int64)  # a row with no events (maybe a batch with none)
        has = lengths > 0
        newest[has] = histories.timestamps[histories.indptr[rows[has] + 1] - 1]
        keep = (lengths == 0) | (self.text_times_[index] <= newest)
        return rows[keep], index[keep]

    def score(self, histories: Histories) -> np.ndarray:
        return self.interest(histories) @ self.item_vectors_.T

    # incremental interest (capabilities.Incremental): older events decay, new ones add
    def start(self, events: Sequence[Event]) -> InterestState:
        empty = InterestState(np.zeros(self.item_vectors_.shape[1]), None)
        return self.advance(empty, events)

    def advance(self, state: InterestState, events: Sequence[Event]) -> InterestState:
        h = self.query_histories(events=[events])  # in time order
        if len(h.items) == 0:
            return state
        times = h.timestamps
        if state.newest is not None and times[0] < state.newest:
            raise InputError("advance takes events no older than those already applied")
        if self.half_life_days is None:
            age = np.arange(len(times))[::-1].astype(np.float64)  # newer events than each
            older = float(len(times))
            half_life = self.half_life
        else:
            age = (times[-1] - times).astype(np.float64)
            older = float(times[-1] - (state.newest if state.newest is not None else times[-1]))
            half_life = self.half_life_days * DAY
        added = 0.5 ** (age / half_life) @ self.item_vectors_[h.items].astype(np.float64)
        return InterestState(state.total * 0.5 ** (older / half_life) + added, int(times[-1]))

    def query_vector(self, state: InterestState) -> np.ndarray:
        norm = np.linalg.norm(state.total)
        return (state.total / (norm if norm > 0 else 1.0)).astype(np.float32)

    # the retrieval contract (capabilities.Factorised)
    def query_vectors(self, histories: Histories) -> np.ndarray:
        return self.interest(histories)

    def item_vectors(self) -> np.ndarray:
        return read_only(self.item_vectors_)

    def item_bias(self) -> None:
        return None

    def _state_items(self) -> int:
        return len(self.item_vectors_)

    def _text_space(self) -> tuple[str, np.ndarray]:
        return self.text_model, self.item_vectors_

    def add_items(self, item_ids: Sequence[str], texts: Sequence[str]) -> Self:
        """Grow the catalog: new items are embedded and ranked like every other."""
        ids = self._new_item_ids(item_ids, texts)
        self.item_vectors_ = np.concatenate([self.item_vectors_, self._encode(list(texts))])
        self.item_ids_ = np.concatenate([self.item_ids_, ids])
        return self

    def _forget_user_rows(self, keep: np.ndarray, renumber: np.ndarray) -> None:
        kept = keep[self.text_users_]  # the texts the remaining users wrote
        self.text_users_ = renumber[self.text_users_[kept]]
        self.text_times_ = self.text_times_[kept]
        self.text_vectors_ = self.text_vectors_[kept]

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        return {
            "item_vectors": self.item_vectors_,
            "text_users": self.text_users_,
            "text_times": self.text_times_,
            "text_vectors": self.text_vectors_,
        }

    def _set_state(self, state: SavedState) -> None:
        self.item_vectors_ = state["item_vectors"]
        self.text_users_ = state["text_users"]
        self.text_times_ = state["text_times"]
        self.text_vectors_ = state["text_vectors"]


__all__ = ["ContentBased", "InterestState"]

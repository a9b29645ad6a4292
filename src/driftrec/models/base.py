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
from dataclasses import dataclass, replace
from numbers import Integral
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from driftrec.data.dataset import DEFAULT_EVENT_TYPES, MANIFEST, Dataset
from driftrec.data.events import Event
from driftrec.data.fields import TIMESTAMP_RANGE, TIMESTAMP_RANGE_TEXT
from driftrec.data.histories import UNKNOWN_USER, Histories
from driftrec.data.split import EvalSet
from driftrec.errors import DataFormatError, InputError, UnknownIdError
from driftrec.params import FLOAT32, PROBABILITY, Constraint, Rule, check_params, integer
from driftrec.paths import output_directory, read_json
from driftrec.text import get_encoder

MODEL_MARKER = "config.json"  # the file that makes a directory a model directory
MODEL_MARK = (MODEL_MARKER, "driftrec_version")  # and the key it holds
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
    if np.isnan(scores).any():  # a NaN score ranks last, like -inf (it would break the ties)
        scores = np.where(np.isnan(scores), -np.inf, scores)
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]  # (n, 1) k-th largest value
    above = scores > kth
    tied = scores == kth
    # Take all items above the threshold, then the lowest-index tied items to fill k places.
    room = k - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= room))
    cols = np.nonzero(chosen)[1].reshape(n, k)  # ascending item index within each row
    order = np.argsort(-np.take_along_axis(scores, cols, axis=1), axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1)


def best_items(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best items of each row (`top_k`) and their scores, leaving out items scored
    -inf (excluded): (n, k) item indices padded with -1 and scores padded with -inf, each row's
    real entries first. The one home of "an excluded item never comes back"."""
    best = top_k(scores, k)
    top = np.take_along_axis(scores, best, axis=1)
    real = top > -np.inf  # a prefix of each row: top_k ranks -inf last
    return np.where(real, best, -1), np.where(real, top, -np.inf)


def mask_seen(scores: np.ndarray, histories: Histories) -> None:
    """Set the score of every item already in a row's history to -inf, in place."""
    scores[histories.event_rows(), histories.items] = -np.inf


@dataclass(frozen=True)
class Recommendations:
    """Top-k answers for a batch, best first: external item ids, scores and item indices.

    A row may hold fewer than k items: an excluded item (a seen one, scored -inf) never comes
    back, however large k is. The arrays are (n, width), width the longest row; the places past
    a row's length hold item index -1, id None and score NaN. `lengths` counts each row's items
    and `to_frame` lists only real ones.
    """

    item_ids: np.ndarray  # (n, width) object; None past a row's length
    scores: np.ndarray  # (n, width) float32; NaN past a row's length
    items: np.ndarray  # (n, width) int64 item indices; -1 past a row's length
    users: list[str] | None = None

    @classmethod
    def best(
        cls, scores: np.ndarray, k: int, item_ids: np.ndarray, users: list[str] | None = None
    ) -> Recommendations:
        """The ``k`` best items of each row of ``scores`` (n, n_items), leaving out every item
        scored -inf (excluded), so rows run short rather than repeat what was excluded."""
        best, top = best_items(scores, k)
        real = best >= 0
        width = int(real.sum(axis=1).max(initial=0))
        best, top, real = best[:, :width], top[:, :width], real[:, :width]
        return cls(
            item_ids=np.where(real, item_ids[np.maximum(best, 0)], None),
            scores=np.where(real, top, np.nan).astype(np.float32),
            items=best,
            users=users,
        )

    @property
    def lengths(self) -> np.ndarray:
        """(n,) how many items each row holds."""
        return (self.items >= 0).sum(axis=1)

    def to_frame(self) -> pd.DataFrame:
        """Long table: one row per (query, rank), real entries only."""
        real = self.items >= 0
        query, position = np.nonzero(real)
        users = self.users if self.users is not None else [None] * len(self.items)
        return pd.DataFrame(
            {
                "query": query,
                "user": np.asarray(users, dtype=object)[query],
                "rank": position + 1,
                "item": self.item_ids[real],
                "score": self.scores[real],
            }
        )


class SavedState(dict[str, np.ndarray]):
    """The arrays read from a model's state.safetensors; asking for one it lacks is a
    `DataFormatError` naming the file, not a KeyError from deep inside a model."""

    def __init__(self, path: Path, arrays: dict[str, np.ndarray]) -> None:
        super().__init__(arrays)
        self.path = path

    def __missing__(self, key: str) -> np.ndarray:
        raise DataFormatError(
            f"{self.path}: has no array {key!r}; the file is incomplete or from another model"
        )


class Recommender(ABC):
    """Base class of every model. Subclasses implement `_fit`, `score` and the state hooks."""

    name: ClassVar[str]
    # What each constructor parameter may be; a subclass extends its parent's rules.
    param_rules: ClassVar[dict[str, Rule]] = {}
    param_constraints: ClassVar[tuple[Constraint, ...]] = ()  # across parameters
    # Whether `fit` uses ``valid`` to stop training (iterative models keep their best epoch).
    stops_early: ClassVar[bool] = False

    user_ids_: np.ndarray
    item_ids_: np.ndarray
    event_types_: tuple[str, ...]  # event code -> name, as in the training data
    # look-up tables of the current id arrays (see _indices); not saved
    _id_indexes: dict[str, tuple[np.ndarray, dict[str, int]]] = {}  # noqa: RUF012 - replaced
    history_: Histories  # every training user's item events, oldest first
    trained_until_: int  # time of the newest event learned from: later ones are new to it

    # ------------------------------------------------------------------ configuration
    @classmethod
    def param_names(cls) -> list[str]:
        """The constructor's parameters, in order."""
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, as scikit-learn exposes them (saved in config.json)."""
        return {p: getattr(self, p) for p in self.param_names()}

    def set_params(self, **params: Any) -> Self:
        """Change constructor arguments (scikit-learn's `set_params`), checked by the same
        rules; what the model learned is kept."""
        unknown = [k for k in params if k not in self.param_names()]
        if unknown:
            raise InputError(f"unknown parameter {unknown[0]!r} for model {self.name!r}")
        for key, value in params.items():
            setattr(self, key, value)
        self._validate_params()
        self._params_changed()
        return self

    def _params_changed(self) -> None:
        """Derive what depends on the parameters again (a model that derives any)."""
        return None

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Self:
        """A model configured with ``params``, refused with an `InputError` when one is unknown
        or outside its `param_rules` (before any data is read)."""
        names = cls.param_names()
        for key in params:
            if key not in names:
                raise InputError(
                    f"unknown parameter {key!r} for model {cls.name!r}; valid: {', '.join(names)}"
                )
        model = cls(**params)
        model._validate_params()
        return model

    def _validate_params(self) -> None:
        """An `InputError` naming the first parameter outside its rule (scikit-learn style)."""
        check_params(self.name, self.get_params(), self.param_rules, self.param_constraints)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ learning
    def fit(self, dataset: Dataset, valid: EvalSet | None = None) -> Self:
        """Learn from every item event in ``dataset``; keeps each user's history for `recommend`.

        ``valid`` (held-out events, e.g. ``split.valid``) lets iterative models stop early and keep
        their best epoch; models without epochs ignore it.
        """
        self._validate_params()
        history = dataset.histories()
        if len(history.items) == 0:
            raise InputError(f"dataset {dataset.name!r} has no item events to learn from")
        self._adopt(dataset, history)
        self._fit(dataset, valid)
        return self

    def _adopt(self, dataset: Dataset, history: Histories) -> None:
        """Take ``dataset``'s ids and event types and its ``history`` as the ones learned from."""
        self.user_ids_ = np.asarray(dataset.user_ids, dtype=object)
        self.item_ids_ = np.asarray(dataset.item_ids, dtype=object)
        self.event_types_ = tuple(dataset.event_types)
        self.history_ = history
        self.trained_until_ = int(history.timestamps.max())

    @abstractmethod
    def _fit(self, dataset: Dataset, valid: EvalSet | None = None) -> None: ...

    def update_histories(self, dataset: Dataset) -> Self:
        """Answer from ``dataset``'s histories from now on, without learning again: `recommend`
        conditions on, and excludes, every event in it. ``dataset`` has the id maps the model was
        fitted with, e.g. the whole data of which the model learned from a part."""
        if not self.is_fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")
        if not self.has_ids_of(dataset):
            raise InputError(
                f"dataset {dataset.name!r} has other user or item ids than the model was fitted on"
            )
        self.history_ = dataset.histories()
        return self

    def _growth(self, dataset: Dataset, since: int) -> Histories:
        """The histories of ``dataset``, which holds what the model learned from and newer
        events, checked as data to continue training on (`capabilities.ContinuesTraining`;
        `_adopt` it then): an `InputError` when its ids do not start with the model's, in order
        (`Dataset.reindexed` puts them first), or it has no item event after ``since``."""
        if not self.is_fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")
        self._validate_params()
        users, items, types = len(self.user_ids_), self.n_items, len(self.event_types_)
        if not (
            np.array_equal(dataset.user_ids[:users], self.user_ids_)
            and np.array_equal(dataset.item_ids[:items], self.item_ids_)
            and tuple(dataset.event_types[:types]) == self.event_types_
        ):
            raise InputError(
                f"dataset {dataset.name!r} does not list the model's users, items and event"
                " types first, in the model's order; pass dataset.reindexed(model.user_ids_,"
                " model.item_ids_, model.event_types_)"
            )
        history = dataset.histories()
        if not (history.timestamps > since).any():
            raise InputError(
                f"dataset {dataset.name!r} has no item events after time {since}: nothing new"
                " to continue training on"
            )
        return history

    def has_ids_of(self, dataset: Dataset) -> bool:
        """Whether ``dataset`` maps users and items to the indices this model was fitted with."""
        return np.array_equal(dataset.user_ids, self.user_ids_) and np.array_equal(
            dataset.item_ids, self.item_ids_
        )

    def forget_users(self, users: Sequence[str]) -> list[str]:
        """Erase training users (external ids) from the model: their ids, their saved histories
        and every per-user array a subclass keeps (learned user factors, written texts), so a
        saved copy no longer names them (a deletion request). Other users keep what they had.
        Returns the ids that were known and are now gone."""
        index = self._indices("user", users)
        gone = np.unique(index[index >= 0])
        if len(gone) == 0:
            return []
        keep = np.ones(len(self.user_ids_), bool)
        keep[gone] = False
        renumber = np.cumsum(keep) - 1  # old user index -> new one (meaningless where dropped)
        self._forget_user_rows(keep, renumber)
        rows = np.flatnonzero(keep)
        self.history_ = replace(self.history_.take(rows), users=np.arange(len(rows)))
        forgotten = [str(u) for u in self.user_ids_[gone]]
        self.user_ids_ = self.user_ids_[keep]
        return forgotten

    def _forget_user_rows(self, keep: np.ndarray, renumber: np.ndarray) -> None:  # noqa: B027
        """Drop the per-user state of the users not in ``keep`` (n_users,) bool; ``renumber``
        maps a kept user's old index to its new one. Models with no per-user state do nothing."""

    @abstractmethod
    def _state_items(self) -> int:
        """How many items the fitted arrays score (checked against ids.json when loading)."""

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
        events: Sequence[Sequence[Event]] | None = None,
        text: str | None = None,
        text_weight: float = 0.5,
        exclude_seen: bool = True,
    ) -> Recommendations:
        """Top-``k`` items for known ``users`` (external ids), for raw ``sequences`` of external
        item ids (oldest first, e.g. a new user's session), for rows of live ``events`` (each an
        `Event` with its time, type and value, as the model saw them in training), or for a
        free-text interest.

        ``text`` alone ranks items by how close their text is to the sentence; given with users
        or sequences, each row's scores and the text's are standardised and mixed, the text
        weighing ``text_weight``. Only models that read item text accept it. Unknown ids raise.
        With ``exclude_seen``, a row holds fewer than ``k`` items when fewer are left unseen."""
        integer(1).check(k, "k")
        PROBABILITY.check(text_weight, "text_weight")
        if text is not None and users is None and sequences is None and events is None:
            histories = Histories.from_sequences([[]])
            scores = self.text_scores([text])
        else:
            histories = self.query_histories(users, sequences, events)
            scores = self.score(histories)
            if text is not None:
                from_text = np.repeat(self.text_scores([text]), len(histories), axis=0)
                scores = (1 - text_weight) * _standardise(scores) + text_weight * _standardise(
                    from_text
                )
        scores = scores.astype(np.float32, copy=False)
        if exclude_seen:
            mask_seen(scores, histories)
        return Recommendations.best(
            scores, k, self.item_ids_, None if users is None else [str(u) for u in users]
        )

    @property
    def history_window(self) -> int | None:
        """How many of a history's newest item events the model reads (None: all of them), so a
        live service hands it only those."""
        return None

    @property
    def reads_text(self) -> bool:
        """Whether the model ranks by text (free-text interests, items added with a text)."""
        return self._text_space() is not None

    def item_indices(self, item_ids: Sequence[str]) -> np.ndarray:
        """(n,) int64 index of each external item id; -1 for an id the model does not know."""
        return self._indices("item", item_ids)

    def history_events(self, user: str) -> list[Event]:
        """A training user's saved history as `Event`s (oldest first), the start of their live
        history; empty for a user the model did not train on."""
        row = self._indices("user", [user])[0]
        if row < 0:
            return []
        history = self.history_
        lo, hi = history.indptr[row], history.indptr[row + 1]
        names = self.event_types_
        return [
            Event(str(self.item_ids_[i]), int(t), names[e], float(v))
            for i, t, e, v in zip(
                history.items[lo:hi],
                history.timestamps[lo:hi],
                history.events[lo:hi],
                history.values[lo:hi],
                strict=True,
            )
        ]

    def _text_space(self) -> tuple[str, np.ndarray] | None:
        """For models that read text: the language model and the (n_items, dim) embeddings of
        the item texts in its space."""
        return None

    def text_scores(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), n_items) cosine similarity of each text to every item's text, in the
        language model's space: a free-text interest ranks items with no history at all."""
        space = self._text_space()
        if space is None:
            raise InputError(
                f"model {self.name!r} does not read text: use 'content', or a sequence model"
                " trained with features='text'"
            )
        text_model, vectors = space
        return get_encoder(text_model).encode(list(texts), progress=False) @ vectors.T

    def _new_item_ids(self, item_ids: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Checked ids of items to add to the catalog: as many as texts, none known or repeated."""
        ids = [str(i) for i in item_ids]
        if len(ids) != len(texts):
            raise InputError(f"{len(ids)} item ids but {len(texts)} texts")
        clash = set(ids) & set(self.item_ids_.tolist()) or {i for i in ids if ids.count(i) > 1}
        if clash:
            raise InputError(f"item id {sorted(clash)[0]!r} is already in the catalog or repeated")
        return np.asarray(ids, dtype=object)

    def query_histories(
        self,
        users: Sequence[str] | None = None,
        sequences: Sequence[Sequence[str]] | None = None,
        events: Sequence[Sequence[Event]] | None = None,
    ) -> Histories:
        """The batch `recommend` scores: known users' training histories, raw sequences of
        external item ids (oldest first; times are positions), or rows of `Event`s carrying
        times, event types and values like stored events. Unknown ids raise `UnknownIdError`
        naming the first."""
        if sum(x is not None for x in (users, sequences, events)) != 1:
            raise InputError("pass exactly one of users=, sequences= or events=")
        if users is not None:
            return self.histories_for(users)
        if events is not None:
            return self._event_histories(events)
        rows = []
        for seq in sequences:
            found = self._indices("item", seq)
            if (found < 0).any():
                raise UnknownIdError(f"unknown item id {str(seq[int(np.argmax(found < 0))])!r}")
            rows.append(found)
        return Histories.from_sequences(rows)

    def _event_histories(self, rows: Sequence[Sequence[Event]]) -> Histories:
        """Histories of live events: each row's item events in time order (equal times keep
        their order); text-only events stay out, as they do in training histories."""
        codes = {name: code for code, name in enumerate(self.event_types_)}
        low, high = TIMESTAMP_RANGE
        parts: list[list[Event]] = []
        for row in rows:
            for e in row:
                if e.event not in codes:
                    raise InputError(
                        f"unknown event type {e.event!r}; this model knows: {', '.join(codes)}"
                    )
                if not isinstance(e.timestamp, Integral) or not low <= e.timestamp <= high:
                    raise InputError(
                        f"event timestamp {e.timestamp!r} is not Unix seconds within"
                        f" {TIMESTAMP_RANGE_TEXT}"
                    )
                if not FLOAT32.allows(e.value):
                    raise InputError(f"event value {e.value!r} is not a finite float32 number")
            parts.append(sorted((e for e in row if e.item is not None), key=lambda e: e.timestamp))
        flat = [e for part in parts for e in part]
        found = self._indices("item", [e.item for e in flat])
        if (found < 0).any():
            raise UnknownIdError(f"unknown item id {flat[int(np.argmax(found < 0))].item!r}")
        indptr = np.zeros(len(parts) + 1, np.int64)
        np.cumsum([len(p) for p in parts], out=indptr[1:])
        return Histories(
            indptr=indptr,
            items=found.astype(np.int32),
            timestamps=np.array([int(e.timestamp) for e in flat], np.int64),
            events=np.array([codes[e.event] for e in flat], np.int8),
            values=np.array([e.value for e in flat], np.float32),
            users=np.full(len(parts), UNKNOWN_USER, np.int64),
        )

    def _indices(self, kind: str, ids: Sequence[object]) -> np.ndarray:
        """(len(ids),) int64 index of each user or item id (``kind``), -1 for an unknown one.

        The look-up table is a dict built once per ids array (fit, load, add_items and
        forget_users assign new ones), not on every request: hashing a million ids takes
        longer than scoring, and a dict answers one id in well under a microsecond where a
        pandas indexer takes tens (what a live request asks for)."""
        known = self.user_ids_ if kind == "user" else self.item_ids_
        cached = self._id_indexes.get(kind)
        if cached is None or cached[0] is not known:
            cached = (known, {str(i): n for n, i in enumerate(known)})
            self._id_indexes = {**self._id_indexes, kind: cached}  # replaced, never mutated
        table = cached[1]
        return np.fromiter((table.get(str(i), -1) for i in ids), np.int64, len(ids))

    def histories_for(self, users: Sequence[str]) -> Histories:
        """Training histories of known users, by external id."""
        index = self._indices("user", users)
        if (index < 0).any():
            missing = str(users[int(np.argmax(index < 0))])
            raise UnknownIdError(
                f"unknown user id {missing!r}: not in the training data; score their events as"
                " a new sequence instead"
            )
        return self.history_.take(index)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        """Fitted arrays of the subclass (besides ids and histories)."""
        return {}

    def _set_state(self, state: SavedState) -> None:  # noqa: B027 - optional hook
        """Restore what `_get_state` returned."""

    def _get_fitted(self) -> dict[str, Any]:
        """Learned values that are not arrays (a training log, a chosen shift), as JSON: saved
        in config.json so a loaded model answers everything the fitted one did."""
        return {}

    def _set_fitted(self, fitted: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what `_get_fitted` returned (an empty dict for models saved before it)."""

    def save(self, path: str | Path, info: dict[str, Any] | None = None) -> Path:
        """Write the model directory (config.json, state.safetensors, ids.json)."""
        if not self.is_fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() before save()")
        from driftrec import __version__

        path = output_directory(path, MODEL_MARK)
        state = {
            f"history.{f}": np.ascontiguousarray(getattr(self.history_, f)) for f in _HISTORY_FIELDS
        }
        state.update({k: np.ascontiguousarray(v) for k, v in self._get_state().items()})
        state_path = path / "state.safetensors"
        state_path.touch()  # a directory it may not write into: a PermissionError naming the file
        save_file(state, str(state_path))
        ids = {
            "users": [str(u) for u in self.user_ids_],
            "items": [str(i) for i in self.item_ids_],
            "event_types": list(self.event_types_),
        }
        (path / "ids.json").write_text(json.dumps(ids))
        config = {
            "model": self.name,
            "params": self.get_params(),
            "driftrec_version": __version__,
            "info": info or {},
            "trained_until": self.trained_until_,
            "fitted": self._get_fitted(),
        }
        (path / MODEL_MARKER).write_text(json.dumps(config, indent=2, allow_nan=False))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a model directory written by `save` (use `driftrec.models.load` for any model).

        Anything wrong with the directory (a file missing, truncated or malformed, parameters
        out of range, ids.json not matching the saved arrays) is a `DataFormatError` naming the
        file, never a traceback from deep inside a model."""
        path = Path(path)
        config = read_config(path)
        if config["model"] != cls.name:
            raise DataFormatError(f"{path}: holds a {config['model']!r} model, not {cls.name!r}")
        try:
            model = cls.from_params(config["params"])
        except InputError as err:
            raise DataFormatError(f"{path / 'config.json'}: {err}") from None
        state = _read_state(path / "state.safetensors")
        ids_path = path / "ids.json"
        model.user_ids_, model.item_ids_, model.event_types_ = _read_ids(ids_path)
        arrays = {f: state[f"history.{f}"] for f in _HISTORY_FIELDS}
        try:
            model.history_ = Histories(**arrays)
        except ValueError as err:  # Histories checks that its arrays agree
            raise DataFormatError(f"{state.path}: corrupted training histories ({err})") from None
        fitted = config.get("fitted", {})
        try:
            if not isinstance(fitted, dict):
                raise InputError("'fitted' must be an object")
            model._set_fitted(fitted)  # before the state: it may say how to build the network
        except InputError as err:
            raise DataFormatError(f"{path / MODEL_MARKER}: {err}") from None
        model._set_state(state)
        until = config.get("trained_until")
        if until is None:  # saved before it was recorded: the newest event of its histories
            times = model.history_.timestamps
            until = int(times.max()) if len(times) else 0
        if not isinstance(until, int) or isinstance(until, bool):
            raise DataFormatError(f"{path / MODEL_MARKER}: 'trained_until' must be an integer")
        model.trained_until_ = until
        model._check_loaded(ids_path, state.path)
        return model

    def _check_loaded(self, ids_path: Path, state_path: Path) -> None:
        """Whether ids.json names as many users and items as the loaded arrays hold."""
        users, items = len(self.user_ids_), len(self.item_ids_)
        if len(self.history_) != users:
            raise DataFormatError(
                f"{ids_path}: lists {users} users but {state_path} holds {len(self.history_)};"
                " the two files are from different models"
            )
        if self._state_items() != items:
            raise DataFormatError(
                f"{ids_path}: lists {items} items but {state_path} holds {self._state_items()};"
                " the two files are from different models"
            )
        seen = self.history_.items
        if len(seen) and not (seen.min() >= 0 and seen.max() < items):
            raise DataFormatError(f"{state_path}: training histories name items out of range")


def read_only(array: np.ndarray) -> np.ndarray:
    """A view of ``array`` that cannot be written: what a model hands out of its own state
    (item vectors for an index), so a caller normalising it in place cannot change the model."""
    view = array.view()
    view.flags.writeable = False
    return view


def _standardise(scores: np.ndarray) -> np.ndarray:
    """Each row shifted and scaled to mean 0 and standard deviation 1, so two scorers mix."""
    finite = np.where(np.isfinite(scores), scores, np.nan)
    mean = np.nanmean(finite, axis=1, keepdims=True)
    std = np.nanstd(finite, axis=1, keepdims=True)
    return (scores - mean) / np.where(std > 0, std, 1.0)


def read_config(path: Path) -> dict[str, Any]:
    """The config.json of a model directory, with a one-line error when it is not one."""
    config_path = Path(path) / MODEL_MARKER
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: not a driftrec model directory (no config.json)")
    config = read_json(config_path)
    if not (isinstance(config.get("model"), str) and isinstance(config.get("params"), dict)):
        raise DataFormatError(
            f'{config_path}: not a driftrec model config (needs "model": a name and'
            ' "params": an object)'
        )
    return config


def trained_on(model_dir: Path) -> Path | None:
    """The dataset directory a model was trained on (its titles and categories), when the
    model's config names one that is still a dataset where it was."""
    recorded = read_config(Path(model_dir)).get("info", {}).get("dataset")
    if recorded and (Path(recorded) / MANIFEST).is_file():
        return Path(recorded)
    return None


def _present(path: Path) -> Path:
    """``path``, or a `DataFormatError` when that file of the model directory is missing."""
    if not path.is_file():
        raise DataFormatError(f"{path}: missing; the model directory is incomplete")
    return path


def _read_ids(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The user and the item ids of ids.json, each an object array of strings, and the event
    types (the default ones for models saved before they were kept)."""
    ids = read_json(_present(path))
    event_types = ids.get("event_types", list(DEFAULT_EVENT_TYPES))
    if not isinstance(event_types, list) or not all(isinstance(e, str) for e in event_types):
        raise DataFormatError(f"{path}: 'event_types' must be a list of names")
    lists = []
    for key in ("users", "items"):
        if not isinstance(ids.get(key), list):
            raise DataFormatError(f"{path}: has no {key!r} list of ids")
        values = pd.Series([str(i) for i in ids[key]], dtype=object)
        repeated = values[values.duplicated()]
        if len(repeated):
            raise DataFormatError(f"{path}: {key[:-1]} id {repeated.iloc[0]!r} is listed twice")
        lists.append(values.to_numpy(dtype=object))
    return lists[0], lists[1], tuple(event_types)


def _read_state(path: Path) -> SavedState:
    """The arrays of state.safetensors; a `DataFormatError` when missing, truncated or corrupted."""
    try:
        return SavedState(path, load_file(str(_present(path))))
    except (SafetensorError, OSError) as err:
        raise DataFormatError(f"{path}: not a readable safetensors file ({err})") from None


def sparse_state(prefix: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    """A CSR matrix as named arrays for state.safetensors."""
    return {
        f"{prefix}.data": matrix.data.astype(np.float32),
        f"{prefix}.indices": matrix.indices.astype(np.int64),
        f"{prefix}.indptr": matrix.indptr.astype(np.int64),
        f"{prefix}.shape": np.asarray(matrix.shape, np.int64),
    }


def sparse_from_state(prefix: str, state: SavedState) -> sp.csr_matrix:
    """Inverse of `sparse_state`."""
    return sp.csr_matrix(
        (state[f"{prefix}.data"], state[f"{prefix}.indices"], state[f"{prefix}.indptr"]),
        shape=tuple(int(s) for s in state[f"{prefix}.shape"]),
    )


__all__ = [
    "UNKNOWN_USER",
    "Recommendations",
    "Recommender",
    "SavedState",
    "best_items",
    "mask_seen",
    "read_config",
    "top_k",
    "trained_on",
]

"""Train / validation / test splits that respect time.

Two protocols:

- `leave_one_out`: each user's last item event is the test target, the one before it the validation
  target, the rest is training. The test history is the training history plus the validation event,
  so sequence models see the whole past, as in SASRec and RecBole.
- `temporal_split`: one global cut in time; what a user does after the cut is their target set.

Equal timestamps keep their source order (the dataset is sorted with a stable sort), so "last" is
well defined even on MovieLens, where many ratings share a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftrec.data.dataset import NO_ITEM, Dataset
from driftrec.data.histories import Histories
from driftrec.errors import InputError


@dataclass(frozen=True)
class EvalSet:
    """What a model sees for each evaluated user and what it should have ranked high."""

    histories: Histories  # (n users) the model's input, users indexed as in the training data
    target_indptr: np.ndarray  # (n + 1,) offsets into target_items
    target_items: np.ndarray  # (n_targets,) item indices
    target_values: np.ndarray  # (n_targets,) ratings or weights of the target events
    # What each row's user really consumed, where some of it is hidden from the model (items held
    # out of training, `driftrec.evaluation.coldstart`): still not candidates. None: histories.
    seen: Histories | None = None

    def __len__(self) -> int:
        return len(self.histories)

    def target_rows(self) -> np.ndarray:
        """(n_targets,) the evaluation row of every target."""
        return np.repeat(np.arange(len(self)), np.diff(self.target_indptr))

    def target_matrix(self, n_items: int) -> np.ndarray:
        """(n, n_items) boolean: which items are targets of each row."""
        dense = np.zeros((len(self), n_items), bool)
        dense[self.target_rows(), self.target_items] = True
        return dense

    def targets(self, i: int) -> np.ndarray:
        return self.target_items[self.target_indptr[i] : self.target_indptr[i + 1]]

    def take(self, rows: np.ndarray) -> EvalSet:
        """The evaluation rows ``rows`` only (used to batch and to restrict to a user group)."""
        targets = Histories(
            indptr=self.target_indptr,
            items=self.target_items,
            timestamps=np.zeros(len(self.target_items), np.int64),
            events=np.zeros(len(self.target_items), np.int8),
            values=self.target_values,
            users=self.histories.users,
        ).take(rows)
        seen = None if self.seen is None else self.seen.take(rows)
        return EvalSet(
            self.histories.take(rows), targets.indptr, targets.items, targets.values, seen
        )


# Why a protocol can leave no one to evaluate, said where a user meets an empty evaluation set.
NO_ROWS_HINT = {
    "leave-one-out": "a user needs at least 3 item events to be evaluated",
    "temporal": "a user needs an event before the cut and an item event after it",
}


@dataclass(frozen=True)
class Split:
    """A training dataset (same id maps as the source) and the two evaluation sets."""

    train: Dataset
    valid: EvalSet
    test: EvalSet
    protocol: str
    info: dict[str, Any] = field(default_factory=dict)


def _targets(rows: pd.DataFrame, n_rows: int, row_of: np.ndarray) -> tuple[np.ndarray, ...]:
    """Ragged target arrays for evaluation rows, from target events and each event's row."""
    order = np.argsort(row_of, kind="stable")
    indptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.bincount(row_of, minlength=n_rows), out=indptr[1:])
    return (
        indptr,
        rows["item"].to_numpy(np.int32)[order],
        rows["value"].to_numpy(np.float32)[order],
    )


def leave_one_out(dataset: Dataset, min_history: int = 1) -> Split:
    """Last item event = test, second-to-last = validation, per user.

    Users with fewer than ``min_history + 2`` item events stay wholly in training and are not
    evaluated; how many is recorded in ``split.info``. Text-only events that happen after a user's
    validation event are left out of training so nothing from the future leaks in.
    """
    ev = dataset.events
    is_item = ev["item"].to_numpy() != NO_ITEM
    user = ev["user"].to_numpy()
    # Position of each item event counted from the user's end: 0 = last, 1 = second-to-last.
    item_users = user[is_item]
    counts = np.bincount(item_users, minlength=dataset.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank_in_user = np.arange(len(item_users)) - starts[item_users]
    from_end = np.full(len(ev), -1, np.int64)
    from_end[is_item] = counts[item_users] - 1 - rank_in_user
    evaluated = counts >= min_history + 2
    eval_user = evaluated[user]

    test_mask = eval_user & (from_end == 0)
    valid_mask = eval_user & (from_end == 1)
    # Everything at or after the validation event (in the user's time order) is held out.
    event_pos = np.arange(len(ev))
    valid_pos = np.full(dataset.n_users, len(ev), np.int64)
    valid_pos[user[valid_mask]] = event_pos[valid_mask]
    train_mask = event_pos < valid_pos[user]
    train = dataset.with_events(ev[train_mask])

    users = np.flatnonzero(evaluated)
    train_hist = train.histories(users)
    valid_rows = pd.DataFrame(ev[valid_mask])
    test_rows = pd.DataFrame(ev[test_mask])
    row_of = np.searchsorted(users, valid_rows["user"].to_numpy())
    v_indptr, v_items, v_values = _targets(valid_rows, len(users), row_of)
    valid = EvalSet(train_hist, v_indptr, v_items, v_values)
    # Test input = training history + the validation event.
    valid_event = Histories(
        indptr=v_indptr,
        items=v_items,
        timestamps=valid_rows["timestamp"].to_numpy(np.int64),
        events=valid_rows["event"].to_numpy(np.int8),
        values=v_values,
        users=users.astype(np.int64),
    )
    row_of = np.searchsorted(users, test_rows["user"].to_numpy())
    t_indptr, t_items, t_values = _targets(test_rows, len(users), row_of)
    test = EvalSet(Histories.concat_rows(train_hist, valid_event), t_indptr, t_items, t_values)
    info = {
        "evaluated_users": len(users),
        "users_too_short": int((~evaluated & (counts > 0)).sum()),
        "train_events": int(train_mask.sum()),
        "held_out_text_events": int((~train_mask & ~is_item).sum()),
    }
    return Split(train, valid, test, "leave-one-out", info)


def temporal_split(
    dataset: Dataset, valid_fraction: float = 0.1, test_fraction: float = 0.1
) -> Split:
    """One global cut in time: the latest ``test_fraction`` of events are test targets, the
    ``valid_fraction`` before them validation targets, the rest training.

    A user is evaluated on a part when they have at least one event before it (their history) and
    one item event in it. Validation events extend the test history. Counts go to ``split.info``.
    """
    dataset.require_timestamps("a cut in time (use leave-one-out)")
    if not (
        0 < valid_fraction < 1 and 0 < test_fraction < 1 and valid_fraction + test_fraction < 1
    ):
        raise InputError("valid_fraction and test_fraction must be in (0, 1) and sum below 1")
    ev = dataset.events
    times = np.sort(ev["timestamp"].to_numpy(), kind="stable")
    n = len(times)
    if n == 0:
        raise InputError("temporal_split needs at least one event")
    t_valid = times[n - max(1, round(n * (valid_fraction + test_fraction)))]
    t_test = times[n - max(1, round(n * test_fraction))]
    ts = ev["timestamp"].to_numpy()
    part = np.where(ts < t_valid, 0, np.where(ts < t_test, 1, 2))
    train = dataset.with_events(ev[part == 0])
    before_test = dataset.with_events(ev[part <= 1])
    is_item = ev["item"].to_numpy() != NO_ITEM

    def eval_set(history_source: Dataset, which: int) -> tuple[EvalSet, int]:
        rows = pd.DataFrame(ev[(part == which) & is_item])
        has_history = (
            np.bincount(history_source.item_events()["user"].to_numpy(), minlength=dataset.n_users)
            > 0
        )
        users = np.unique(rows["user"].to_numpy())
        kept = users[has_history[users]]
        rows = rows[np.isin(rows["user"].to_numpy(), kept)]
        row_of = np.searchsorted(kept, rows["user"].to_numpy())
        indptr, items, values = _targets(rows, len(kept), row_of)
        return EvalSet(history_source.histories(kept), indptr, items, values), len(users) - len(
            kept
        )

    valid, valid_cold = eval_set(train, 1)
    test, test_cold = eval_set(before_test, 2)
    info = {
        "valid_start": int(t_valid),
        "test_start": int(t_test),
        "train_events": int((part == 0).sum()),
        "valid_users": len(valid),
        "test_users": len(test),
        "valid_users_without_history": valid_cold,
        "test_users_without_history": test_cold,
    }
    return Split(train, valid, test, "temporal", info)


PROTOCOLS = ("loo", "temporal")


def check_protocol(protocol: str, choices: tuple[str, ...] = PROTOCOLS) -> None:
    """An InputError naming the choices, before any data is read or model trained."""
    if protocol not in choices:
        raise InputError(f"unknown protocol {protocol!r}; choose one of: {', '.join(choices)}")


def make_split(dataset: Dataset, protocol: str) -> Split:
    """The split a protocol name stands for: "loo" (leave-one-out) or "temporal" (80/10/10)."""
    check_protocol(protocol)
    return leave_one_out(dataset) if protocol == "loo" else temporal_split(dataset)

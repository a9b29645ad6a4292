"""Histories as tensors for the neural models: left-padded windows, time-gap buckets, training
windows cut from whole sequences, and batches of similar length.

Items are shifted by one so that 0 is padding; sequences are left-padded, so the newest event is
always the last position.
"""

from __future__ import annotations

import numpy as np
import torch

from driftrec.data.histories import Histories, ragged_positions

N_TIME_BUCKETS = 24  # log2 buckets of the gap to the previous event, in minutes


def time_buckets(gaps: np.ndarray) -> np.ndarray:
    """Bucket of each gap in seconds: 1 + floor(log2(1 + minutes)), capped; 0 means padding."""
    minutes = np.maximum(gaps, 0) / 60.0
    return np.minimum(1 + np.floor(np.log2(1.0 + minutes)), N_TIME_BUCKETS - 1).astype(np.int64)


def event_gaps(histories: Histories) -> np.ndarray:
    """(nnz,) seconds since the same row's previous event; 0 for each row's first event."""
    gaps = np.diff(histories.timestamps, prepend=0)
    gaps[histories.indptr[:-1][histories.lengths > 0]] = 0
    return gaps


def padded(
    histories: Histories, length: int, gaps: np.ndarray | None = None
) -> dict[str, torch.Tensor]:
    """The last ``length`` events of each row, left-padded with 0: items (shifted by one), time-gap
    buckets and event types (shifted by one). Each tensor is (n, length) int64. ``gaps`` overrides
    the gaps computed from the rows (a window cut from a longer history keeps its real gaps)."""
    n = len(histories)
    keep = np.minimum(histories.lengths, length)
    ends = histories.indptr[1:]
    offsets, source = ragged_positions(ends - keep, ends)  # positions of the kept events
    rows = np.repeat(np.arange(n), keep)
    cols = length - keep[rows] + np.arange(len(source)) - offsets[:-1][rows]
    if gaps is None:
        gaps = event_gaps(histories)
    out = {name: np.zeros((n, length), np.int64) for name in ("items", "times", "events")}
    out["items"][rows, cols] = histories.items[source] + 1
    out["times"][rows, cols] = time_buckets(gaps[source])
    out["events"][rows, cols] = histories.events[source].astype(np.int64) + 1
    return {k: torch.from_numpy(v) for k, v in out.items()}


def training_windows(
    histories: Histories, length: int, prefix_len: int = 0
) -> dict[str, torch.Tensor]:
    """Every transition of every sequence, cut into windows of ``length`` inputs from the newest
    end backwards (consecutive windows share one event, so each transition is trained once).

    Returns inputs (items, times, events) and ``targets`` (the next item, shifted by one, 0 where
    there is none), each (n_windows, length); with ``prefix_len``, also ``prefix``: the items of
    up to ``prefix_len`` events before each window, (n_windows, prefix_len), left-padded."""
    user, starts, ends = _window_bounds(histories, length)
    windows = histories.slices(starts, ends, histories.users[user])
    gaps = event_gaps(histories)[ragged_positions(starts, ends)[1]]  # real gaps, not from 0
    full = padded(windows, length + 1, gaps=gaps)  # (n_windows, length + 1)
    tensors = {name: t[:, :-1] for name, t in full.items()}
    tensors["targets"] = full["items"][:, 1:].clone()
    tensors["targets"][tensors["items"] == 0] = 0  # nothing to predict from a padding input
    if prefix_len:
        prefix = histories.slices(histories.indptr[:-1][user], starts, histories.users[user])
        tensors["prefix"] = padded(prefix, prefix_len)["items"]
    return tensors


def _window_bounds(histories: Histories, length: int) -> tuple[np.ndarray, ...]:
    """Row, first and exclusive last event position of every `training_windows` window (each
    (n_windows,) int64), windows of ``length`` inputs cut from each row's newest end backwards."""
    lengths = histories.lengths
    n_windows = np.maximum(0, np.ceil((lengths - 1) / length)).astype(np.int64)
    user = np.repeat(np.arange(len(histories)), n_windows)
    k = np.arange(int(n_windows.sum())) - np.repeat(np.cumsum(n_windows) - n_windows, n_windows)
    ends = histories.indptr[1:][user] - k * length  # exclusive end of each window's events
    starts = np.maximum(histories.indptr[:-1][user], ends - length - 1)
    return user, starts, ends


def window_times(histories: Histories, length: int) -> np.ndarray:
    """(n_windows,) int64 time of each `training_windows` window's newest event, in the same
    order: which windows hold events newer than a model has learned from."""
    ends = _window_bounds(histories, length)[2]
    return histories.timestamps[ends - 1]


def length_batches(histories: Histories, batch_size: int) -> list[np.ndarray]:
    """Row indices in batches of similar history length, so little padding is computed."""
    order = np.argsort(np.minimum(histories.lengths, 10_000), kind="stable")
    return [order[lo : lo + batch_size] for lo in range(0, len(order), batch_size)]


def seen_index(histories: Histories) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, item) index of every history event, for masking or biasing a score matrix."""
    rows = torch.from_numpy(histories.event_rows())
    return rows, torch.from_numpy(histories.items.astype(np.int64))


def trim_padding(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the leading columns that are padding in every row (sequence tensors and ``prefix``
    separately): left padding makes them the same columns, and no output depends on them."""
    out = dict(batch)
    for key, names in (("items", ("items", "times", "events", "targets")), ("prefix", ("prefix",))):
        if key not in batch:
            continue
        used = (batch[key] > 0).any(dim=0)
        start = int(used.float().argmax()) if bool(used.any()) else batch[key].shape[1] - 1
        for name in names:
            if name in batch:
                out[name] = batch[name][:, start:]
    return out

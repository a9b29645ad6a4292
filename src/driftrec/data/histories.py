"""Batches of time-ordered event sequences, the one input every model scores.

A `Histories` batch is stored like a CSR matrix (batch-first, as in `implicit`): row ``i`` holds the
events ``indptr[i]:indptr[i + 1]`` of one user, oldest first. Models answer for a row whether or not
its user was seen in training, which is what lets the real-time service score a fresh event stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

UNKNOWN_USER = -1


def ragged_positions(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row offsets and flat positions of the ranges [starts[i], ends[i]) laid end to end, found
    without a Python loop: (n + 1,) indptr and (sum of lengths,) positions."""
    starts = np.asarray(starts, np.int64)
    lengths = np.asarray(ends, np.int64) - starts
    indptr = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return indptr, np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A well-mixed 64-bit hash of each value (the SplitMix64 finaliser), modulo 2^64."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@dataclass(frozen=True)
class Histories:
    """Ragged, time-ordered item sequences for a batch of users (item indices, not raw ids)."""

    indptr: np.ndarray  # (n + 1,) int64 row offsets
    items: np.ndarray  # (nnz,) int32 item index
    timestamps: np.ndarray  # (nnz,) int64 seconds (or positions when the source has no time)
    events: np.ndarray  # (nnz,) int8 event-type code
    values: np.ndarray  # (nnz,) float32 rating or weight
    users: np.ndarray  # (n,) int64 training user index, UNKNOWN_USER for a raw sequence

    def __post_init__(self) -> None:
        n = len(self.users)
        if len(self.indptr) != n + 1:
            raise ValueError(f"indptr has {len(self.indptr)} entries, expected {n + 1}")
        nnz = int(self.indptr[-1]) if n else 0
        for name in ("items", "timestamps", "events", "values"):
            if len(getattr(self, name)) != nnz:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries, expected {nnz}")

    def __len__(self) -> int:
        return len(self.users)

    @property
    def lengths(self) -> np.ndarray:
        """Number of events in each row."""
        return np.diff(self.indptr)

    def event_rows(self) -> np.ndarray:
        """(nnz,) the row of every event, to index a (n, n_items) matrix by (row, item)."""
        return np.repeat(np.arange(len(self)), self.lengths)

    def row(self, i: int) -> np.ndarray:
        """Item indices of row ``i``, oldest first."""
        return self.items[self.indptr[i] : self.indptr[i + 1]]

    def take(self, rows: np.ndarray | Sequence[int] | slice) -> Histories:
        """A new batch made of the given rows, in the given order."""
        rows = np.arange(len(self))[rows] if isinstance(rows, slice) else np.asarray(rows, np.int64)
        return self.slices(self.indptr[rows], self.indptr[rows + 1], self.users[rows])

    def slices(self, starts: np.ndarray, ends: np.ndarray, users: np.ndarray) -> Histories:
        """A new batch whose row i holds the events at flat positions [starts[i], ends[i]) of this
        one (e.g. a window cut from a user's history), attributed to ``users[i]``."""
        indptr, pos = ragged_positions(starts, ends)
        return Histories(
            indptr=indptr,
            items=self.items[pos],
            timestamps=self.timestamps[pos],
            events=self.events[pos],
            values=self.values[pos],
            users=np.asarray(users, np.int64),
        )

    def to_csr(self, n_items: int, binary: bool = True) -> sp.csr_matrix:
        """The batch as a (n, n_items) user-item matrix; repeated items add up unless binary."""
        data = np.ones(len(self.items), np.float32) if binary else self.values.astype(np.float32)
        matrix = sp.csr_matrix(
            (data, self.items.copy(), self.indptr.copy()),
            shape=(len(self), n_items),
            dtype=np.float32,
        )
        matrix.sum_duplicates()
        if binary:
            matrix.data[:] = 1.0
        return matrix

    def item_set_fingerprints(self, n_items: int) -> np.ndarray:
        """(n,) uint64 fingerprint of each row's set of items (order and repeats ignored): two
        rows with the same items get the same value, and different sets collide with
        probability about 2^-64. Tells a model whether a history changed, whatever its length."""
        csr = self.to_csr(n_items)  # binary: each distinct item once
        mixed = _splitmix64(csr.indices.astype(np.uint64))
        total = np.zeros(len(mixed) + 1, np.uint64)
        np.cumsum(mixed, out=total[1:])  # wraps modulo 2^64, as the differences below do
        return total[csr.indptr[1:]] - total[csr.indptr[:-1]]

    @classmethod
    def concat_rows(cls, first: Histories, second: Histories) -> Histories:
        """Row-wise append: row i of the result is row i of ``first``, then row i of ``second``.

        Used to extend a training history with later events (for example the validation event).
        """
        if len(first) != len(second):
            raise ValueError("both batches must have the same number of rows")
        lengths = first.lengths + second.lengths
        indptr = np.zeros(len(first) + 1, np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # Destination of each event: its row start plus its place inside the row.
        dst_first = np.repeat(indptr[:-1] - first.indptr[:-1], first.lengths) + np.arange(
            len(first.items)
        )
        dst_second = np.repeat(
            indptr[:-1] + first.lengths - second.indptr[:-1], second.lengths
        ) + np.arange(len(second.items))
        out = {}
        for name in ("items", "timestamps", "events", "values"):
            a, b = getattr(first, name), getattr(second, name)
            merged = np.empty(len(a) + len(b), a.dtype)
            merged[dst_first], merged[dst_second] = a, b
            out[name] = merged
        return cls(indptr=indptr, users=first.users.copy(), **out)

    @classmethod
    def from_sequences(
        cls,
        sequences: Sequence[Sequence[int]],
        users: Sequence[int] | None = None,
        timestamps: Sequence[Sequence[int]] | None = None,
    ) -> Histories:
        """A batch from lists of item indices (oldest first); timestamps default to positions."""
        lengths = np.array([len(s) for s in sequences], np.int64)
        indptr = np.zeros(len(sequences) + 1, np.int64)
        np.cumsum(lengths, out=indptr[1:])
        items = (
            np.concatenate([np.asarray(s, np.int32) for s in sequences])
            if len(sequences) and indptr[-1]
            else np.zeros(0, np.int32)
        )
        if timestamps is None:
            times = np.arange(indptr[-1], dtype=np.int64) - np.repeat(indptr[:-1], lengths)
        else:
            times = (
                np.concatenate([np.asarray(t, np.int64) for t in timestamps])
                if indptr[-1]
                else np.zeros(0, np.int64)
            )
        user_index = (
            np.full(len(sequences), UNKNOWN_USER, np.int64)
            if users is None
            else np.asarray(users, np.int64)
        )
        return cls(
            indptr=indptr,
            items=items,
            timestamps=times,
            events=np.zeros(len(items), np.int8),
            values=np.ones(len(items), np.float32),
            users=user_index,
        )

    @classmethod
    def empty(cls, n: int = 0) -> Histories:
        """``n`` rows with no events and no known user."""
        return cls.from_sequences([[] for _ in range(n)])

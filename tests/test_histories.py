"""Histories: the ragged batch of time-ordered item sequences every model scores."""

from __future__ import annotations

import numpy as np
import pytest

from driftrec.data.histories import UNKNOWN_USER, Histories


def _batch() -> Histories:
    # row 0: items 1, 2      (user 5)
    # row 1: nothing         (user 6)
    # row 2: items 3, 3, 0   (user 7), values 1, 2, 4 so the repeated item 3 sums to 3
    return Histories(
        indptr=np.array([0, 2, 2, 5], np.int64),
        items=np.array([1, 2, 3, 3, 0], np.int32),
        timestamps=np.array([10, 20, 30, 40, 50], np.int64),
        events=np.array([0, 1, 2, 3, 4], np.int8),
        values=np.array([1.0, 1.0, 1.0, 2.0, 4.0], np.float32),
        users=np.array([5, 6, 7], np.int64),
    )


def test_lengths_and_rows() -> None:
    h = _batch()
    assert len(h) == 3
    np.testing.assert_array_equal(h.lengths, [2, 0, 3])
    np.testing.assert_array_equal(h.row(0), [1, 2])
    np.testing.assert_array_equal(h.row(1), [])
    np.testing.assert_array_equal(h.row(2), [3, 3, 0])


def test_constructor_rejects_inconsistent_lengths() -> None:
    h = _batch()
    with pytest.raises(ValueError, match="indptr"):
        Histories(h.indptr[:-1], h.items, h.timestamps, h.events, h.values, h.users)
    with pytest.raises(ValueError, match="items"):
        Histories(h.indptr, h.items[:-1], h.timestamps, h.events, h.values, h.users)
    with pytest.raises(ValueError, match="values"):
        Histories(h.indptr, h.items, h.timestamps, h.events, h.values[:2], h.users)


def test_take_reorders_repeats_and_carries_every_field() -> None:
    t = _batch().take([2, 0, 2])
    np.testing.assert_array_equal(t.indptr, [0, 3, 5, 8])
    np.testing.assert_array_equal(t.items, [3, 3, 0, 1, 2, 3, 3, 0])
    np.testing.assert_array_equal(t.timestamps, [30, 40, 50, 10, 20, 30, 40, 50])
    np.testing.assert_array_equal(t.events, [2, 3, 4, 0, 1, 2, 3, 4])
    np.testing.assert_array_equal(t.values, [1, 2, 4, 1, 1, 1, 2, 4])
    np.testing.assert_array_equal(t.users, [7, 5, 7])
    assert t.items.dtype == np.int32 and t.indptr.dtype == np.int64


def test_take_slice_and_empty_selection() -> None:
    h = _batch()
    s = h.take(slice(1, None))
    np.testing.assert_array_equal(s.indptr, [0, 0, 3])
    np.testing.assert_array_equal(s.items, [3, 3, 0])
    np.testing.assert_array_equal(s.users, [6, 7])
    e = h.take([])
    assert len(e) == 0
    np.testing.assert_array_equal(e.indptr, [0])
    assert len(e.items) == 0
    only_empty_row = h.take(np.array([1]))
    np.testing.assert_array_equal(only_empty_row.indptr, [0, 0])
    np.testing.assert_array_equal(only_empty_row.users, [6])


def test_to_csr_binary_collapses_duplicates() -> None:
    m = _batch().to_csr(4)
    assert m.shape == (3, 4)
    assert m.dtype == np.float32
    np.testing.assert_array_equal(
        m.toarray(),
        [[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 1]],
    )
    assert m.nnz == 4  # the repeated item 3 is stored once


def test_to_csr_weighted_sums_duplicates() -> None:
    m = _batch().to_csr(5, binary=False)
    assert m.shape == (3, 5)
    # Row 2: item 3 has values 1 + 2 = 3, item 0 has value 4.
    np.testing.assert_array_equal(
        m.toarray(),
        [[0, 1, 1, 0, 0], [0, 0, 0, 0, 0], [4, 0, 0, 3, 0]],
    )


def test_to_csr_does_not_alias_the_batch() -> None:
    h = _batch()
    m = h.to_csr(4, binary=False)
    m.data[:] = 99
    m.indices[:] = 0
    np.testing.assert_array_equal(h.items, [1, 2, 3, 3, 0])
    np.testing.assert_array_equal(h.values, [1, 1, 1, 2, 4])


def test_concat_rows_appends_row_by_row() -> None:
    first = _batch()
    second = Histories.from_sequences([[9], [8, 7], []], timestamps=[[60], [70, 80], []])
    c = Histories.concat_rows(first, second)
    np.testing.assert_array_equal(c.indptr, [0, 3, 5, 8])
    np.testing.assert_array_equal(c.items, [1, 2, 9, 8, 7, 3, 3, 0])
    np.testing.assert_array_equal(c.timestamps, [10, 20, 60, 70, 80, 30, 40, 50])
    np.testing.assert_array_equal(c.events, [0, 1, 0, 0, 0, 2, 3, 4])
    np.testing.assert_array_equal(c.values, [1, 1, 1, 1, 1, 1, 2, 4])
    np.testing.assert_array_equal(c.users, [5, 6, 7])  # users come from the first batch


def test_concat_rows_requires_same_row_count() -> None:
    with pytest.raises(ValueError, match="same number of rows"):
        Histories.concat_rows(_batch(), Histories.empty(2))


def test_from_sequences_defaults() -> None:
    h = Histories.from_sequences([[4, 2], [], [7]])
    np.testing.assert_array_equal(h.indptr, [0, 2, 2, 3])
    np.testing.assert_array_equal(h.items, [4, 2, 7])
    np.testing.assert_array_equal(h.timestamps, [0, 1, 0])  # positions within each row
    np.testing.assert_array_equal(h.events, [0, 0, 0])
    np.testing.assert_array_equal(h.values, [1, 1, 1])
    np.testing.assert_array_equal(h.users, [UNKNOWN_USER] * 3)
    assert h.items.dtype == np.int32
    assert h.timestamps.dtype == np.int64
    assert h.events.dtype == np.int8
    assert h.values.dtype == np.float32


def test_from_sequences_with_users_and_timestamps() -> None:
    h = Histories.from_sequences([[1], [2, 3]], users=[0, 4], timestamps=[[100], [5, 9]])
    np.testing.assert_array_equal(h.users, [0, 4])
    np.testing.assert_array_equal(h.timestamps, [100, 5, 9])
    np.testing.assert_array_equal(h.row(1), [2, 3])


def test_from_sequences_of_nothing() -> None:
    h = Histories.from_sequences([])
    assert len(h) == 0
    np.testing.assert_array_equal(h.indptr, [0])
    h = Histories.from_sequences([[], []], users=[1, 2])
    np.testing.assert_array_equal(h.indptr, [0, 0, 0])
    assert h.items.dtype == np.int32 and len(h.items) == 0
    np.testing.assert_array_equal(h.users, [1, 2])


def test_empty() -> None:
    e = Histories.empty(3)
    assert len(e) == 3
    np.testing.assert_array_equal(e.indptr, [0, 0, 0, 0])
    np.testing.assert_array_equal(e.lengths, [0, 0, 0])
    np.testing.assert_array_equal(e.users, [UNKNOWN_USER] * 3)
    assert e.to_csr(5).nnz == 0
    assert e.to_csr(5).shape == (3, 5)
    assert len(Histories.empty()) == 0

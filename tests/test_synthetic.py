"""The synthetic generator must be exact about its ground truth: tracking metrics rest on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftrec.data.dataset import NO_ITEM
from driftrec.data.synthetic import THEMES, SyntheticConfig, SyntheticData, generate

SMALL = SyntheticConfig(n_users=60, n_items=200, n_categories=8, seed=3)


@pytest.fixture(scope="module")
def small() -> SyntheticData:
    return generate(SMALL)


@pytest.fixture(scope="module")
def clean() -> SyntheticData:
    """No noise and no searches, long histories: event categories follow the mixture exactly."""
    return generate(
        SyntheticConfig(
            n_users=80,
            n_items=300,
            n_categories=10,
            events_per_user=(300, 400),
            stable_share=0.0,
            max_drifts=1,
            gradual_share=0.0,
            min_segment=60,
            noise=0.0,
            search_rate=0.0,
            seed=11,
        )
    )


def _weights(data: SyntheticData) -> np.ndarray:
    return data.interests[data.categories].to_numpy()


def _event_categories(data: SyntheticData) -> np.ndarray:
    """Primary category of each event's item; -1 for text-only events."""
    items = data.dataset.events["item"].to_numpy()
    return np.where(items == NO_ITEM, -1, data.item_category[np.maximum(items, 0)])


def test_default_config_sizes() -> None:
    data = generate()
    assert data.dataset.n_users == 500
    assert data.dataset.n_items == 1000
    assert 40_000 <= data.dataset.n_events <= 60_000
    assert data.dataset.name == "synthetic"
    assert data.dataset.info["has_timestamps"] is True
    assert data.dataset.info["synthetic"]["seed"] == 0
    assert len(data.categories) == 12


def test_same_seed_same_data_other_seed_other_data(small: SyntheticData) -> None:
    again = generate(SMALL)
    pd.testing.assert_frame_equal(small.dataset.events, again.dataset.events)
    pd.testing.assert_frame_equal(small.dataset.items, again.dataset.items)
    pd.testing.assert_frame_equal(small.interests, again.interests)
    pd.testing.assert_frame_equal(small.drifts, again.drifts)
    other = generate(SyntheticConfig(n_users=60, n_items=200, n_categories=8, seed=4))
    assert not small.dataset.events.equals(other.dataset.events)
    assert not small.dataset.items["title"].equals(other.dataset.items["title"])


def test_ids_catalog_and_item_category(small: SyntheticData) -> None:
    ds = small.dataset
    assert ds.user_ids[0] == "u0001" and ds.item_ids[0] == "i0001"
    assert small.categories == [t.name for t in THEMES[:8]]
    for cats, primary, title, text in zip(
        ds.items["categories"],
        small.item_category,
        ds.items["title"],
        ds.items["text"],
        strict=True,
    ):
        assert cats[0] == small.categories[primary]
        assert 1 <= len(cats) <= 2 and len(set(cats)) == len(cats)
        assert title and text.endswith(".")
        assert any(topic in text for topic in THEMES[primary].topics)
    assert np.bincount(small.item_category, minlength=8).min() >= 200 // 8


def test_interest_rows_sum_to_one_and_align_with_events(small: SyntheticData) -> None:
    ev, truth = small.dataset.events, small.interests
    assert list(truth.columns) == ["user", "timestamp", *small.categories]
    assert len(truth) == len(ev)
    np.testing.assert_allclose(_weights(small).sum(axis=1), 1.0, atol=1e-12)
    assert (_weights(small) >= 0).all()
    assert (truth["user"].to_numpy(object) == small.dataset.user_ids[ev["user"]]).all()
    assert (truth["timestamp"].to_numpy() == ev["timestamp"].to_numpy()).all()


def test_timestamps_increase_per_user_from_the_start_date(small: SyntheticData) -> None:
    ev = small.dataset.events
    same_user = np.diff(ev["user"].to_numpy()) == 0
    assert (np.diff(ev["timestamp"].to_numpy())[same_user] > 0).all()
    assert ev["timestamp"].min() >= pd.Timestamp("2024-01-01", tz="UTC").timestamp()
    firsts = ev.groupby("user")["timestamp"].min()
    assert firsts.nunique() == len(firsts)  # users start at different times


def test_event_categories_follow_the_mixture(clean: SyntheticData) -> None:
    cats = _event_categories(clean)
    onehot = np.eye(len(clean.categories))[cats]
    # Averaged over many events the observed category shares match the true mixtures.
    np.testing.assert_allclose(onehot.mean(axis=0), _weights(clean).mean(axis=0), atol=0.01)


def test_abrupt_drift_flips_the_dominant_category(clean: SyntheticData) -> None:
    ev, drifts = clean.dataset.events, clean.drifts
    assert (drifts["kind"] == "abrupt").all() and drifts["user"].is_unique
    assert len(drifts) == clean.dataset.n_users  # stable_share 0: every user drifts once
    cats = _event_categories(clean)
    user_ids = clean.dataset.user_ids[ev["user"]]
    index = {name: i for i, name in enumerate(clean.categories)}
    before_from = before_to = after_from = after_to = 0.0
    for row in drifts.itertuples():
        mine = user_ids == row.user
        before = mine & (ev["timestamp"].to_numpy() < row.timestamp)
        after = mine & (ev["timestamp"].to_numpy() >= row.timestamp)
        f, t = index[row.from_category], index[row.to_category]
        before_from += (cats[before] == f).mean() / len(drifts)
        before_to += (cats[before] == t).mean() / len(drifts)
        after_from += (cats[after] == f).mean() / len(drifts)
        after_to += (cats[after] == t).mean() / len(drifts)
    # The old main interest is dropped and the new one was absent, so with no noise the flip is
    # total; the dominant interest of a 1-3 category mixture holds well over a third on average.
    assert before_to == 0.0 and after_from == 0.0
    assert before_from > 0.5 and after_to > 0.5


def test_drift_rows_match_the_interest_truth(small: SyntheticData) -> None:
    weights = _weights(small)
    ts = small.interests["timestamp"].to_numpy()
    users = small.interests["user"].to_numpy(object)
    assert set(small.drifts["kind"]) == {"abrupt", "gradual"}
    for row in small.drifts.itertuples():
        mine = np.flatnonzero(users == row.user)
        start = mine[np.searchsorted(ts[mine], row.timestamp)]
        end = mine[np.searchsorted(ts[mine], row.end_timestamp)]
        assert ts[start] == row.timestamp and ts[end] == row.end_timestamp
        assert (row.end_timestamp == row.timestamp) == (row.kind == "abrupt")
        assert small.categories[weights[start - 1].argmax()] == row.from_category
        assert small.categories[weights[end].argmax()] == row.to_category
        before = small.true_interest(row.user, row.timestamp - 1)
        np.testing.assert_array_equal(before, weights[start - 1])
        np.testing.assert_array_equal(
            small.true_interest(row.user, row.end_timestamp), weights[end]
        )
        if row.kind == "gradual":  # linear blend: strictly between old and new inside the window
            middle = weights[(start + end) // 2]
            assert 0 < middle[small.categories.index(row.to_category)] < weights[end].max()


def test_stable_users_have_no_drift_rows_and_constant_interest() -> None:
    data = generate(SyntheticConfig(n_users=200, n_items=100, n_categories=6, stable_share=0.5))
    users = data.interests["user"].to_numpy(object)
    weights = _weights(data)
    drifting = set(data.drifts["user"])
    for user in data.dataset.user_ids:
        rows = weights[users == user]
        assert (user in drifting) != np.allclose(rows, rows[0], atol=0.0)
    assert 0.38 < 1 - len(drifting) / 200 < 0.62
    assert generate(SyntheticConfig(n_users=50, n_items=100, stable_share=1.0)).drifts.empty
    everyone = generate(SyntheticConfig(n_users=50, n_items=100, stable_share=0.0))
    assert everyone.drifts["user"].nunique() == 50


def test_popularity_is_skewed_within_a_category(small: SyntheticData) -> None:
    items = small.dataset.item_events()["item"].to_numpy()
    counts = np.bincount(items, minlength=small.dataset.n_items)
    for c in range(len(small.categories)):
        mine = np.sort(counts[small.item_category == c])
        assert mine[-1] > 5 * max(1, np.median(mine))


def test_search_events_are_text_only_and_name_the_dominant_interest() -> None:
    data = generate(SyntheticConfig(n_users=40, n_items=100, n_categories=6, search_rate=0.2))
    ev = data.dataset.events
    search = ev["event"].to_numpy() == data.dataset.event_types.index("search")
    assert 0.15 < search.mean() < 0.25
    assert (ev["item"].to_numpy()[search] == NO_ITEM).all()
    assert ev["text"][~search].isna().all()
    dominant = _weights(data).argmax(axis=1)
    for text, c in zip(ev["text"][search], dominant[search], strict=True):
        assert any(term in text for term in THEMES[c].search_terms), text


def test_ratings_are_stars_that_favour_the_current_interest(small: SyntheticData) -> None:
    ev = small.dataset.events
    rating = ev["event"].to_numpy() == small.dataset.event_types.index("rating")
    values = ev["value"].to_numpy()
    assert rating.any()
    assert set(np.unique(values[rating])) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert (values[~rating] == 1.0).all()
    weights = _weights(small)
    cats = _event_categories(small)
    on_dominant = rating & (cats == weights.argmax(axis=1))
    off_interest = rating & (cats >= 0) & (weights[np.arange(len(cats)), cats] == 0)
    assert values[on_dominant].mean() > values[off_interest].mean() + 1.5


def test_true_interest_before_first_and_after_last_event(small: SyntheticData) -> None:
    weights = _weights(small)
    users = small.interests["user"].to_numpy(object)
    rows = np.flatnonzero(users == "u0002")
    ts = small.interests["timestamp"].to_numpy()
    np.testing.assert_array_equal(small.true_interest("u0002", 0), weights[rows[0]])
    np.testing.assert_array_equal(
        small.true_interest("u0002", ts[rows[-1]] + 10**6), weights[rows[-1]]
    )
    with pytest.raises(KeyError):
        small.true_interest("nobody", 0)


def test_save_load_round_trip(small: SyntheticData, tmp_path: Path) -> None:
    small.save(tmp_path / "synth")
    for name in (
        "manifest.json",
        "events.parquet",
        "truth.json",
        "truth_interests.parquet",
        "truth_drifts.parquet",
    ):
        assert (tmp_path / "synth" / name).is_file()
    back = SyntheticData.load(tmp_path / "synth")
    pd.testing.assert_frame_equal(back.dataset.events, small.dataset.events)
    pd.testing.assert_frame_equal(back.dataset.items, small.dataset.items)
    assert list(back.dataset.item_ids) == list(small.dataset.item_ids)
    assert back.dataset.info == small.dataset.info
    assert back.categories == small.categories
    np.testing.assert_array_equal(back.item_category, small.item_category)
    pd.testing.assert_frame_equal(back.interests, small.interests)
    pd.testing.assert_frame_equal(back.drifts, small.drifts)


def test_invalid_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="n_categories"):
        SyntheticConfig(n_categories=len(THEMES) + 1)
    with pytest.raises(ValueError, match="min_segment"):
        SyntheticConfig(events_per_user=(10, 20), min_segment=10)

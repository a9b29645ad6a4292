"""Interest-tracking metrics, pinned by hand-worked examples: the category mix of an answer,
its divergence from the truth, the served profile, and the adaptation delay after a shift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftrec.data.dataset import Dataset
from driftrec.data.synthetic import SyntheticConfig, generate
from driftrec.evaluation.replay import ReplayResult, replay, replay_split
from driftrec.evaluation.tracking import (
    Truth,
    adaptation_delays,
    profile_shares,
    recommendation_errors,
    recommendation_mix,
    tracking_report,
)
from driftrec.models import create

A, B = [1.0, 0.0], [0.0, 1.0]


def _truth(mixtures: list[list[float]], first_row: int) -> Truth:
    """One user, items 0-1 in category "a" and 2-3 in "b", one abrupt shift at ``first_row``."""
    n = len(mixtures)
    events = pd.DataFrame({"user": ["u"] * n, "item": ["0"] * n, "timestamp": np.arange(n)})
    items = pd.DataFrame({"item": ["0", "1", "2", "3"], "categories": [["a"], ["a"], ["b"], ["b"]]})
    dataset = Dataset.from_frames(events, items)
    shifts = pd.DataFrame(
        {"user": [0], "kind": ["abrupt"], "first_row": [first_row], "last_row": [first_row]}
    )
    return Truth(dataset, ["a", "b"], np.array(mixtures), np.array([0, 0, 1, 1]), shifts)


def _result(recommended: list[list[int]]) -> ReplayResult:
    n = len(recommended)
    return ReplayResult(
        model="m",
        k=2,
        policy="fixed",
        exclude_seen=True,
        rows=np.arange(n),
        users=np.array(["u"] * n, dtype=object),
        timestamps=np.arange(n),
        ranks=np.full(n, -1),
        recommended=np.array(recommended),
        sources=np.array(["model"] * n, dtype=object),
        new_items=np.zeros(n, bool),
        repeats=np.zeros(n, bool),
        text_events=0,
    )


def test_an_answers_category_mix_counts_its_items() -> None:
    mix = recommendation_mix(np.array([[0, 2, 3, -1], [1, 1, -1, -1]]), np.array([0, 0, 1, 1]), 2)
    np.testing.assert_allclose(mix, [[1 / 3, 2 / 3], [1.0, 0.0]])


def test_recommendation_error_is_the_divergence_from_the_true_mixture() -> None:
    truth = _truth([A, A, [0.5, 0.5]], first_row=2)
    errors = recommendation_errors(_result([[0, 1], [2, 3], [0, 1]]), truth)
    # the same mix: 0; no shared category: 1; [1, 0] against [.5, .5]: 1.5 - 0.75·log2(3)
    np.testing.assert_allclose(errors, [0.0, 1.0, 1.5 - 0.75 * np.log2(3)], atol=1e-12)


def test_the_profile_before_an_event_decays_the_users_earlier_items() -> None:
    events = pd.DataFrame(
        {"user": ["u", "u", "u", "v"], "item": ["0", "2", "2", "2"], "timestamp": [0, 1, 2, 0]}
    )
    items = pd.DataFrame({"item": ["0", "2"], "categories": [["a"], ["a", "b"]]})
    dataset = Dataset.from_frames(events, items)
    truth = Truth(dataset, ["b", "a"], np.zeros((4, 2)), np.array([0, 0]), pd.DataFrame())
    shares = profile_shares(truth, np.array([0, 1, 2, 3]), half_life=1.0)
    # before u's 1st: nothing; 2nd: item 0 (a); 3rd: item 0 at weight 1/2, item 2 split a/b
    a_mass = 0.5 + 0.5
    np.testing.assert_allclose(
        shares, [[0, 0], [0, 1], [0.5 / 1.5, a_mass / 1.5], [0, 0]], atol=1e-12
    )


def test_the_delay_counts_events_until_the_answers_lean_to_the_new_interest() -> None:
    truth = _truth([A, A, A, B, B, B, B], first_row=3)
    # before the shift every answer is all "a" (lean 1); after it: all a, half/half, all b
    tracker = _result([[0, 1], [0, 1], [0, 1], [0, 1], [0, 2], [2, 3], [2, 3]])
    delays = adaptation_delays(tracker, truth)
    assert delays.to_dict("records") == [
        {"user": "u", "kind": "abrupt", "delay": 2, "censored": False, "lean_before": 1.0}
    ]
    # answers that never tell the two interests apart have not adapted, however close they are
    constant = adaptation_delays(_result([[0, 2]] * 7), truth)
    assert constant["censored"].tolist() == [True] and constant["delay"].tolist() == [4]


@pytest.fixture(scope="module")
def small_synthetic():  # type: ignore[no-untyped-def]
    return generate(SyntheticConfig(n_users=60, n_items=200, n_categories=4, seed=2))


def test_a_replay_on_synthetic_data_is_scored_against_its_truth(small_synthetic) -> None:  # type: ignore[no-untyped-def]
    data = small_synthetic
    truth = Truth.from_synthetic(data)
    ev = data.dataset.events
    first = truth.shifts["first_row"].to_numpy()
    assert len(truth.shifts) == len(data.drifts)
    assert (np.sort(ev["timestamp"].to_numpy()[first]) == np.sort(data.drifts["timestamp"])).all()
    assert (ev["user"].to_numpy()[first] == truth.shifts["user"].to_numpy()).all()
    train, start = replay_split(data.dataset, 0.5)
    result = replay(create("pop").fit(train), data.dataset, start, progress=False)
    report = tracking_report(result, truth)
    assert 0 < report["profile_error"] < report["recommendation_error"] <= 1
    assert report["abrupt"]["shifts"] + report["gradual"]["shifts"] > 0
    # popularity hardly ever leans towards anyone's interest (only by the seen items it drops)
    assert report["abrupt"]["censored"] >= 0.8 * report["abrupt"]["shifts"]
    assert report["abrupt"]["median_delay"] == np.inf

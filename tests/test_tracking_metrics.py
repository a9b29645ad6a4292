"""Interest-tracking metrics, pinned by hand-worked examples: the category mix of an answer,
its divergence from the truth, the served profile, and the adaptation delay after a shift."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from driftrec.data.dataset import Dataset
from driftrec.data.synthetic import SyntheticConfig, generate
from driftrec.evaluation.detection import DIVERGENCE_THRESHOLD, detectors, score_alarms
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
from driftrec.tracking.drift import DriftDetector, DriftTrack
from driftrec.tracking.profiles import drift_score, interest_shares
from driftrec.tracking.timeline import interest_timeline
from driftrec.tracking.topics import Topics

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


def test_the_detector_flags_the_second_event_of_a_topic_the_user_was_not_into() -> None:
    detector = DriftDetector(long_half_life=100, allowance=2.5, threshold=6.0, floor=0.02)
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    state = detector.run(detector.start(2), np.array([a] * 50 + [b]))
    # one stray event: share 0, floored at 0.02: log2(50) = 5.64 bits, 3.14 beyond the allowance
    assert state.alarms == () and state.evidence == pytest.approx(np.log2(50) - 2.5)
    # the second: b holds 1 of the reference's mass 1 + sum(d**i, i=1..50), d = 0.5**(1/100)
    d = 0.5 ** (1 / 100)
    bits = -np.log2(1 / (1 + sum(d**i for i in range(1, 51))))
    assert detector.surprise(state, b) == pytest.approx(bits)  # 5.43 bits: 6.07 > 6
    state = detector.run(state, np.array([b, b]))
    assert state.alarms == (51,) and state.onsets == (50,)  # the change began with the first b
    # then the short-term profile, half b, is the reference:
    # more b events add no evidence
    assert detector.surprise(state, b) < detector.allowance and state.evidence == 0.0
    noisy = detector.run(detector.start(2), np.array([a] * 50 + [b, a, a, a, b, a, a, a]))
    assert noisy.alarms == ()  # stray events far apart: the evidence drains in between
    young = detector.run(detector.start(2), np.array([a] * 9 + [b, b, b]))
    assert young.alarms == ()  # nothing counts while the reference forms (warm_up=10)


def test_alarms_are_scored_against_the_true_shifts() -> None:
    truth = _truth([A] * 20, first_row=10)
    truth = dataclasses.replace(
        truth,
        shifts=pd.DataFrame(
            {
                "user": [0, 0],
                "kind": ["abrupt", "gradual"],
                "first_row": [5, 12],
                "last_row": [5, 15],
            }
        ),
    )
    # 7 detects the abrupt shift (delay 2), 8 is a second alarm for it (false), 19 detects
    # the gradual one (within 5 of its last event, delay 7), 2 comes before any shift (false)
    scores = score_alarms(truth, np.array([8, 2, 19, 7]))
    assert scores["abrupt"] == {"shifts": 1, "recall": 1.0, "median_delay": 2.0}
    assert scores["gradual"] == {"shifts": 1, "recall": 1.0, "median_delay": 7.0}
    assert scores["precision"] == 0.5 and scores["false_alarms_per_1000"] == 100.0
    late = score_alarms(truth, np.array([11]), tolerance=5)  # 6 after the abrupt shift
    assert late["abrupt"]["recall"] == 0.0 and late["precision"] == 0.0
    only_replayed = score_alarms(truth, np.array([7]), rows=np.arange(10, 20))
    assert only_replayed["abrupt"]["shifts"] == 0 and only_replayed["gradual"]["shifts"] == 1
    # windows that overlap: a gradual shift over rows 5-9 (its window closes at 14) and an
    # abrupt one at 10 (closing at 15); alarms at 12 and 15. Shifts claim alarms as their
    # windows close: the gradual shift takes 12, the abrupt one 15, and both are detected
    # (the abrupt shift taking 12 first would leave the gradual one none)
    overlapping = truth.shifts.assign(kind=["gradual", "abrupt"], first_row=[5, 10])
    overlapping = overlapping.assign(last_row=[9, 10])
    both = score_alarms(dataclasses.replace(truth, shifts=overlapping), np.array([12, 15]))
    assert both["abrupt"]["recall"] == both["gradual"]["recall"] == 1.0


def test_searches_do_not_count_as_events_a_detector_saw() -> None:
    truth = _truth([A] * 20, first_row=10)
    ev = truth.dataset.events.copy()
    ev.loc[[10, 11], "item"] = -1  # the shift begins with two searches
    truth = dataclasses.replace(truth, dataset=dataclasses.replace(truth.dataset, events=ev))
    scores = score_alarms(truth, np.array([17]))  # the 6th item event of the new interest
    assert scores["abrupt"]["recall"] == 1.0 and scores["abrupt"]["median_delay"] == 5.0
    assert scores["false_alarms_per_1000"] == 0.0
    assert score_alarms(truth, np.array([3]))["false_alarms_per_1000"] == 1000 / 18


def test_detectors_run_over_synthetic_users_and_are_scored() -> None:
    # twelve categories, as the default data has: most shifts reach categories new to the user
    truth = Truth.from_synthetic(generate(SyntheticConfig(n_users=80, n_items=400, seed=3)))
    found = detectors(truth)
    assert "surprise CUSUM (driftrec)" in found and len(found) == 6
    ours = score_alarms(truth, found["surprise CUSUM (driftrec)"])
    threshold = score_alarms(truth, found[f"drift score > {DIVERGENCE_THRESHOLD}"])
    assert ours["abrupt"]["recall"] > threshold["abrupt"]["recall"]
    assert ours["precision"] > threshold["precision"]
    assert 0 < ours["precision"] <= 1 and ours["false_alarms_per_1000"] >= 0


def test_the_timeline_is_the_served_profiles_and_the_detector_event_by_event() -> None:
    topics = Topics.from_categories([["a"], ["b"], ["a", "b"]])
    items = np.array([0] * 30 + [1, 1, 1, 2, 0, 1])
    rows = topics.membership[items].toarray()
    line = interest_timeline(rows, short_half_life=5, long_half_life=100)
    for n in (1, 31, len(items)):  # after n events: the profiles the service serves then
        short = interest_shares(topics, items[:n], 5)
        long = interest_shares(topics, items[:n], 100)
        assert line.short[n - 1] == pytest.approx(short) and line.long[n - 1] == pytest.approx(long)
        assert line.drift[n - 1] == pytest.approx(drift_score(short, long))
    whole = DriftDetector().run(DriftDetector().start(2), rows)
    assert whole.alarms == (32,)  # the third b event
    assert tuple(line.alarms) == whole.alarms and line.evidence[-1] == whole.evidence
    assert np.isnan(line.surprise[:10]).all() and not np.isnan(line.surprise[10:]).any()
    assert tuple(line.onsets) == whole.onsets == (30,)  # the first b began the change
    # at the alarm the chart shows the evidence that raised it, not the reset
    assert line.evidence[32] > DriftDetector().threshold and line.evidence[31] < line.evidence[32]


def test_items_without_topics_say_nothing_about_drift() -> None:
    detector = DriftDetector()
    a, none = np.array([1.0, 0.0]), np.zeros(2)
    state = detector.run(detector.start(2), np.array([a] * 30 + [none] * 5))
    assert detector.surprise(state, none) is None and state.alarms == () and not state.evidence


def test_a_followed_detector_names_alarms_and_onsets_by_timestamp_across_batches() -> None:
    detector = DriftDetector(threshold=6.0)
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    rows = np.array([a] * 100 + [b, b, b])
    times = list(range(1_000, 1_103))
    track = detector.follow(DriftTrack(detector.start(2)), rows[:101], times[:101])
    assert track.shifts == () and len(track.times) == 64  # only the newest times are kept
    track = detector.follow(track, rows[101:], times[101:])  # the onset came in the last batch
    whole = detector.run(detector.start(2), rows)
    assert track.shifts == tuple(1_000 + p for p in whole.alarms) == (1_101,)
    assert track.onsets == tuple(1_000 + p for p in whole.onsets) == (1_100,)

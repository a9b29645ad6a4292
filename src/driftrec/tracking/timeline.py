"""A user's interest over time: the short- and long-term profiles, the drift score and the drift
detector after each of their item events.

One home for every view of interest over time: the service's ``/users/{id}/timeline`` and the
drift fields of ``/interests``, the HTML report's charts, and the detection benchmark all call
`interest_timeline`, so what a chart shows is what the service reports and what was measured.
The profiles here are the ones `profiles.interest_shares` gives for the events up to each point
(the same decayed sums, advanced one event at a time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from driftrec.tracking.drift import DriftDetector, DriftState
from driftrec.tracking.profiles import LONG_HALF_LIFE, SHORT_HALF_LIFE, js_divergence


@dataclass(frozen=True)
class Timeline:
    """After each of n item events: ``short`` and ``long`` (n, n_topics) topic shares (rows of
    zeros before any event with a topic), ``drift`` (n,) the drift score between them,
    ``surprise`` (n,) the detector's bits for the event (NaN while it warms up), ``evidence``
    (n,) its CUSUM after the event; ``alarms`` the positions (0-based) where it raised one and
    ``onsets`` where each one's change began; ``detector``: its state after the last event, to
    carry on from."""

    short: np.ndarray
    long: np.ndarray
    drift: np.ndarray
    surprise: np.ndarray
    evidence: np.ndarray
    alarms: np.ndarray
    onsets: np.ndarray
    detector: DriftState


def _shares(mass: np.ndarray) -> np.ndarray:
    total = mass.sum(axis=1, keepdims=True)
    return np.divide(mass, total, out=np.zeros_like(mass), where=total > 0)


def interest_timeline(
    topics: np.ndarray,
    short_half_life: float = SHORT_HALF_LIFE,
    long_half_life: float = LONG_HALF_LIFE,
    detector: DriftDetector | None = None,
    start: DriftState | None = None,
) -> Timeline:
    """The timeline of a user whose item events, oldest first, have topic shares ``topics``
    (n, n_topics); ``start`` carries on a detector from earlier events."""
    topics = np.asarray(topics, np.float64)
    n, n_topics = topics.shape
    detector = detector or DriftDetector()
    state = start or detector.start(n_topics)
    short, long = np.zeros((n, n_topics)), np.zeros((n, n_topics))
    surprise, evidence = np.full(n, np.nan), np.zeros(n)
    short_decay, long_decay = 0.5 ** (1 / short_half_life), 0.5 ** (1 / long_half_life)
    s, g = np.zeros(n_topics), np.zeros(n_topics)
    first_alarm = len(state.alarms)
    for i, row in enumerate(topics):
        bits = detector.surprise(state, row)
        state = detector.update(state, row)
        s, g = s * short_decay + row, g * long_decay + row
        short[i], long[i] = s, g
        surprise[i] = np.nan if bits is None else bits
        evidence[i] = state.evidence
    short, long = _shares(short), _shares(long)
    offset = state.events - n  # the detector's count of events before these
    alarms = np.asarray(state.alarms[first_alarm:], np.int64) - offset
    onsets = np.asarray(state.onsets[first_alarm:], np.int64) - offset
    drift = js_divergence(short, long)
    return Timeline(short, long, drift, surprise, evidence, alarms, onsets, state)


__all__ = ["Timeline", "interest_timeline"]

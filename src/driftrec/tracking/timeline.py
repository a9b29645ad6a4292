"""A user's interest over time: the short- and long-term profiles, the drift score and the drift
detector after each of their item events.

One home for every view of interest over time: the service's ``/users/{id}/timeline`` and the
HTML report's charts, and the detection benchmark all call `interest_timeline`, and it runs the
same `DriftDetector` that ``/interests`` keeps per user (advanced event by event there), so what
a chart shows is what the service reports and what was measured.
The profiles here are the ones `profiles.interest_shares` gives for the events up to each point
(the same decayed sums, advanced one event at a time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from driftrec.tracking.drift import DriftDetector
from driftrec.tracking.profiles import LONG_HALF_LIFE, SHORT_HALF_LIFE, js_divergence, shares_of


@dataclass(frozen=True)
class Timeline:
    """After each of n item events: ``short`` and ``long`` (n, n_topics) topic shares (rows of
    zeros before any event with a topic), ``drift`` (n,) the drift score between them,
    ``surprise`` (n,) the detector's bits for the event (NaN while it warms up or for an item
    with no topic), ``evidence`` (n,) its CUSUM after the event (at an alarm: the evidence that
    raised it, before the reset); ``alarms`` the positions (0-based) where it raised one and
    ``onsets`` where each one's change began."""

    short: np.ndarray
    long: np.ndarray
    drift: np.ndarray
    surprise: np.ndarray
    evidence: np.ndarray
    alarms: np.ndarray
    onsets: np.ndarray


def interest_timeline(
    topics: np.ndarray,
    short_half_life: float = SHORT_HALF_LIFE,
    long_half_life: float = LONG_HALF_LIFE,
    detector: DriftDetector | None = None,
) -> Timeline:
    """The timeline of a user whose item events, oldest first, have topic shares ``topics``
    (n, n_topics)."""
    topics = np.asarray(topics, np.float64)
    n, n_topics = topics.shape
    detector = detector or DriftDetector()
    state = detector.start(n_topics)
    short, long = np.zeros((n, n_topics)), np.zeros((n, n_topics))
    surprise, evidence = np.full(n, np.nan), np.zeros(n)
    short_decay, long_decay = 0.5 ** (1 / short_half_life), 0.5 ** (1 / long_half_life)
    s, g = np.zeros(n_topics), np.zeros(n_topics)
    for i, row in enumerate(topics):
        alarms, before = len(state.alarms), state.evidence
        state, bits = detector.step(state, row)
        s, g = s * short_decay + row, g * long_decay + row
        short[i], long[i] = s, g
        surprise[i] = np.nan if bits is None else bits
        raised = len(state.alarms) > alarms and bits is not None
        evidence[i] = before + bits - detector.allowance if raised else state.evidence
    short, long = shares_of(short), shares_of(long)
    alarms, onsets = np.asarray(state.alarms, np.int64), np.asarray(state.onsets, np.int64)
    return Timeline(short, long, js_divergence(short, long), surprise, evidence, alarms, onsets)


__all__ = ["Timeline", "interest_timeline"]

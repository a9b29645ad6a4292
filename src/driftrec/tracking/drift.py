"""Drift detection: the event at which a user's interest changed, flagged as it happens.

Each item event is scored by how surprising its topics are under the user's established
interest: -log2 of the share its topics hold in the long-term profile, floored at ``floor`` so
one stray click costs at most log2(1 / floor) bits. A one-sided CUSUM adds up surprise beyond an
allowance, g = max(0, g + surprise - allowance), and raises an alarm when g passes the
threshold: a few events of topics the user was not into, not one stray event. After an alarm the
reference restarts from the newest events (the short-term profile), so one change raises one
alarm and the new interest becomes the established one. Each alarm also names its onset, the
event where the evidence that raised it began to gather (CUSUM's estimate of the change point):
what the user did from there on is the new interest.

Why this signal and not the divergence between the short- and long-term profiles (the drift
score `/interests` also reports): on the synthetic truth that divergence rises too slowly and
too noisily to place a change within five events; the threshold rule, river's ADWIN and its
Page–Hinkley on it, and Page–Hinkley on this same surprise are compared in
benchmarks/tracking.py and BENCHMARKS.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class DriftState:
    """A user's detector after some events: the long-term reference and short-term profiles
    (decayed topic mass), the evidence g in bits, how many item events it has seen, the
    positions (0-based, among those events) that raised alarms and each alarm's onset, and
    where the evidence gathering now began."""

    long: np.ndarray
    short: np.ndarray
    evidence: float = 0.0
    events: int = 0
    alarms: tuple[int, ...] = field(default_factory=tuple)
    onsets: tuple[int, ...] = field(default_factory=tuple)
    gathering_since: int = 0


TAIL = 64  # timestamps a `DriftTrack` keeps: evidence gathers over far fewer events


@dataclass(frozen=True)
class DriftTrack:
    """A user's detector with its alarms as timestamps: ``shifts`` (the events that raised
    them) and ``onsets`` (where each change began); ``times``: the newest item events' times;
    ``dropped``: how many of the events it has seen are gone from the front of the user's
    events (a position p of the detector is p - dropped there)."""

    state: DriftState
    shifts: tuple[int, ...] = ()
    onsets: tuple[int, ...] = ()
    times: tuple[int, ...] = ()
    dropped: int = 0


@dataclass(frozen=True)
class DriftDetector:
    """Surprise CUSUM over a user's item events (see the module docstring). Half-lives count
    events; ``allowance`` and ``threshold`` are in bits; no alarm in the first ``warm_up``
    events, while the reference is still forming."""

    long_half_life: float = 100.0
    short_half_life: float = 3.0
    allowance: float = 2.5
    threshold: float = 6.5
    floor: float = 0.02
    warm_up: int = 10

    def start(self, n_topics: int) -> DriftState:
        """A user's detector before their first event."""
        return DriftState(np.zeros(n_topics), np.zeros(n_topics))

    def surprise(self, state: DriftState, topics: np.ndarray) -> float | None:
        """Bits of surprise of an event with topic shares ``topics`` (n_topics,) under the
        state's reference; None while warming up, without a reference, or for an item with no
        topic (it says nothing about the user's interest)."""
        total = state.long.sum()
        if state.events < self.warm_up or total <= 0 or not topics.any():
            return None
        share = float(topics @ state.long) / total
        return float(-np.log2(max(share, self.floor)))

    def update(self, state: DriftState, topics: np.ndarray) -> DriftState:
        """The state after one more item event with topic shares ``topics`` (n_topics,)."""
        return self.step(state, topics)[0]

    def step(self, state: DriftState, topics: np.ndarray) -> tuple[DriftState, float | None]:
        """`update`, and the event's surprise (None where it counts none), computed once."""
        evidence, alarms, onsets = state.evidence, state.alarms, state.onsets
        since, long = state.gathering_since, state.long
        bits = self.surprise(state, topics)
        if bits is not None:
            if evidence == 0.0:
                since = state.events
            evidence = max(0.0, evidence + bits - self.allowance)
            if evidence > self.threshold:
                evidence, alarms, onsets = 0.0, (*alarms, state.events), (*onsets, since)
                long = state.short  # the new interest becomes the reference
        after = DriftState(
            long * 0.5 ** (1 / self.long_half_life) + topics,
            state.short * 0.5 ** (1 / self.short_half_life) + topics,
            evidence,
            state.events + 1,
            alarms,
            onsets,
            since,
        )
        return after, bits

    def follow(self, track: DriftTrack, topics: np.ndarray, timestamps: list[int]) -> DriftTrack:
        """``track`` after item events with topic shares ``topics`` (n, n_topics) at
        ``timestamps`` (n), in order: its alarms and their onsets as timestamps."""
        state = self.run(track.state, topics)
        times = track.times + tuple(timestamps)
        first = state.events - len(times)  # the detector's count of the first kept time
        new = len(track.state.alarms)

        def when(position: int) -> int:
            return times[max(position - first, 0)]  # an onset older than the tail: its start

        return DriftTrack(
            state,
            track.shifts + tuple(when(p) for p in state.alarms[new:]),
            track.onsets + tuple(when(p) for p in state.onsets[new:]),
            times[-TAIL:],
            track.dropped,
        )

    def run(self, state: DriftState, topics: np.ndarray) -> DriftState:
        """The state after item events with topic shares ``topics`` (n, n_topics), in order."""
        for row in np.asarray(topics, np.float64):
            state = self.update(state, row)
        return state


__all__ = ["DriftDetector", "DriftState", "DriftTrack"]

"""Drift detectors run over a dataset's users and scored against the synthetic truth.

Every detector sees each user's item events in time order and raises alarms at events; an alarm
detects a true shift of that user when it comes at the shift's first item event or within
``tolerance`` item events after it (after a gradual change's last event: during a blend the
change is still happening). Each shift is detected by one alarm at most, and each alarm detects
one shift at most; the other alarms are false. Scores: precision (alarms that detected a
shift), recall and median delay per kind of shift, false alarms per 1,000 item events.

The detectors compared (docs/evaluation.md, "Drift detection"): driftrec's surprise CUSUM
(`tracking.drift`), and, over the drift score the service reports (the divergence between the
short- and long-term profiles), the threshold rule, river's ADWIN and its Page–Hinkley; also
the threshold rule and Page–Hinkley over the same surprise signal (one event at a time, and
river's accumulation instead of ours), and ADWIN over a replay's hits (a model's hit rate
dropping).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
from river import drift as river_drift

from driftrec.evaluation.replay import ReplayResult
from driftrec.evaluation.tracking import Truth
from driftrec.tracking.drift import DriftDetector
from driftrec.tracking.timeline import Timeline, interest_timeline
from driftrec.tracking.topics import Topics

TOLERANCE = 5  # events after a shift within which an alarm detects it
# the threshold rule's levels, each chosen on seed 0 of the synthetic data by the F1 of precision
# and abrupt recall (benchmarks/tracking.py): on the drift score, and on one event's surprise
DIVERGENCE_THRESHOLD = 0.05
SURPRISE_THRESHOLD = 5.5  # bits: an event on a topic that holds under 2.2% of the reference


def _membership(truth: Truth) -> np.ndarray:
    """(n_items, n_topics) each item's topic shares, as the service's profiles use them."""
    return Topics.from_categories(list(truth.dataset.items["categories"])).membership.toarray()


def _user_starts(users: np.ndarray) -> np.ndarray:
    return np.r_[True, users[1:] != users[:-1]]


def timelines(
    truth: Truth, detector: DriftDetector | None = None
) -> list[tuple[np.ndarray, Timeline]]:
    """Per user (events grouped by user, in time order): the dataset rows of their item events
    and their interest timeline over them, as the service computes it."""
    membership = _membership(truth)
    ev = truth.dataset.events
    items, users = ev["item"].to_numpy(), ev["user"].to_numpy()
    bounds = np.r_[np.flatnonzero(_user_starts(users)), len(users)]
    out = []
    for lo, hi in itertools.pairwise(bounds):
        rows = lo + np.flatnonzero(items[lo:hi] >= 0)
        out.append((rows, interest_timeline(membership[items[rows]], detector=detector)))
    return out


def surprise_cusum(truth: Truth, detector: DriftDetector | None = None) -> np.ndarray:
    """Rows of ``truth.dataset.events`` where driftrec's detector raises an alarm."""
    found = [rows[t.alarms] for rows, t in timelines(truth, detector)]
    return np.sort(np.concatenate(found)) if found else np.zeros(0, np.int64)


def signals(truth: Truth, detector: DriftDetector | None = None) -> dict[str, np.ndarray]:
    """Per row of ``truth.dataset.events`` (NaN for text-only events and while a user's
    detector warms up): the drift score after the event (the divergence between the short- and
    long-term profiles) and the event's surprise (bits)."""
    n = len(truth.dataset.events)
    divergence, surprise = np.full(n, np.nan), np.full(n, np.nan)
    for rows, timeline in timelines(truth, detector):
        warm = ~np.isnan(timeline.surprise)
        divergence[rows[warm]] = timeline.drift[warm]
        surprise[rows[warm]] = timeline.surprise[warm]
    return {"divergence": divergence, "surprise": surprise}


def threshold_rule(truth: Truth, series: np.ndarray, level: float) -> np.ndarray:
    """Alarm when the series rises above ``level``; re-armed once it falls below half of it."""
    alarms, armed = [], True
    users = truth.dataset.events["user"].to_numpy()
    for row, first in enumerate(_user_starts(users)):
        if first:
            armed = True
        value = series[row]
        if np.isnan(value):
            continue
        if armed and value > level:
            alarms.append(row)
            armed = False
        elif value < level / 2:
            armed = True
    return np.asarray(alarms, np.int64)


def river_detector(
    truth: Truth, series: np.ndarray, make: Callable[[], Any], rows: np.ndarray | None = None
) -> np.ndarray:
    """Alarms of a river drift detector run per user over ``series`` (NaN skipped); ``rows``
    restricts it to those dataset rows (a replay's)."""
    users = truth.dataset.events["user"].to_numpy()
    where = np.arange(len(users)) if rows is None else np.asarray(rows, np.int64)
    alarms, previous = [], -1
    detector = make()
    for row in where:
        if users[row] != previous:
            detector, previous = make(), users[row]
        value = series[row]
        if np.isnan(value):
            continue
        detector.update(float(value))
        if detector.drift_detected:
            alarms.append(row)
    return np.asarray(alarms, np.int64)


def hit_series(truth: Truth, result: ReplayResult) -> tuple[np.ndarray, np.ndarray]:
    """(per dataset row, NaN off the replay) 1 for a replay hit, 0 for a miss; and the rows."""
    series = np.full(len(truth.dataset.events), np.nan)
    series[result.rows] = (result.ranks >= 0).astype(float)
    return series, np.sort(result.rows)


def detectors(truth: Truth) -> dict[str, np.ndarray]:
    """Alarm rows of every model-free detector compared, by name."""
    found = signals(truth)
    return {
        "surprise CUSUM (driftrec)": surprise_cusum(truth),
        f"drift score > {DIVERGENCE_THRESHOLD}": threshold_rule(
            truth, found["divergence"], DIVERGENCE_THRESHOLD
        ),
        f"surprise > {SURPRISE_THRESHOLD} bits": threshold_rule(
            truth, found["surprise"], SURPRISE_THRESHOLD
        ),
        "ADWIN on drift score (river)": river_detector(
            truth, found["divergence"], river_drift.ADWIN
        ),
        "Page-Hinkley on drift score (river)": river_detector(
            truth,
            found["divergence"],
            lambda: river_drift.PageHinkley(min_instances=10, delta=0.01, threshold=1.0),
        ),
        "Page-Hinkley on surprise (river)": river_detector(
            truth,
            found["surprise"],
            lambda: river_drift.PageHinkley(min_instances=10, delta=1.0, threshold=6.0, mode="up"),
        ),
    }


def score_alarms(
    truth: Truth, alarms: np.ndarray, rows: np.ndarray | None = None, tolerance: int = TOLERANCE
) -> dict[str, Any]:
    """Precision, recall, delays and false alarms of ``alarms`` (dataset rows of item events)
    against the true shifts; ``rows``: the detector only saw these events (a replay's), so only
    shifts whose first item event is among them count, and false alarms are per 1,000 of them.

    Delays and the tolerance count the user's item events (what detectors see; searches are
    not counted). Shifts claim alarms in the order their windows close, each the earliest
    free alarm of its user inside its window, so no detection is lost to an overlapping one."""
    ev = truth.dataset.events
    users = ev["user"].to_numpy()
    is_item = ev["item"].to_numpy() >= 0
    before = np.cumsum(is_item) - is_item  # item events before each row (the ordinal)
    item_rows = np.flatnonzero(is_item)
    alarms = np.sort(np.asarray(alarms, np.int64))
    at = before[alarms]  # ordinals of the alarms, ascending
    shifts = truth.shifts.copy()
    shifts["first"] = before[shifts["first_row"].to_numpy()]  # its first item event's ordinal
    shifts["last"] = before[shifts["last_row"].to_numpy()]
    real = shifts["first"].to_numpy() < len(item_rows)
    shifts = shifts[real]
    first_rows = item_rows[shifts["first"].to_numpy()]
    shifts = shifts[users[first_rows] == shifts["user"].to_numpy()]  # the user has one more
    if rows is not None:
        shifts = shifts[np.isin(item_rows[shifts["first"].to_numpy()], rows)]
    abrupt = (shifts["kind"] == "abrupt").to_numpy()
    shifts["end"] = np.where(abrupt, shifts["first"], shifts["last"]) + tolerance
    used = np.zeros(len(alarms), bool)
    delays: dict[str, list[int]] = {"abrupt": [], "gradual": []}
    for shift in shifts.sort_values(["end", "first"], kind="stable").itertuples(index=False):
        lo, hi = np.searchsorted(at, [shift.first, shift.end + 1])
        free = [a for a in range(lo, hi) if not used[a] and users[alarms[a]] == shift.user]
        if free:
            used[free[0]] = True
            delays[shift.kind].append(int(at[free[0]] - shift.first))
    out: dict[str, Any] = {"alarms": len(alarms)}
    for kind, found in delays.items():
        n = int((shifts["kind"] == kind).sum())
        out[kind] = {
            "shifts": n,
            "recall": len(found) / n if n else None,
            "median_delay": float(np.median(found)) if found else None,
        }
    n_events = len(item_rows) if rows is None else int(is_item[np.asarray(rows)].sum())
    out["precision"] = float(used.mean()) if len(alarms) else None
    out["false_alarms_per_1000"] = 1000 * float((~used).sum()) / max(n_events, 1)
    return out


__all__ = [
    "DIVERGENCE_THRESHOLD",
    "SURPRISE_THRESHOLD",
    "TOLERANCE",
    "detectors",
    "hit_series",
    "river_detector",
    "score_alarms",
    "signals",
    "surprise_cusum",
    "threshold_rule",
    "timelines",
]

"""Interest-tracking metrics: how close a replay's answers stay to interests that are known.

On the synthetic generator's data every event was drawn from a known category mixture, and the
change points are recorded (`data.synthetic`). A replay (`evaluation.replay`) says what each
user was served before each event; here that is compared with the truth, the same way for every
model (docs/evaluation.md, "Interest tracking"):

- recommendation error: Jensen–Shannon divergence between the true mixture behind an event and
  the category mix of the top k served just before it, averaged over events;
- profile error: the same for the short-term interest profile the service reports (its
  categories, half-life 5 events), which depends on the events only, not on a model;
- adaptation delay: after a true shift, how many of the user's events pass until the served top
  k leans as far towards the new mixture as it leant towards the old one just before the
  shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from driftrec.data.dataset import Dataset
from driftrec.data.synthetic import SyntheticData
from driftrec.evaluation.replay import ReplayResult
from driftrec.tracking.profiles import SHORT_HALF_LIFE, js_divergence, shares_of
from driftrec.tracking.topics import Topics

BEFORE = 5  # asks before a shift that set how close the answers were to the old interest


@dataclass(frozen=True)
class Truth:
    """What drove each event: ``mixtures`` (n_events, n_categories) line up with the rows of
    ``dataset.events``; ``item_category`` is each item's primary category; ``shifts`` has one
    row per true change point: user (index), kind, first_row and last_row (the dataset rows of
    the change's first and last event: the same for an abrupt one), old and new mixtures."""

    dataset: Dataset
    categories: list[str]
    mixtures: np.ndarray
    item_category: np.ndarray
    shifts: pd.DataFrame

    @classmethod
    def from_synthetic(cls, data: SyntheticData) -> Truth:
        dataset = data.dataset
        ev = dataset.events
        users = ev["user"].to_numpy()
        times = ev["timestamp"].to_numpy()
        drifts = data.drifts
        user = dataset.user_index(drifts["user"].to_numpy())
        lo = np.searchsorted(users, user)
        hi = np.searchsorted(users, user, side="right")
        first = np.array(
            [
                a + np.searchsorted(times[a:b], t)
                for a, b, t in zip(lo, hi, drifts["timestamp"], strict=True)
            ],
            np.int64,
        )
        last = np.array(
            [
                a + np.searchsorted(times[a:b], t)
                for a, b, t in zip(lo, hi, drifts["end_timestamp"], strict=True)
            ],
            np.int64,
        )
        shifts = pd.DataFrame(
            {"user": user, "kind": drifts["kind"].to_numpy(), "first_row": first, "last_row": last}
        ).sort_values(["user", "first_row"], kind="stable", ignore_index=True)
        mixtures = data.interests[data.categories].to_numpy(np.float64)
        return cls(dataset, list(data.categories), mixtures, data.item_category, shifts)


def recommendation_mix(recommended: np.ndarray, item_category: np.ndarray, n: int) -> np.ndarray:
    """(rows, n) category shares of each row's served items (-1 pads ignored)."""
    served = recommended >= 0
    rows = np.repeat(np.arange(len(recommended)), served.sum(axis=1))
    counts = np.zeros((len(recommended), n))
    np.add.at(counts, (rows, item_category[recommended[served]]), 1.0)
    return shares_of(counts)


def recommendation_errors(result: ReplayResult, truth: Truth) -> np.ndarray:
    """(n,) divergence between each event's true mixture and the top k served before it."""
    mix = recommendation_mix(result.recommended, truth.item_category, len(truth.categories))
    return js_divergence(truth.mixtures[result.rows], mix)


def profile_shares(
    truth: Truth, rows: np.ndarray, half_life: float = SHORT_HALF_LIFE
) -> np.ndarray:
    """(len(rows), n_categories) the short-term profile the service would report just before
    each of these dataset rows: the user's earlier item events, each weighing half as much per
    ``half_life`` newer ones, spread over the item's catalog categories."""
    dataset = truth.dataset
    topics = Topics.from_categories(list(dataset.items["categories"]))
    columns = [topics.names.index(c) for c in truth.categories]
    membership = topics.membership.toarray()[:, columns]  # (n_items, n_categories)
    ev = dataset.events
    users = ev["user"].to_numpy()
    items = ev["item"].to_numpy()
    wanted = np.zeros(len(ev), bool)
    wanted[rows] = True
    shares = np.zeros((len(ev), len(columns)))
    decay = 0.5 ** (1.0 / half_life)
    running = np.zeros(len(columns))
    for row in range(len(ev)):
        if row == 0 or users[row] != users[row - 1]:
            running[:] = 0.0
        if wanted[row]:
            shares[row] = shares_of(running)
        if items[row] >= 0:
            running = running * decay + membership[items[row]]
    return shares[rows]


def profile_errors(result: ReplayResult, truth: Truth) -> np.ndarray:
    """(n,) divergence between each event's true mixture and the profile just before it."""
    return js_divergence(truth.mixtures[result.rows], profile_shares(truth, result.rows))


def adaptation_delays(result: ReplayResult, truth: Truth, before: int = BEFORE) -> pd.DataFrame:
    """One row per true shift the replay covers (asks on both sides of it): how many of the
    user's events after the shift had been seen when the served top k first leant as far
    towards the new mixture as it leant towards the old one just before the shift.

    The lean of an answer is JS(answer, new) - JS(answer, old) before the shift (positive:
    closer to the old interest), averaged over the last ``before`` asks, and JS(answer, old) -
    JS(answer, new) after it. "New" is the mixture in force at the change's last event (a
    gradual change blends into it). ``censored``: it never got there before the user's next
    shift or the end of the replay (the delay is then the events that were available, a lower
    bound), or the answers did not lean towards the old interest to begin with: a model that
    never told the two apart has not adapted to the change."""
    mix = recommendation_mix(result.recommended, truth.item_category, len(truth.categories))
    users = truth.dataset.user_index(result.users)
    shifts = truth.shifts
    out = []
    for n, shift in enumerate(shifts.itertuples(index=False)):
        mine = np.flatnonzero(users == shift.user)  # this user's asks, in time order
        rows = result.rows[mine]
        following = shifts.iloc[n + 1] if n + 1 < len(shifts) else None
        same_user = following is not None and following["user"] == shift.user
        end = following["first_row"] if same_user else np.inf
        earlier = mine[rows < shift.first_row][-before:]
        after = mine[(rows >= shift.first_row) & (rows < end)]
        if not len(earlier) or not len(after):
            continue  # the replay does not cover both sides of this shift
        old = truth.mixtures[shift.first_row - 1]
        new = truth.mixtures[shift.last_row]

        def lean(asks: np.ndarray, towards: np.ndarray, away: np.ndarray) -> np.ndarray:
            """How much closer each ask's answer is to ``towards`` than to ``away``."""
            shape = mix[asks].shape
            return js_divergence(np.broadcast_to(away, shape), mix[asks]) - js_divergence(
                np.broadcast_to(towards, shape), mix[asks]
            )

        lean_before = float(lean(earlier, old, new).mean())
        reached = np.flatnonzero(lean(after, new, old) >= lean_before) if lean_before > 0 else []
        out.append(
            {
                "user": str(truth.dataset.user_ids[shift.user]),
                "kind": shift.kind,
                "delay": int(reached[0]) if len(reached) else len(after),
                "censored": not len(reached),
                "lean_before": lean_before,
            }
        )
    return pd.DataFrame(out, columns=["user", "kind", "delay", "censored", "lean_before"])


def tracking_report(result: ReplayResult, truth: Truth) -> dict[str, Any]:
    """Mean recommendation and profile errors, and adaptation delays by kind of shift (median
    counting censored shifts as never adapted)."""
    delays = adaptation_delays(result, truth)
    report: dict[str, Any] = {
        "model": result.model,
        "events": len(result.rows),
        "recommendation_error": float(recommendation_errors(result, truth).mean()),
        "profile_error": float(profile_errors(result, truth).mean()),
    }
    for kind in ("abrupt", "gradual"):
        part = delays[delays["kind"] == kind]
        values = np.where(part["censored"], np.inf, part["delay"]).astype(float)
        report[kind] = {
            "shifts": len(part),
            "median_delay": float(np.median(values)) if len(part) else None,
            "mean_delay_adapted": float(part.loc[~part["censored"], "delay"].mean())
            if (~part["censored"]).any()
            else None,
            "censored": int(part["censored"].sum()),
        }
    return report


__all__ = [
    "BEFORE",
    "Truth",
    "adaptation_delays",
    "profile_errors",
    "profile_shares",
    "recommendation_errors",
    "recommendation_mix",
    "tracking_report",
]

"""What a report tells about one user, gathered through the service's own tracker.

The user's events go through the same `Tracker` the service and the replay use (a scratch
store), so the timeline, the drift alarms, the recommendations and their explanations are what
`driftrec serve` would answer for this user after these events. Where the data come from the
synthetic generator, the true interest mixture and change points are kept beside them.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftrec.data.dataset import Dataset
from driftrec.data.events import Event
from driftrec.evaluation.replay import scratch_tracker, stored_events
from driftrec.evaluation.tracking import Truth
from driftrec.models.base import Recommender
from driftrec.tracking import Catalog


@dataclass(frozen=True)
class UserStory:
    """``timeline``, ``interests`` and ``why`` are the service's JSON answers
    (`GET /users/{id}/timeline`, `/interests`, `/recommendations/{item}/why`),
    ``recommendations`` the top k as (item, score, title, categories), ``topics`` every topic
    name of the served model (for colours that hold across charts); ``truth`` (synthetic data
    only): the true category shares after each item event (columns: timestamp and one per
    category) and ``shifts`` the true change points (timestamp, end_timestamp, kind)."""

    user: str
    timeline: dict[str, Any]
    interests: dict[str, Any]
    recommendations: list[dict[str, Any]]
    why: dict[str, dict[str, Any]]
    topics: list[str]
    truth: pd.DataFrame | None = None
    shifts: pd.DataFrame | None = None


def user_story(
    model: Recommender, dataset: Dataset, user: str, truth: Truth | None = None, k: int = 10
) -> UserStory:
    """The story of ``user`` of ``dataset`` as ``model`` serves them: the events the model
    already holds for the user (its training history) plus the dataset's newer ones."""
    index = dataset.user_index([user])[0]  # an unknown user is an UnknownIdError
    ev = dataset.events[dataset.events["user"] == index].sort_values("timestamp", kind="stable")
    ev = ev[_not_held(dataset, ev, model.history_events(user))]
    with tempfile.TemporaryDirectory(prefix="driftrec-report-") as scratch:
        tracker = scratch_tracker(model, Catalog.from_dataset(dataset), Path(scratch) / "r.db", 1)
        try:
            tracker.ingest(stored_events(dataset, ev))
            timeline = tracker.timeline(user, points=500, top=8)
            interests = tracker.interests(user, top=8)
            answer = tracker.recommend(user, k)
            why = {item: tracker.why(user, item) for item in answer.items}
        finally:
            tracker.close()
            tracker.store.close()
    recommendations = [
        {
            "item": item,
            "score": score,
            "title": tracker.catalog.get(item).title,
            "categories": list(tracker.catalog.get(item).categories),
        }
        for item, score in zip(answer.items, answer.scores, strict=True)
    ]
    topics = [] if tracker.engine.topics is None else list(tracker.engine.topics.names)
    story = UserStory(user, timeline, interests, recommendations, why, topics)
    if truth is None:
        return story
    rows = np.flatnonzero(
        (dataset.events["user"].to_numpy() == index) & (dataset.events["item"].to_numpy() >= 0)
    )
    shares = pd.DataFrame(truth.mixtures[rows], columns=truth.categories)
    shares.insert(0, "timestamp", dataset.events["timestamp"].to_numpy()[rows])
    mine = truth.shifts[truth.shifts["user"] == index]
    times = dataset.events["timestamp"].to_numpy()
    shifts = pd.DataFrame(
        {
            "timestamp": times[mine["first_row"].to_numpy()],
            "end_timestamp": times[mine["last_row"].to_numpy()],
            "kind": mine["kind"].to_numpy(),
        }
    )
    return UserStory(user, timeline, interests, recommendations, why, topics, shares, shifts)


def _not_held(dataset: Dataset, ev: pd.DataFrame, held: list[Event]) -> np.ndarray:
    """(len(ev),) which of a user's dataset events the model does not hold already: the
    tracker starts from the model's saved history, so those would count twice. Matched as a
    multiset of (item, timestamp), so events at equal times are each matched once."""
    left = Counter((e.item, e.timestamp) for e in held)
    codes = ev["item"].to_numpy()
    items = [None if c < 0 else str(dataset.item_ids[c]) for c in codes]
    keep = np.ones(len(ev), bool)
    for n, key in enumerate(zip(items, ev["timestamp"].to_numpy().tolist(), strict=True)):
        if left[key] > 0:
            left[key] -= 1
            keep[n] = False
    return keep


__all__ = ["UserStory", "user_story"]

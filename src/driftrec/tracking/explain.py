"""Why an item is recommended: how much each past event raises its score.

Model-agnostic leave-one-out: score the history, then the history with one event left out; the
difference is that event's contribution. It works for every model (for factorised ones through
query vectors, without scoring the catalog) and is what the service's `/why` and the influential
events of `/interests` report. One batched pass scores the full history and every left-out one.
"""

from __future__ import annotations

import numpy as np

from driftrec.data.events import Event
from driftrec.models.base import Recommender
from driftrec.models.capabilities import Factorised

EXPLAINED_EVENTS = 20  # the newest item events whose contributions are measured


def target_scores(model: Recommender, rows: list[list[Event]], targets: np.ndarray) -> np.ndarray:
    """(len(rows), len(targets)) scores of the target items (indices) for each row of events."""
    histories = model.query_histories(events=rows)
    if isinstance(model, Factorised):
        scores = model.query_vectors(histories) @ model.item_vectors()[targets].T
        bias = model.item_bias()
        return scores + (0 if bias is None else bias[targets])
    return model.score(histories)[:, targets]


def contributions(
    model: Recommender, events: list[Event], targets: np.ndarray, last: int = EXPLAINED_EVENTS
) -> tuple[np.ndarray, np.ndarray]:
    """(positions, (len(positions), len(targets)) contributions): for each of the newest
    ``last`` events in ``events`` (item events the model knows, oldest first), how much it
    raises each target's score (negative: it lowers it)."""
    positions = np.arange(max(0, len(events) - last), len(events))
    if len(positions) == 0 or len(targets) == 0:
        return positions, np.zeros((len(positions), len(targets)), np.float32)
    rows = [events] + [events[:p] + events[p + 1 :] for p in positions]
    scores = target_scores(model, rows, np.asarray(targets, np.int64))
    return positions, (scores[0][None, :] - scores[1:]).astype(np.float32)


__all__ = ["EXPLAINED_EVENTS", "contributions", "target_scores"]

"""Hyper-parameter search on validation data: the one documented way driftrec tunes a model.

Every combination of a small grid is fitted on the training part (neural models stop early on the
validation part) and scored on the validation part only; the test part is never looked at. The best
combination by validation NDCG@10 wins; ties go to the earlier combination in grid order.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

from driftrec.data.split import NO_ROWS_HINT, Split
from driftrec.errors import InputError
from driftrec.evaluation.evaluator import RANKING_METRICS, evaluate
from driftrec.models import create
from driftrec.models.base import Recommender

# Used when no grid is given: the parameters that matter most for each model, a few values each.
DEFAULT_GRIDS: dict[str, dict[str, list[Any]]] = {
    "itemknn": {"neighbors": [20, 50, 100, 200]},
    "als": {"factors": [32, 64, 128], "regularization": [0.01, 0.05, 0.5]},
    "bpr": {"factors": [32, 64, 128], "regularization": [0.001, 0.01]},
    "sasrec": {"dropout": [0.2, 0.5]},
    "gru4rec": {"dropout": [0.2, 0.5]},
    "fused": {"dropout": [0.2, 0.5]},
}


@dataclass
class TuningResult:
    """The winning parameters and every trial (parameters, validation metrics, seconds)."""

    model: str
    best_params: dict[str, Any]
    best_score: float
    metric: str
    trials: list[dict[str, Any]]
    best_model: Recommender  # fitted with best_params, ready to use or evaluate on test


def grid_search(
    split: Split,
    model: str,
    grid: dict[str, list[Any]] | None = None,
    base_params: dict[str, Any] | None = None,
    metric: str = "NDCG@10",
) -> TuningResult:
    """Fit ``model`` for every combination of ``grid`` (default: DEFAULT_GRIDS[model]) on top of
    ``base_params`` and keep the one with the best validation ``metric``."""
    if not len(split.valid):
        raise InputError(
            f"{split.train.name}: the {split.protocol} split has no validation users to tune on"
            f" ({NO_ROWS_HINT[split.protocol]})"
        )
    known = [f"{name}@10" for name in RANKING_METRICS]
    if metric not in known:
        raise InputError(f"unknown metric {metric!r}; choose one of: {', '.join(known)}")
    grid = grid if grid is not None else DEFAULT_GRIDS.get(model, {})
    names = list(grid)
    combinations = [
        {**(base_params or {}), **dict(zip(names, values, strict=True))}
        for values in itertools.product(*(grid[n] for n in names))
    ]
    for params in combinations:  # every value refused now, not after the fits before it
        create(model, **params)
    trials: list[dict[str, Any]] = []
    best: tuple[float, dict[str, Any], Recommender] | None = None
    for params in combinations:
        start = time.perf_counter()
        recommender = create(model, **params).fit(split.train, valid=split.valid)
        result = evaluate(recommender, split.valid, split.train, ks=(10,))
        if metric not in result.metrics:
            raise InputError(
                f"{split.train.name}: no validation row has a target the user had not already"
                " seen, so there is nothing to tune on"
            )
        trials.append(
            {
                "params": params,
                "valid_metrics": result.metrics,
                "seconds": time.perf_counter() - start,
            }
        )
        if best is None or result.metrics[metric] > best[0]:  # the first of equals wins
            best = (result.metrics[metric], params, recommender)
    if best is None:
        raise InputError(f"empty grid for {model!r}")
    return TuningResult(model, best[1], best[0], metric, trials, best[2])

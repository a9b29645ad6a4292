"""Fit-and-evaluate runs shared by the CLI and the benchmark scripts, recorded the same way."""

from __future__ import annotations

import time
from typing import Any

from driftrec.data.dataset import Dataset
from driftrec.data.split import PROTOCOLS, Split, check_protocol, make_split
from driftrec.evaluation.evaluator import evaluate
from driftrec.models import create
from driftrec.models.base import Recommender
from driftrec.models.capabilities import ReportsTraining

# `train` also takes "all": learn from every event, for a model that is going to be used.
TRAIN_PROTOCOLS = ("all", *PROTOCOLS)


def train_model(recommender: Recommender, dataset: Dataset, protocol: str = "all") -> Recommender:
    """Fit ``recommender`` to be used, not evaluated: with "all" it learns from every event.

    Models that stop early (the neural ones) need held-out events to know when: they learn from
    the leave-one-out training part, stop on its validation events, and then take every user's
    whole history, so `recommend` conditions on and excludes everything the user did. With
    "loo" or "temporal" the model learns from that split's training part only, so `evaluate`
    can score it on held-out events.
    """
    check_protocol(protocol, TRAIN_PROTOCOLS)
    if protocol == "all" and not recommender.stops_early:
        return recommender.fit(dataset)
    split = make_split(dataset, "loo" if protocol == "all" else protocol)
    if not len(split.valid):  # nobody to stop on: the fixed number of epochs
        return recommender.fit(dataset if protocol == "all" else split.train)
    recommender.fit(split.train, valid=split.valid)
    if protocol == "all":
        recommender.update_histories(dataset)
    return recommender


def fit_and_evaluate(
    split: Split,
    model: str | Recommender,
    params: dict[str, Any] | None = None,
    ks: tuple[int, ...] = (10,),
    exclude_seen: bool = True,
    progress: bool = False,
    refit: bool = True,
) -> tuple[Recommender, dict[str, Any]]:
    """Fit on ``split.train`` (unless ``refit`` is False for an already trained model), evaluate
    on validation and test; return the model and a record (dataset, model, params, protocol, test
    metrics by name, validation metrics, seconds)."""
    recommender = create(model, **(params or {})) if isinstance(model, str) else model
    start = time.perf_counter()
    if refit:
        recommender.fit(split.train, valid=split.valid)
    fit_seconds = time.perf_counter() - start
    kwargs = {"ks": ks, "exclude_seen": exclude_seen, "progress": progress}
    valid = evaluate(recommender, split.valid, split.train, **kwargs)
    test = evaluate(recommender, split.test, split.train, **kwargs)
    record = {
        "dataset": split.train.name,
        "model": model if isinstance(model, str) else recommender.name,
        "params": recommender.get_params(),
        "protocol": split.protocol,
        "exclude_seen": exclude_seen,
        "metrics": test.metrics,
        "valid_metrics": valid.metrics,
        "n_test_users": test.n_users,
        "timings": {
            "fit_seconds": fit_seconds,
            "evaluate_seconds": valid.info["seconds"] + test.info["seconds"],
        },
        "evaluation_info": test.info,
    }
    if refit and isinstance(recommender, ReportsTraining):
        record["training"] = recommender.training_summary()
    return recommender, record

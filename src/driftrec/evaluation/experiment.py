"""Fit-and-evaluate runs shared by the CLI and the benchmark scripts, recorded the same way."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from driftrec.data.dataset import Dataset
from driftrec.data.split import PROTOCOLS, EvalSet, Split, check_protocol, make_split
from driftrec.errors import InputError
from driftrec.evaluation.evaluator import evaluate
from driftrec.models import create
from driftrec.models.base import Recommender
from driftrec.models.capabilities import ContinuesTraining, ReportsTraining

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


def continue_training(
    recommender: Recommender, dataset: Dataset, since: int | None = None, **options: Any
) -> Recommender:
    """Train a fitted ``recommender`` further on ``dataset`` (every event: those it learned
    from and newer ones, new users and items too) to be used, as `train_model` trains with
    "all": a model that stops early continues on the leave-one-out training part, stops on its
    validation events and then takes every user's whole history. ``options`` go to
    `partial_fit`. An `InputError` when the model cannot continue or nothing is newer than
    ``since`` (default: the newest event it learned from)."""
    if not isinstance(recommender, ContinuesTraining):
        raise InputError(
            f"a {recommender.name!r} model cannot continue training; train it from scratch"
        )
    since = recommender.trained_until_ if since is None else since
    grown = dataset.reindexed(
        recommender.user_ids_, recommender.item_ids_, recommender.event_types_
    )
    if not (grown.item_events()["timestamp"].to_numpy() > since).any():
        raise InputError(
            f"dataset {dataset.name!r} has no item events after {moment(since, dataset)},"
            " the newest the model learned from: nothing new to train on"
        )
    if not recommender.stops_early:
        return recommender.partial_fit(grown, since, **options)
    split = make_split(grown, "loo")
    if not len(split.valid):  # nobody to stop on: the fixed number of epochs
        return recommender.partial_fit(grown, since, **options)
    valid = _newer_rows(split.valid, grown, since)
    recommender.partial_fit(split.train, since, valid=valid, **options)
    return recommender.update_histories(grown)


def _newer_rows(valid: EvalSet, dataset: Dataset, since: int) -> EvalSet:
    """The leave-one-out validation rows of ``dataset`` whose held-out event (the user's
    second-to-last item event) is after ``since``: what the model has yet to learn, which is
    what training further should stop on (on every row, the many users with nothing new would
    drown the change); every row when none is."""
    history = dataset.histories()
    users = valid.histories.users  # (n,) each row's user, with at least 3 item events
    held_out = history.timestamps[history.indptr[users + 1] - 2]
    newer = np.flatnonzero(held_out > since)
    return valid.take(newer) if len(newer) else valid


def moment(timestamp: int, dataset: Dataset) -> str:
    """A dataset time as people read it: UTC date and time, or a position in sequences."""
    if dataset.info.get("has_timestamps") is False:
        return f"position {timestamp}"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


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

"""Fit-and-evaluate runs shared by the CLI and the benchmark scripts, recorded the same way."""

from __future__ import annotations

import time
from typing import Any

from driftrec.data.dataset import Dataset
from driftrec.data.split import Split, leave_one_out, temporal_split
from driftrec.errors import InputError
from driftrec.evaluation.evaluator import evaluate
from driftrec.models import create
from driftrec.models.base import Recommender

PROTOCOLS = ("loo", "temporal")


def make_split(dataset: Dataset, protocol: str) -> Split:
    """The split a protocol name stands for: "loo" (leave-one-out) or "temporal" (80/10/10)."""
    if protocol == "loo":
        return leave_one_out(dataset)
    if protocol == "temporal":
        return temporal_split(dataset)
    raise InputError(f"unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")


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
    summary = getattr(recommender, "training_summary", None)
    if refit and summary is not None:
        record["training"] = summary()
    return recommender, record

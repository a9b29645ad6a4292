"""`driftrec replay`: models meet the newest events of a dataset one by one, through the tracker
the service uses; quality overall and per window, printed as tables and saved as JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from driftrec.cli.output import console, labelled_table
from driftrec.data.dataset import Dataset
from driftrec.errors import InputError
from driftrec.evaluation.experiment import train_model
from driftrec.evaluation.replay import ReplayPolicy, ReplayResult, replay, replay_split
from driftrec.models import MODELS, create, load
from driftrec.models.base import Recommender
from driftrec.params import duration_seconds


def model_for_replay(
    name: str, train: Dataset, start_time: int, params: dict[str, Any]
) -> tuple[str, Recommender | None]:
    """A registry name (fitted later, on the events before the replay) or a trained model
    directory, loaded and checked that it learned nothing the replay holds out."""
    path = Path(name)
    if not path.is_dir():
        if name not in MODELS:
            raise InputError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
        create(name, **params)  # bad parameters fail before any training
        return name, None
    if params:
        raise InputError(f"{name}: --param applies to models trained here, not a trained one")
    model = load(path)
    if not model.has_ids_of(train):
        raise InputError(
            f"{path}: the model's ids ({model.n_items} items) are not those of the dataset;"
            " train it on the same dataset"
        )
    history = model.history_
    if len(history.timestamps) and int(history.timestamps.max()) >= start_time:
        raise InputError(
            f"{path}: trained on events at or after the replay's start; train it on the"
            " events before it (or replay a smaller --fraction)"
        )
    return str(path), model


def run_replay(
    dataset: Dataset,
    names: list[str],
    params: dict[str, Any],
    fraction: float,
    k: int,
    exclude_seen: bool,
    windows: int,
    window: str | None,
    refit_every: int | None,
    calibrate: float = 0.0,
) -> list[dict[str, Any]]:
    """Replay every model; print the overall and per-window tables; return the JSON records."""
    seconds = duration_seconds(window) if window is not None else None
    if windows < 1:
        raise InputError(f"--windows must be a positive integer, not {windows}")
    if k < 1:
        raise InputError(f"-k must be a positive integer, not {k}")
    train, start = replay_split(dataset, fraction)
    start_time = int(np.sort(dataset.events["timestamp"].to_numpy(), kind="stable")[start])
    chosen = [model_for_replay(name, train, start_time, params) for name in names]
    console.print(
        f"replaying {dataset.n_events - start:,} of {dataset.n_events:,} events of"
        f" {dataset.name} (the newest {fraction:.0%}); models learn from the"
        f" {train.n_events:,} before them"
    )
    results: list[ReplayResult] = []
    for name, model in chosen:
        refit = None
        if refit_every is not None:
            if model is not None:
                raise InputError(f"{name}: --refit-every needs a model name to train again")
            refit = lambda data, name=name: train_model(create(name, **params), data)  # noqa: E731
        policy = ReplayPolicy(refit_every, refit)
        if model is None:
            console.print(f"training {name} on {train.n_events:,} events")
            model = train_model(create(name, **params), train)  # as `driftrec train` does
        results.append(
            replay(model, dataset, start, k, exclude_seen, policy, name=name, calibrate=calibrate)
        )
    records = [r.to_dict(windows, seconds) for r in results]
    timed = dataset.info.get("has_timestamps") is not False
    console.print(_overall_table(records, k))
    console.print(_windows_table(records, k, timed))
    console.print(f"policy: {records[0]['policy']}")
    if calibrate:
        console.print(f"answers calibrated towards the short-term interest mix ({calibrate:g})")
    return records


def _overall_table(records: list[dict[str, Any]], k: int) -> Table:
    table = labelled_table(
        "replay: every replayed item event",
        ["model", f"HR@{k}", f"NDCG@{k}", "events", "cold answers", "new items", "events/s"],
    )
    for r in records:
        o = r["overall"]
        table.add_row(
            r["model"],
            f"{o[f'hr@{k}']:.4f}",
            f"{o[f'ndcg@{k}']:.4f}",
            f"{o['events']:,}",
            f"{o['cold_answers']:,}",
            f"{o['new_items']:,}",
            f"{r['events_per_s']:,.0f}",
        )
    return table


def _windows_table(records: list[dict[str, Any]], k: int, timed: bool) -> Table:
    table = Table(title=f"replay: HR@{k} / NDCG@{k} per window")
    for column in ("window", "from", "to", "events"):
        table.add_column(column, justify="right")
    for r in records:
        table.add_column(r["model"], justify="right")
    for n, first in enumerate(records[0]["windows"]):
        cells = [
            f"{w['windows'][n][f'hr@{k}']:.4f} / {w['windows'][n][f'ndcg@{k}']:.4f}"
            for w in records
        ]
        table.add_row(
            str(first["window"]),
            _when(first["start"], timed),
            _when(first["end"], timed),
            f"{first['events']:,}",
            *cells,
        )
    return table


def _when(timestamp: int, timed: bool) -> str:
    if not timed:
        return f"position {timestamp}"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M")


__all__ = ["model_for_replay", "run_replay"]

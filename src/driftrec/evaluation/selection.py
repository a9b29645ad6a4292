"""Automatic model selection (``driftrec train DATA -m auto --time-budget 30m``): the candidate
models and their few decisive settings, tried on validation data only, within a time budget.

The cheap models (popularity, ItemKNN, ALS) are fitted whole first. The neural ones share what
is left by successive halving, counted in epochs: every candidate trains one epoch (which
measures its cost), then each rung gives every candidate the same number of epochs, the better
half (by validation NDCG@10) goes on, from its own checkpoint, and so on, so the budget goes to
what is winning and a slower model is not cut for being slow. A candidate that stops early on
its own (its validation score no longer improves) has finished and keeps its score; time the
survivors leave that way goes back to the candidates cut while still improving, best first. The
test part of a split is never looked at; the winner is the best validation score, and the
leaderboard says what each got.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftrec.data.dataset import Dataset
from driftrec.data.split import Split, make_split
from driftrec.errors import InputError
from driftrec.evaluation.evaluator import evaluate
from driftrec.models import create
from driftrec.models.base import Recommender
from driftrec.models.capabilities import ReportsTraining
from driftrec.text.items import item_texts

METRIC = "NDCG@10"
CHEAP: list[tuple[str, dict[str, Any]]] = [
    ("pop", {}),
    ("itemknn", {"neighbors": 50}),
    ("itemknn", {"neighbors": 200}),
    ("als", {"factors": 64}),
    ("als", {"factors": 128, "regularization": 0.05}),
]
# Their dropout is the data's rule ("auto"), not a candidate setting: halving judges candidates
# early, and a heavier dropout learns more slowly, so it would be cut before it overtakes.
NEURAL: list[tuple[str, dict[str, Any]]] = [("sasrec", {}), ("gru4rec", {})]
TEXT: list[tuple[str, dict[str, Any]]] = [("sasrec", {"features": "text"})]  # items with text
MIN_SLICE = 5.0  # seconds: no second chance shorter than this


@dataclass
class Trial:
    """One candidate on the leaderboard."""

    model: str
    params: dict[str, Any]
    valid: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    rungs: int = 0  # successive-halving rungs it trained in (0: a cheap model, fitted whole)
    status: str = "fitted"  # fitted | converged | budget | eliminated
    trained: float = 0.0  # training seconds in all
    epoch_seconds: float = 0.0  # what one epoch of it costs, measured
    epochs: int = 0
    recommender: Recommender | None = field(default=None, repr=False)

    @property
    def score(self) -> float:
        return self.valid.get(METRIC, -1.0)

    def progress(self) -> str:
        return f"valid {METRIC} {self.score:.4f} after {self.epochs} epochs ({self.status})"

    def label(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.model}({shown})" if shown else self.model

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "params": self.params,
            "valid": self.valid,
            "seconds": round(self.seconds, 1),
            "rungs": self.rungs,
            "epochs": self.epochs,
            "status": self.status,
        }


@dataclass
class Selection:
    """The winner (fitted as `train` would fit it) and every trial, best first."""

    winner: Recommender
    trials: list[Trial]
    budget: float
    seconds: float

    def leaderboard(self) -> list[dict[str, Any]]:
        return [t.to_dict() for t in self.trials]


def candidates(dataset: Dataset) -> list[tuple[str, dict[str, Any]]]:
    """The models tried on ``dataset``: the cheap ones, the neural ones, and SASRec reading the
    items' text when most items have some."""
    with_text = sum(1 for t in item_texts(dataset) if t.strip()) >= dataset.n_items / 2
    return [*CHEAP, *NEURAL, *(TEXT if with_text else [])]


def select_model(
    dataset: Dataset,
    time_budget: float,
    protocol: str = "all",
    tried: list[tuple[str, dict[str, Any]]] | None = None,
    report: Callable[[str], None] | None = None,
    min_slice: float = MIN_SLICE,
) -> Selection:
    """Try ``tried`` (default `candidates`) on ``dataset``'s validation part within
    ``time_budget`` seconds and return the best, trained for ``protocol`` ("all": then given
    every user's whole history, as `train_model` does). A neural candidate gets at least one
    epoch a rung, and a second chance no shorter than ``min_slice`` seconds."""
    if not time_budget > 0:
        raise InputError(f"the time budget must be positive, not {time_budget}")
    say = report or (lambda line: None)
    start = time.monotonic()
    split = make_split(dataset, "loo" if protocol == "all" else protocol)
    if not len(split.valid):
        raise InputError(
            f"{dataset.name}: no user has enough events to hold one out for validation; auto"
            " selection needs validation data"
        )
    tried = tried if tried is not None else candidates(dataset)
    trials = [Trial(name, dict(params)) for name, params in tried]
    # every setting is checked (and refused) now, before any fit
    cheap = [t for t in trials if not create(t.model, **t.params).stops_early]
    neural = [t for t in trials if t not in cheap]
    for trial in cheap:
        began = time.monotonic()
        trial.recommender = create(trial.model, **trial.params).fit(split.train)
        trial.valid = _scores(trial.recommender, split)
        trial.seconds = time.monotonic() - began
        say(f"{trial.label()}: valid {METRIC} {trial.score:.4f} ({trial.seconds:.1f} s)")
    with tempfile.TemporaryDirectory(prefix="driftrec-auto-") as scratch:
        left = start + time_budget - time.monotonic()
        _halve(neural, split, left, min_slice, Path(scratch), say)
    ranked = sorted((t for t in trials if t.recommender is not None), key=lambda t: -t.score)
    if not ranked:
        raise InputError(f"no candidate could be trained within {time_budget:.0f} s")
    best = ranked[0]
    winner = best.recommender
    assert winner is not None
    if winner.stops_early:  # the selection's own limits are not the model's settings
        winner.set_params(time_budget=None, checkpoint_dir=None, progress=True)
    if protocol == "all":
        if winner.stops_early:
            winner.update_histories(dataset)
        else:
            winner = create(best.model, **best.params).fit(dataset)
    order = ranked + [t for t in trials if t.recommender is None]
    return Selection(winner, order, time_budget, time.monotonic() - start)


def _halve(
    trials: list[Trial],
    split: Split,
    budget: float,
    min_slice: float,
    scratch: Path,
    say: Callable[[str], None],
) -> None:
    """Successive halving over the neural ``trials`` within ``budget`` seconds, in epochs: one
    epoch each first, which measures what an epoch of each costs, then every rung gives each
    candidate still running the same number of epochs (as many as the rung's share of the time
    buys them all, at least one), so a slower model is compared after as many epochs as a fast
    one, not cut for being slow. Time the survivors leave (they converged early) goes back to
    the eliminated, best first."""
    if not trials:
        return
    deadline = time.monotonic() + max(budget, 0.0)
    for trial in trials:
        _train(trial, 1, trials.index(trial), split, scratch)
        say(f"first epoch, {trial.label()}: {trial.progress()}")
    rungs = max(1, math.ceil(math.log2(len(trials))) + 1)
    alive = list(trials)
    for rung in range(rungs):
        running = [t for t in alive if t.status != "converged"]
        if not running:
            break
        per_rung = max(deadline - time.monotonic(), 0.0) / (rungs - rung)
        epoch_cost = max(sum(t.epoch_seconds for t in running), 1e-9)
        more = max(1, int(per_rung / epoch_cost))  # epochs each, this rung
        for trial in running:
            _train(trial, trial.epochs + more, trials.index(trial), split, scratch)
            trial.rungs = rung + 1
            say(f"rung {rung + 1}/{rungs}, {trial.label()}: {trial.progress()}")
        if rung == rungs - 1:
            break
        alive.sort(key=lambda t: -t.score)
        keep = max(1, math.ceil(len(alive) / 2))
        for trial in alive[keep:]:
            trial.status = "eliminated" if trial.status == "budget" else trial.status
        alive = alive[:keep]
    # a second chance: what the survivors did not use, to those cut while still improving
    waiting = sorted((t for t in trials if t.status == "eliminated"), key=lambda t: -t.score)
    for n, trial in enumerate(waiting):
        share = (deadline - time.monotonic()) / (len(waiting) - n)
        if share < max(min_slice, trial.epoch_seconds):
            break
        _train(
            trial,
            trial.epochs + int(share / trial.epoch_seconds),
            trials.index(trial),
            split,
            scratch,
        )
        if trial.status == "budget":
            trial.status = "eliminated"  # still cut: it had its second chance
        say(f"time left, {trial.label()}: {trial.progress()}")


def _train(trial: Trial, epochs: int, number: int, split: Split, scratch: Path) -> None:
    """Train ``trial`` on from its checkpoint until ``epochs`` epochs in all (fewer if its own
    ``epochs`` or patience stop it first)."""
    began = time.monotonic()
    own_epochs = int(create(trial.model, **trial.params).get_params()["epochs"])
    limits = {"epochs": min(epochs, own_epochs), "time_budget": None}
    own = {"checkpoint_dir": str(scratch / f"candidate-{number}"), "progress": False}
    recommender = create(trial.model, **{**trial.params, **limits, **own})
    recommender.fit(split.train, valid=split.valid)
    trial.recommender = recommender
    trial.valid = _scores(recommender, split)
    trial.seconds += time.monotonic() - began
    summary = recommender.training_summary() if isinstance(recommender, ReportsTraining) else {}
    trial.epochs = int(summary.get("epochs_run", 0))
    trial.trained = float(summary.get("train_seconds", 0.0))
    trial.epoch_seconds = trial.trained / max(trial.epochs, 1)
    # converged: stopped by its own patience or its own epochs, not by the epochs given here
    finished = bool(summary.get("stopped_early")) or trial.epochs >= own_epochs
    trial.status = "converged" if finished else "budget"


def _scores(recommender: Recommender, split: Split) -> dict[str, float]:
    return evaluate(recommender, split.valid, split.train, ks=(10,)).metrics


def parse_duration(text: str) -> float:
    """Seconds in "90", "90s", "30m", "1.5h"."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    value = text.strip().lower()
    scale = units.get(value[-1:])
    number = value[:-1] if scale is not None else value
    try:
        seconds = float(number) * (scale or 1.0)
    except ValueError:
        raise InputError(
            f"--time-budget {text!r}: expected seconds or a number with s, m or h"
        ) from None
    if not seconds > 0:
        raise InputError(f"--time-budget {text!r}: must be positive")
    return seconds


__all__ = ["Selection", "Trial", "candidates", "parse_duration", "select_model"]

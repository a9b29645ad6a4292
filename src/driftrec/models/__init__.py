"""Recommenders behind one interface, and the registry that names them for the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from driftrec.models.base import Recommendations, Recommender, read_config
from driftrec.models.bias import BiasBaseline
from driftrec.models.factorization import ALS, BPR
from driftrec.models.fused import FusedInterest
from driftrec.models.gru4rec import GRU4Rec
from driftrec.models.itemknn import ItemKNN
from driftrec.models.popularity import Popularity
from driftrec.models.sasrec import SASRec

_CLASSES: dict[str, type[Recommender]] = {
    cls.name: cls
    for cls in (Popularity, ItemKNN, BPR, ALS, BiasBaseline, SASRec, GRU4Rec, FusedInterest)
}

# Names the CLI accepts; "recent-pop" is popularity over the latest 10% of training events.
MODELS: dict[str, Callable[..., Recommender]] = {
    "pop": Popularity,
    "recent-pop": lambda **kw: Popularity(**{"window": 0.1, **kw}),
    "itemknn": ItemKNN,
    "bpr": BPR,
    "als": ALS,
    "bias": BiasBaseline,
    "sasrec": SASRec,
    "gru4rec": GRU4Rec,
    "fused": FusedInterest,
}


def create(name: str, **params: Any) -> Recommender:
    """A model by its registry name, e.g. ``create("als", factors=128)``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name](**params)


def load(path: str | Path) -> Recommender:
    """Load any saved model directory, whatever its class."""
    config = read_config(Path(path))
    if config["model"] not in _CLASSES:
        raise ValueError(f"{path}: unknown model type {config['model']!r}")
    return _CLASSES[config["model"]].load(path)


__all__ = ["MODELS", "Recommendations", "Recommender", "create", "load"]

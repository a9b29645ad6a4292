"""Recommenders behind one interface, and the registry that names them for the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from driftrec.errors import DataFormatError, InputError
from driftrec.models.base import Recommendations, Recommender, read_config
from driftrec.models.bias import BiasBaseline
from driftrec.models.content import ContentBased
from driftrec.models.factorization import ALS, BPR
from driftrec.models.fused import FusedInterest
from driftrec.models.gru4rec import GRU4Rec
from driftrec.models.itemknn import ItemKNN
from driftrec.models.popularity import Popularity
from driftrec.models.sasrec import SASRec

_CLASSES: dict[str, type[Recommender]] = {
    cls.name: cls
    for cls in (
        Popularity,
        ItemKNN,
        BPR,
        ALS,
        BiasBaseline,
        ContentBased,
        SASRec,
        GRU4Rec,
        FusedInterest,
    )
}

# Names the CLI accepts; "recent-pop" is popularity over the latest 10% of training events.
MODELS: dict[str, Callable[..., Recommender]] = {
    "pop": Popularity,
    "recent-pop": lambda **kw: Popularity(**{"window": 0.1, **kw}),
    "itemknn": ItemKNN,
    "bpr": BPR,
    "als": ALS,
    "bias": BiasBaseline,
    "content": ContentBased,
    "sasrec": SASRec,
    "gru4rec": GRU4Rec,
    "fused": FusedInterest,
}


def create(name: str, **params: Any) -> Recommender:
    """A model by its registry name, e.g. ``create("als", factors=128)``.

    Parameters are checked before anything runs: an unknown name, or a value its rule in the
    model's `param_rules` refuses (which says the type too: a string for an integer), is an
    `InputError` naming it.
    """
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    default = MODELS[name]()
    return type(default).from_params({**default.get_params(), **params})


def load(path: str | Path) -> Recommender:
    """Load any saved model directory, whatever its class."""
    config = read_config(Path(path))
    if config["model"] not in _CLASSES:
        raise DataFormatError(
            f"{Path(path) / 'config.json'}: unknown model type {config['model']!r}"
        )
    return _CLASSES[config["model"]].load(path)


__all__ = [
    "ALS",
    "BPR",
    "MODELS",
    "BiasBaseline",
    "ContentBased",
    "FusedInterest",
    "GRU4Rec",
    "ItemKNN",
    "Popularity",
    "Recommendations",
    "Recommender",
    "SASRec",
    "create",
    "load",
]

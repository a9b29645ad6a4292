"""One entry point from a path on disk to a prepared `Dataset`, whatever the source format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from driftrec.data.catalogs import join_catalog
from driftrec.data.dataset import Dataset
from driftrec.data.importers import read_events, read_items
from driftrec.data.jsonsequences import is_json_sequences, read_json_items, read_json_sequences
from driftrec.data.movielens import movielens_layout, read_movielens_100k, read_movielens_latest
from driftrec.data.preprocess import prepare
from driftrec.data.rechorus import is_rechorus, read_rechorus
from driftrec.data.report import ImportReport
from driftrec.data.sequences import read_sequences, text_layout
from driftrec.data.textfile import content_stem, content_suffix
from driftrec.errors import DataFormatError, InputError

FORMATS = (
    "auto",
    "dataset",
    "movielens-100k",
    "movielens-latest",
    "rechorus",
    "json-sequences",
    "sequences",
    "events",
)
TIMED = ("movielens-100k", "movielens-latest", "rechorus", "events")  # real event times
PREPARE_OPTIONS = ("name", "dedup", "min_user", "min_item", "secret", "keep_user_attributes")


def detect_format(source: str | Path) -> str:
    """The format of ``source``: a saved dataset, a MovieLens directory, sequences or events."""
    path = Path(source)
    if path.is_dir():
        if (path / "manifest.json").is_file():
            return "dataset"
        layout = movielens_layout(path)
        if layout is not None:
            return {"ml-100k": "movielens-100k", "ml-latest": "movielens-latest"}[layout]
        if is_rechorus(path):
            return "rechorus"
        if is_json_sequences(path):
            return "json-sequences"
        raise DataFormatError(
            f"{path}: unknown dataset directory (expected manifest.json, u.data, ratings.csv and"
            " movies.csv, train.csv + dev.csv + test.csv (ReChorus), or *.inter.json)"
        )
    if not path.exists():
        raise DataFormatError(f"{path}: no such file or directory")
    if not path.is_file():
        raise DataFormatError(f"{path}: not a regular file or directory")
    return text_layout(path) if content_suffix(path) == ".txt" else "events"


def read_catalog(path: str | Path, encoding: str = "utf-8") -> tuple[pd.DataFrame, ImportReport]:
    """An item catalog: a table file (`read_items`) or a JSON sequence directory's items."""
    path = Path(path)
    if path.is_dir():
        if not is_json_sequences(path):
            raise DataFormatError(f"{path}: a catalog directory needs a *.item.json file")
        items = read_json_items(path)
        report = ImportReport(source=path.name, rows_read=len(items), rows_imported=len(items))
        return items, report
    return read_items(path, encoding=encoding)


def load_dataset(source: str | Path, format: str = "auto", **kwargs: Any) -> Dataset:
    """Import ``source`` and prepare it (`preprocess.prepare`) into a `Dataset`.

    ``format`` is one of FORMATS ("auto" detects it). Keyword arguments named in PREPARE_OPTIONS go
    to `prepare` (the name defaults to the file or directory name); the others go to the importer:
    ``include_tags`` for ml-latest; ``columns``, ``event_type``, ``timestamp_unit``, ``sep``,
    ``encoding`` and ``items`` (the path of an item catalog for `read_items`) for events;
    ``encoding`` and ``items`` for sequences.
    ``dataset.info`` gets the source, format, ``has_timestamps``, the import report and the
    preprocessing counts. A saved dataset (manifest.json) is loaded as it is and takes no options.
    """
    path = Path(source)
    if format not in FORMATS:
        raise InputError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    fmt = detect_format(path) if format == "auto" else format
    if fmt == "dataset":
        if kwargs:
            raise InputError(f"a saved dataset takes no options (got {', '.join(kwargs)})")
        return Dataset.load(path)
    options = {k: kwargs.pop(k) for k in PREPARE_OPTIONS if k in kwargs}
    options.setdefault("name", content_stem(path) if path.is_file() else path.name)
    items = users = None
    catalog = kwargs.pop("items", None)
    if fmt == "movielens-100k":
        events, items, users, report = read_movielens_100k(path, **kwargs)
    elif fmt == "movielens-latest":
        events, items, users, report = read_movielens_latest(path, **kwargs)
    elif fmt == "rechorus":
        events, items, report = read_rechorus(path)
    elif fmt == "json-sequences":
        events, items, report = read_json_sequences(path)
    elif fmt == "sequences":
        events, report = read_sequences(path, **kwargs)
    else:
        events, report = read_events(path, **kwargs)
    if catalog is not None:  # a catalog beside the events, joined by id or by title
        given, catalog_report = read_catalog(catalog, kwargs.get("encoding", "utf-8"))
        report = ImportReport(source=path.name).merge(report).merge(catalog_report)
        items = join_catalog(events, items, given, report)
    info = {"source": str(path), "format": fmt, "has_timestamps": fmt in TIMED}
    return prepare(events, items, users, report=report, info=info, **options)

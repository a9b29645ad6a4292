"""One entry point from a path on disk to a prepared `Dataset`, whatever the source format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from driftrec.data.dataset import Dataset
from driftrec.data.importers import read_events, read_items
from driftrec.data.movielens import movielens_layout, read_movielens_100k, read_movielens_latest
from driftrec.data.preprocess import prepare
from driftrec.data.report import ImportReport
from driftrec.data.sequences import read_sequences, text_layout
from driftrec.data.textfile import content_stem, content_suffix
from driftrec.errors import DataFormatError, InputError

FORMATS = ("auto", "dataset", "movielens-100k", "movielens-latest", "sequences", "events")
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
        raise DataFormatError(
            f"{path}: unknown dataset directory (expected manifest.json, u.data, "
            f"or ratings.csv and movies.csv)"
        )
    if not path.exists():
        raise DataFormatError(f"{path}: no such file or directory")
    if not path.is_file():
        raise DataFormatError(f"{path}: not a regular file or directory")
    return text_layout(path) if content_suffix(path) == ".txt" else "events"


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
    if fmt == "movielens-100k":
        events, items, users, report = read_movielens_100k(path, **kwargs)
    elif fmt == "movielens-latest":
        events, items, users, report = read_movielens_latest(path, **kwargs)
    else:  # a sequence file or an event table, with an item catalog beside it when given
        catalog = kwargs.pop("items", None)
        read = read_sequences if fmt == "sequences" else read_events
        events, report = read(path, **kwargs)
        if catalog is not None:
            items, item_report = read_items(catalog, encoding=kwargs.get("encoding", "utf-8"))
            report = ImportReport(source=path.name).merge(report).merge(item_report)
    info = {"source": str(path), "format": fmt, "has_timestamps": fmt != "sequences"}
    return prepare(events, items, users, report=report, info=info, **options)

"""JSON sequence directories, the layout text-based sequential recommenders publish (UniSRec,
APAO: the rich-text copy of Amazon Office): ``<name>.inter.json``, each user's items in time
order (``{"user": [item, ...]}``, no times), and ``<name>.item.json``, each item's fields
(``title``, ``description``, ``brand``, ``categories`` as a comma-separated path).

Without times, an event's timestamp is its position in the user's sequence (as for sequence
files). The item's title is its title; its text the description and brand (what text features
embed beside the title); its categories the levels of its category path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftrec.data.report import ImportReport
from driftrec.errors import DataFormatError


def _one(directory: Path, suffix: str) -> Path | None:
    found = sorted(directory.glob(f"*{suffix}"))
    return found[0] if found else None


def is_json_sequences(directory: Path) -> bool:
    return _one(directory, ".inter.json") is not None


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataFormatError(f"{path}: not valid JSON ({err})") from None


def read_json_sequences(
    directory: str | Path,
) -> tuple[pd.DataFrame, pd.DataFrame | None, ImportReport]:
    """Events (event "interaction", value 1.0, timestamp = position) and, when there is an
    item file, items."""
    directory = Path(directory)
    inter = _one(directory, ".inter.json")
    if inter is None:
        raise DataFormatError(f"{directory}: no *.inter.json (user -> items) file")
    sequences = _load(inter)
    if not isinstance(sequences, dict):
        raise DataFormatError(f"{inter}: expected an object of user -> list of items")
    report = ImportReport(source=directory.name)
    users: list[str] = []
    items: list[str] = []
    positions: list[int] = []
    for user, sequence in sequences.items():
        report.rows_read += 1
        if not isinstance(sequence, list) or not sequence:
            report.add_bad(inter.name, report.rows_read, "items", "no_items", str(user))
            continue
        report.rows_imported += 1
        users += [str(user)] * len(sequence)
        items += [str(i) for i in sequence]
        positions += range(len(sequence))
    n = len(items)
    events = pd.DataFrame(
        {
            "user": pd.Series(users, dtype=object),
            "item": pd.Series(items, dtype=object),
            "timestamp": np.asarray(positions, dtype=np.int64),
            "event": pd.Series(np.full(n, "interaction", dtype=object), dtype=object),
            "value": np.ones(n),
            "text": pd.Series(np.full(n, None, dtype=object), dtype=object),
        }
    )
    report.note(f"{inter.name}: no timestamps in this format; timestamp = position in the sequence")
    item_file = _one(directory, ".item.json")
    return events, None if item_file is None else _items(item_file), report


def _items(path: Path) -> pd.DataFrame:
    fields = _load(path)
    if not isinstance(fields, dict):
        raise DataFormatError(f"{path}: expected an object of item -> fields")
    ids, titles, texts, categories = [], [], [], []
    for item, value in fields.items():
        value = value if isinstance(value, dict) else {}
        ids.append(str(item))
        titles.append(str(value.get("title") or ""))
        texts.append(" ".join(str(value.get(k) or "") for k in ("description", "brand")).strip())
        path_ = str(value.get("categories") or "")
        categories.append([c.strip() for c in path_.split(",") if c.strip()])
    return pd.DataFrame(
        {
            "item": pd.Series(ids, dtype=object),
            "title": pd.Series(titles, dtype=object),
            "text": pd.Series(texts, dtype=object),
            "categories": pd.Series(categories, dtype=object),
            "tags": pd.Series([[] for _ in ids], dtype=object),
        }
    )


def read_json_items(directory: str | Path) -> pd.DataFrame:
    """The item table of a JSON sequence directory alone (a catalog for another import)."""
    item_file = _one(Path(directory), ".item.json")
    if item_file is None:
        raise DataFormatError(f"{directory}: no *.item.json (item -> fields) file")
    return _items(item_file)


__all__ = ["is_json_sequences", "read_json_items", "read_json_sequences"]

"""ReChorus directories: the TSV layout that ReChorus-based papers publish (LRD's Amazon Office,
for one), events split into ``train.csv``, ``dev.csv`` and ``test.csv`` (header ``user_id
item_id time``; dev and test add ``neg_items``, sampled negatives driftrec does not need) and,
optionally, ``<name>.item2index`` (``ASIN<TAB>item_id``: the items' real ids), ``<name>.text``
(``id<TAB>text``, by ASIN) and ``item_meta.csv`` (``i_category``, an integer category id).

The three splits are read back into one event log (train, then dev, then test: each user's
last two events, so equal times keep that order) and split again by driftrec's own protocols.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from driftrec.data.report import ImportReport
from driftrec.errors import DataFormatError

SPLITS = ("train.csv", "dev.csv", "test.csv")


def is_rechorus(directory: Path) -> bool:
    return all((directory / name).is_file() for name in SPLITS)


def _table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """A tab-separated file with a header holding ``columns`` (others ignored)."""
    try:
        frame = pd.read_csv(
            path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataFormatError(f"{path}: not a tab-separated table ({err})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataFormatError(
            f"{path}: no column {', '.join(missing)} (columns: {', '.join(frame.columns)})"
        )
    return frame


def _pairs(path: Path, header: bool) -> dict[str, str]:
    """A two-column tab-separated file as a mapping (first column -> second)."""
    out: dict[str, str] = {}
    with path.open(encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    for number, line in enumerate(lines[1:] if header else lines, start=2 if header else 1):
        key, tab, value = line.partition("\t")
        if not tab:
            raise DataFormatError(f"{path}, line {number}: expected two tab-separated fields")
        out[key] = value
    return out


def read_rechorus(directory: str | Path) -> tuple[pd.DataFrame, pd.DataFrame | None, ImportReport]:
    """Events (event "interaction", value 1.0, the files' Unix-second times) and, when the
    directory has them, items (their ASINs, the ``.text`` as title, the category id)."""
    directory = Path(directory)
    report = ImportReport(source=directory.name)
    frames = []
    for name in SPLITS:
        frame = _table(directory / name, ("user_id", "item_id", "time"))
        report.rows_read += len(frame)
        times = pd.to_numeric(frame["time"], errors="coerce")
        bad = times.isna() | (frame["user_id"] == "") | (frame["item_id"] == "")
        rows = np.flatnonzero(bad.to_numpy())
        report.skip("unparsable_row", len(rows))
        for row in rows[:5]:  # line numbers count the header
            raw = "\t".join(frame.iloc[row])
            report.add_example(name, int(row) + 2, "time", "unparsable_row", raw)
        frames.append(frame[~bad].assign(time=times[~bad].astype(np.int64)))
    events = pd.concat(frames, ignore_index=True)
    report.rows_imported = len(events)
    asin = _real_ids(directory)
    item = events["item_id"].map(lambda i: asin.get(i, i)) if asin else events["item_id"]
    n = len(events)
    raw = pd.DataFrame(
        {
            "user": pd.Series(events["user_id"].to_numpy(object), dtype=object),
            "item": pd.Series(item.to_numpy(object), dtype=object),
            "timestamp": events["time"].to_numpy(np.int64),
            "event": pd.Series(np.full(n, "interaction", dtype=object), dtype=object),
            "value": np.ones(n),
            "text": pd.Series(np.full(n, None, dtype=object), dtype=object),
        }
    )
    report.note(f"{directory.name}: train, dev and test read back into one log (neg_items ignored)")
    return raw, _items(directory, asin), report


def _real_ids(directory: Path) -> dict[str, str]:
    """item_id -> ASIN from ``*.item2index``, when there is one."""
    found = sorted(directory.glob("*.item2index"))
    if not found:
        return {}
    return {index: asin for asin, index in _pairs(found[0], header=False).items()}


def _items(directory: Path, asin: dict[str, str]) -> pd.DataFrame | None:
    texts = sorted(directory.glob("*.text"))
    if not texts:
        return None
    text = _pairs(texts[0], header=True)  # ASIN -> title, a category leaf, brand
    category: dict[str, list[str]] = {}
    if (directory / "item_meta.csv").is_file():
        meta = _table(directory / "item_meta.csv", ("item_id", "i_category"))
        for index, cat in zip(meta["item_id"], meta["i_category"], strict=True):
            if cat not in ("", "0"):
                category[asin.get(index, index)] = [f"category {cat}"]
    ids = list(text)
    return pd.DataFrame(
        {
            "item": pd.Series(ids, dtype=object),
            "title": pd.Series([text[i] for i in ids], dtype=object),
            "text": pd.Series([""] * len(ids), dtype=object),
            "categories": pd.Series([category.get(i, []) for i in ids], dtype=object),
            "tags": pd.Series([[] for _ in ids], dtype=object),
        }
    )


__all__ = ["is_rechorus", "read_rechorus"]

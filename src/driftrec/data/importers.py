"""Generic importers: an event log or an item catalog from CSV/TSV or Parquet.

`tables.read_table` reads the rows; this module finds the columns of our fields and converts them
(ids, timestamps, values), returning raw frames with external ids as strings (what
`Dataset.from_frames` takes) plus an `ImportReport`. A row whose field cannot be converted is
skipped, counted under a reason and located by its line number. The formats, column defaults and
timestamp rules are documented in docs/data-format.md.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from driftrec.data.fields import (
    TIMESTAMP_RANGE,
    TIMESTAMP_RANGE_TEXT,
    clean_strings,
    split_categories,
)
from driftrec.data.report import ImportReport
from driftrec.data.tables import RawTable, decode_binary_column, read_table
from driftrec.errors import DataFormatError, InputError
from driftrec.params import FLOAT32_MAX

# Our field -> column names tried, case-insensitively, in this order, when the mapping omits it.
EVENT_COLUMN_DEFAULTS: dict[str, tuple[str, ...]] = {
    "user": ("user", "user_id", "userid", "uid", "visitorid", "customer_id", "client_id"),
    "item": (
        "item",
        "item_id",
        "itemid",
        "movieid",
        "product_id",
        "productid",
        "asin",
        "sku",
        "article_id",
    ),
    "timestamp": ("timestamp", "time", "ts", "datetime", "date", "event_time", "created_at"),
    "event": ("event", "event_type", "type", "action", "behavior", "behaviour"),
    "value": ("value", "rating", "weight", "score", "quantity"),
    "text": ("text", "query", "search_query", "review", "comment"),
}
ITEM_COLUMN_DEFAULTS: dict[str, tuple[str, ...]] = {
    "item": EVENT_COLUMN_DEFAULTS["item"],
    "title": ("title", "name", "product_name", "item_name"),
    "text": ("text", "description", "desc", "overview", "summary", "plot"),
    "categories": ("categories", "category", "genres", "genre"),
    "tags": ("tags", "keywords", "labels"),
}
# Seconds per unit; "auto" picks the unit from the median magnitude (see `timestamp_unit_for`).
TIMESTAMP_UNITS: dict[str, int] = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_AUTO_LIMITS = ((1e11, "s"), (1e14, "ms"), (1e17, "us"))


# ---------------------------------------------------------------------------------- conversions
def _normal_name(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch not in " _-")


def is_user_column_name(name: str) -> bool:
    """Whether ``name`` is one of the names `EVENT_COLUMN_DEFAULTS` looks for the user under."""
    return _normal_name(name) in {_normal_name(a) for a in EVENT_COLUMN_DEFAULTS["user"]}


def looks_like_header(fields: Sequence[str]) -> bool:
    """Whether a first line names columns: two or more of its fields name distinct event fields
    (user, item, timestamp, ...) by the names `EVENT_COLUMN_DEFAULTS` looks for."""
    names = {_normal_name(f) for f in fields}
    named = [
        field
        for field, aliases in EVENT_COLUMN_DEFAULTS.items()
        if names & {_normal_name(a) for a in aliases}
    ]
    return len(named) >= 2


def _resolve_columns(
    table: RawTable,
    columns: Mapping[str, str] | None,
    defaults: Mapping[str, tuple[str, ...]],
    required: Sequence[str],
) -> dict[str, str]:
    """Our field -> the file's column: the given mapping first, then the defaults.

    Names match ignoring case, spaces, "-" and "_", so "CustomerID" and "customer id" both match
    customer_id; the first column of the file wins when several match.
    """
    found = table.columns
    shown = ", ".join(table.header[:20]) + (", ..." if len(table.header) > 20 else "")
    by_lower: dict[str, str] = {}
    for name in found:
        by_lower.setdefault(_normal_name(name), name)
    resolved: dict[str, str] = {}
    for name, column in (columns or {}).items():
        if name not in defaults:
            raise DataFormatError(
                f"{table.file}: unknown field {name!r} in the column mapping "
                f"(fields: {', '.join(defaults)})"
            )
        actual = column if column in found else by_lower.get(_normal_name(str(column)))
        if actual is None:
            raise DataFormatError(
                f"{table.file}: column {column!r} (mapped to {name!r}) not found (found: {shown})"
            )
        resolved[name] = actual
    for name, aliases in defaults.items():
        if name in resolved:
            continue
        taken = {column: field for field, column in resolved.items()}
        candidates = [c for c in (by_lower.get(_normal_name(a)) for a in aliases) if c is not None]
        match = next((c for c in candidates if c not in taken), None)
        if match is not None:
            resolved[name] = match
        elif name in required and candidates:
            raise DataFormatError(
                f"{table.file}: no column for {name!r}: column {candidates[0]!r} is already"
                f" mapped to {taken[candidates[0]]!r}; map {name!r} to another column"
                f" (found: {shown})"
            )
        elif name in required:
            raise DataFormatError(
                f"{table.file}: no column for {name!r} (looked for {', '.join(aliases)}; "
                f"found: {shown})"
            )
    for name, column in resolved.items():
        twins = [
            i + 1 for i, c in enumerate(table.header) if _normal_name(c) == _normal_name(column)
        ]
        if len(twins) > 1:
            raise DataFormatError(
                f"{table.file}: column {table.header[twins[0] - 1]!r} (for {name!r}) appears"
                f" {len(twins)} times (columns {', '.join(map(str, twins))}); rename all but one"
            )
        if column in table.unusable:
            raise DataFormatError(
                f"{table.file}: column {column!r} (for {name!r}) holds"
                f" {table.unusable[column]}, not single values"
            )
        if column in table.binary:  # only a column in use may cost a row its bad bytes
            table.frame[column] = decode_binary_column(table, column)
    return resolved


def timestamp_unit_for(values: np.ndarray) -> str:
    """Guess the unit of numeric Unix times from the median magnitude (s, ms, us or ns)."""
    median = float(np.median(np.abs(values))) if len(values) else 0.0
    return next((unit for limit, unit in _AUTO_LIMITS if median < limit), "ns")


def _numeric_seconds(values: np.ndarray, unit: str) -> np.ndarray:
    """Floor numeric times in ``unit`` to float seconds; exact for integers."""
    per_second = TIMESTAMP_UNITS[unit]
    if values.dtype.kind == "i":  # unsigned values may exceed int64: the float path below
        return (values.astype(np.int64) // per_second).astype(np.float64)
    return np.floor(values.astype(np.float64) / per_second)


def _datetime_seconds(dt: pd.Series) -> np.ndarray:
    """Float seconds since 1970, floored (NaN for NaT); naive datetimes are taken as UTC.

    Computed at the column's own resolution, so a date beyond the nanosecond range (year 3000)
    gives its seconds, for the range check to reject, instead of an overflow.
    """
    if dt.dt.tz is not None:
        dt = dt.dt.tz_convert("UTC").dt.tz_localize(None)
    values = dt.to_numpy()
    seconds = values.astype("datetime64[s]").astype(np.int64).astype(np.float64)
    seconds[np.isnat(values)] = np.nan
    return seconds


def _parse_datetime_strings(strings: np.ndarray) -> np.ndarray:
    """Float seconds for ISO-8601 (fast) or other common datetime strings (slower), else NaN.

    A string without a digit is no date: pandas would read "now" or "today" as the time of the
    import, which differs from one run to the next.
    """
    out = np.full(len(strings), np.nan)
    todo = np.flatnonzero(pd.Series(strings, dtype=object).str.contains(r"\d").to_numpy(bool))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns when it falls back to per-value parsing
        for fmt in ("ISO8601", None, "mixed"):
            if not len(todo):
                break
            part = pd.Series(strings[todo], dtype=object)
            try:
                parsed = pd.to_datetime(part, utc=True, errors="coerce", format=fmt)
            except (ValueError, TypeError, OverflowError):
                continue
            seconds = _datetime_seconds(parsed)
            out[todo] = seconds
            todo = todo[np.isnan(seconds)]
    return out


def _parse_timestamps(table: RawTable, col: pd.Series, unit: str, notes: list[str]) -> np.ndarray:
    """int64 seconds per row; rows that fail are rejected (missing or unparsable timestamp)."""
    n = len(col)
    seconds = np.full(n, np.nan)
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        seconds = _datetime_seconds(col)
        missing = np.isnan(seconds)
    else:
        if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
            numbers = col.to_numpy()
            strings = np.full(n, None, dtype=object)
            missing = pd.isna(numbers)
        else:
            strings = clean_strings(col)
            missing = pd.isna(strings)
            numbers = pd.to_numeric(pd.Series(strings, dtype=object), errors="coerce").to_numpy()
        numeric = ~pd.isna(numbers) & np.isfinite(numbers.astype(np.float64))
        if numeric.any():
            values = numbers[numeric]
            chosen = unit
            if unit == "auto":
                chosen = timestamp_unit_for(values.astype(np.float64))
                notes.append(
                    f"{table.file}: numeric timestamps read as Unix {chosen} (auto-detected)"
                )
            seconds[numeric] = _numeric_seconds(values, chosen)
        text = ~missing & ~numeric & ~pd.isna(strings)
        if text.any():
            seconds[text] = _parse_datetime_strings(strings[text])
    table.reject(missing, "missing_timestamp", "timestamp")
    table.reject(np.isnan(seconds), "unparsable_timestamp", "timestamp")
    low, high = TIMESTAMP_RANGE
    outside = ~np.isnan(seconds) & ((seconds < low) | (seconds > high))
    table.reject(
        outside, "timestamp_out_of_range", "timestamp", lambda r: f"outside {TIMESTAMP_RANGE_TEXT}"
    )
    return np.where(table.bad, 0, np.nan_to_num(seconds)).astype(np.int64)


def _parse_values(table: RawTable, col: pd.Series, notes: list[str]) -> np.ndarray:
    """float64 weight per row: missing cells get 1.0 (noted), non-numeric cells are rejected."""
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        values = col.to_numpy(np.float64, na_value=np.nan)
        missing = np.isnan(values)
    else:
        strings = clean_strings(col)
        missing = pd.isna(strings)
        values = pd.to_numeric(pd.Series(strings, dtype=object), errors="coerce").to_numpy(
            np.float64, na_value=np.nan
        )
    table.reject(~missing & np.isnan(values), "non_numeric_value", "value")
    too_large = ~missing & ~(np.abs(values) <= FLOAT32_MAX)  # inf too: "1e400" is a number
    table.reject(
        too_large, "value_out_of_range", "value", lambda r: f"beyond float32 (±{FLOAT32_MAX:.3g})"
    )
    n_missing = int((missing & ~table.bad).sum())
    if n_missing:
        notes.append(f"{table.file}: {n_missing} row(s) had no value; used 1.0")
    return np.where(missing | table.bad, 1.0, values)


def _object_series(values: np.ndarray) -> pd.Series:
    return pd.Series(values, dtype=object)


def events_from_table(
    table: RawTable,
    columns: Mapping[str, str] | None = None,
    *,
    event_type: str = "interaction",
    timestamp_unit: str = "auto",
) -> tuple[pd.DataFrame, ImportReport]:
    """Convert a `RawTable` into a raw events frame, rejecting the rows that cannot be used."""
    if timestamp_unit != "auto" and timestamp_unit not in TIMESTAMP_UNITS:
        raise InputError(f"timestamp_unit must be auto, s, ms, us or ns, not {timestamp_unit!r}")
    if not event_type.strip():
        raise InputError("event_type must not be empty")
    event_type = event_type.strip().lower()
    fields = _resolve_columns(table, columns, EVENT_COLUMN_DEFAULTS, ("user", "item", "timestamp"))
    frame = table.frame
    notes: list[str] = []
    user = clean_strings(frame[fields["user"]])
    table.reject(pd.isna(user), "missing_user", "user")
    timestamp = _parse_timestamps(table, frame[fields["timestamp"]], timestamp_unit, notes)
    item = clean_strings(frame[fields["item"]])
    text = (
        clean_strings(frame[fields["text"]])
        if "text" in fields
        else np.full(len(frame), None, object)
    )
    table.reject(pd.isna(item) & pd.isna(text), "missing_item", "item")
    if "event" in fields:
        event = clean_strings(frame[fields["event"]])
        event[pd.isna(event)] = event_type
        event = np.array([e.lower() for e in event], dtype=object)
    else:
        event = np.full(len(frame), event_type, dtype=object)
    value = (
        _parse_values(table, frame[fields["value"]], notes)
        if "value" in fields
        else np.ones(len(frame))
    )
    keep = ~table.bad
    events = pd.DataFrame(
        {
            "user": _object_series(user[keep]),
            "item": _object_series(item[keep]),
            "timestamp": timestamp[keep],
            "event": _object_series(event[keep]),
            "value": value[keep].astype(np.float64),
            "text": _object_series(text[keep]),
        }
    )
    report = table.report()
    report.note(f"{table.file}: columns used: " + ", ".join(f"{k}={v}" for k, v in fields.items()))
    for note in notes:
        report.note(note)
    return events, report


def read_events(
    path: str | Path,
    columns: Mapping[str, str] | None = None,
    *,
    event_type: str = "interaction",
    timestamp_unit: str = "auto",
    sep: str | None = None,
    encoding: str = "utf-8",
    names: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, ImportReport]:
    """Read an event log (.csv/.tsv/.txt or .parquet) into a raw events frame and its report.

    ``columns`` maps our fields (user, item, timestamp, event, value, text) to the file's column
    names; unmapped fields are found by the defaults in `EVENT_COLUMN_DEFAULTS`. ``event_type``
    names events when the file has no event column. ``timestamp_unit`` is s/ms/us/ns or "auto".
    ``sep`` is detected among , tab ; | when None. ``names`` gives the columns of a headerless file.
    """
    table = read_table(path, sep=sep, encoding=encoding, names=names)
    return events_from_table(table, columns, event_type=event_type, timestamp_unit=timestamp_unit)


def reject_repeated_items(table: RawTable, item: np.ndarray) -> None:
    """Skip every catalog row whose id an earlier row already listed (the first one is kept)."""
    first = ~pd.Series(item, dtype=object).duplicated(keep="first").to_numpy()
    table.reject(
        ~first & ~pd.isna(item),
        "duplicate_item",
        "item",
        lambda r: f"first listed on line {table.lines[np.flatnonzero(item == item[r])[0]]}",
    )


def items_from_table(
    table: RawTable, columns: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, ImportReport]:
    """Convert a `RawTable` into a raw items frame (item, title, text, categories, tags)."""
    fields = _resolve_columns(table, columns, ITEM_COLUMN_DEFAULTS, ("item",))
    frame = table.frame
    n = len(frame)
    item = clean_strings(frame[fields["item"]])
    table.reject(pd.isna(item), "missing_item", "item")
    reject_repeated_items(table, item)
    keep = ~table.bad

    def text_column(name: str) -> np.ndarray:
        if name not in fields:
            return np.full(int(keep.sum()), "", dtype=object)
        values = clean_strings(frame[fields[name]])[keep]
        values[pd.isna(values)] = ""
        return values

    def list_column(name: str) -> np.ndarray:
        raw = frame[fields[name]].to_numpy(object) if name in fields else np.full(n, None, object)
        values = np.empty(int(keep.sum()), dtype=object)
        for i, value in enumerate(raw[keep]):
            values[i] = split_categories(value)
        return values

    items = pd.DataFrame(
        {
            "item": _object_series(item[keep]),
            "title": _object_series(text_column("title")),
            "text": _object_series(text_column("text")),
            "categories": _object_series(list_column("categories")),
            "tags": _object_series(list_column("tags")),
        }
    )
    report = table.report()
    report.note(f"{table.file}: columns used: " + ", ".join(f"{k}={v}" for k, v in fields.items()))
    return items, report


def read_items(
    path: str | Path,
    columns: Mapping[str, str] | None = None,
    *,
    sep: str | None = None,
    encoding: str = "utf-8",
) -> tuple[pd.DataFrame, ImportReport]:
    """Read an item catalog (.csv/.tsv/.txt or .parquet): item, title, text, categories, tags.

    ``columns`` maps our fields to the file's columns; the rest are found by the defaults in
    `ITEM_COLUMN_DEFAULTS`. Rows without an item id and repeated ids (the first one is kept) are
    skipped and reported.
    """
    return items_from_table(read_table(path, sep=sep, encoding=encoding), columns)

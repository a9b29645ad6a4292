"""Generic importers: an event log or an item catalog from CSV/TSV or Parquet.

The importers return raw frames with external ids as strings (what `Dataset.from_frames` takes)
plus an `ImportReport`. A bad row never stops an import: it is skipped, counted under a reason and
located by its line number, so one broken line in a million-row log costs one row, not the run.
Only problems that make the whole file unusable raise `DataFormatError`. The formats, column
defaults and timestamp rules are documented in docs/data-format.md.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from driftrec.data.fields import clean_strings, split_categories
from driftrec.data.report import MAX_EXAMPLES, BadRow, ImportReport, truncate
from driftrec.data.textfile import is_parquet, read_lines, require_file
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
SEPARATORS = (",", "\t", ";", "|")
# Seconds per unit; "auto" picks the unit from the median magnitude (see `timestamp_unit_for`).
TIMESTAMP_UNITS: dict[str, int] = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_AUTO_LIMITS = ((1e11, "s"), (1e14, "ms"), (1e17, "us"))
# Times must fit pandas' nanosecond datetimes (1677-09-22 to 2262-04-11), so every later step
# (time splits, reports, the service) can turn them into dates; the same bound for numbers and text.
TIMESTAMP_RANGE = (int(pd.Timestamp.min.ceil("s").timestamp()), int(pd.Timestamp.max.timestamp()))
_RANGE_TEXT = "1677-09-22..2262-04-11 UTC"


# ---------------------------------------------------------------------------------- raw tables
@dataclass
class RawTable:
    """A file's rows before conversion, with the line each row came from and what was rejected.

    Conversion steps call `reject` for rows they cannot use; the first reason found for a row is
    the one it is counted under. `report` then builds the `ImportReport` of the file.
    """

    file: str  # the name used in messages (the file name)
    frame: pd.DataFrame  # one column per file column: str for text files, typed for Parquet
    lines: np.ndarray  # int64: 1-based physical line of each row (1-based row for Parquet)
    sep: str
    rows_read: int = 0
    # Parquet columns that hold no single values (lists, structs, times of day): their type
    unusable: dict[str, str] = field(default_factory=dict)
    binary: set[str] = field(default_factory=set)  # Parquet bytes columns, decoded once used
    header: list[str] = field(default_factory=list)  # column names as in the file (may repeat)
    skipped: dict[str, int] = field(default_factory=dict)
    examples: list[BadRow] = field(default_factory=list)
    bad: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.bad = np.zeros(len(self.frame), bool)
        self.header = self.header or self.columns

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    def raw(self, row: int) -> str:
        """Row ``row`` as text, as close to the file's line as the parsed fields allow."""
        return self.sep.join("" if v is None else str(v) for v in self.frame.iloc[row].tolist())

    def _keep(self, example: BadRow) -> None:
        """Keep an example; only the MAX_EXAMPLES lowest line numbers survive (bounded memory)."""
        self.examples.append(example)
        if len(self.examples) > 2 * MAX_EXAMPLES:
            self.examples = sorted(self.examples, key=lambda e: e.line)[:MAX_EXAMPLES]

    def add_unparsed(self, line: int, reason: str, raw: str, detail: str = "") -> None:
        """Count a line that never became a row (bad encoding, wrong field count)."""
        self.rows_read += 1
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        self._keep(BadRow(self.file, line, "row", reason, truncate(raw), truncate(detail)))

    def reject(
        self, mask: np.ndarray, reason: str, field: str, detail: Callable[[int], str] | None = None
    ) -> None:
        """Skip the rows in ``mask`` not already skipped, counting them under ``reason``."""
        new = np.asarray(mask, bool) & ~self.bad
        n = int(new.sum())
        if not n:
            return
        self.bad |= new
        self.skipped[reason] = self.skipped.get(reason, 0) + n
        for row in np.flatnonzero(new)[:MAX_EXAMPLES]:
            self._keep(
                BadRow(
                    self.file,
                    int(self.lines[row]),
                    field,
                    reason,
                    truncate(self.raw(int(row))),
                    truncate(detail(int(row))) if detail else "",
                )
            )

    def report(self) -> ImportReport:
        """The report of this file: rows read, rows kept, skips and the first examples by line."""
        report = ImportReport(
            source=self.file,
            rows_read=self.rows_read,
            rows_imported=int((~self.bad).sum()),
        )
        for reason, n in self.skipped.items():
            report.skip(reason, n)
        for example in sorted(self.examples, key=lambda e: e.line)[:MAX_EXAMPLES]:
            report.examples.append(example)
        return report


def read_table(
    path: str | Path,
    *,
    sep: str | None = None,
    encoding: str = "utf-8",
    names: Sequence[str] | None = None,
    quoting: bool = True,
) -> RawTable:
    """Read a delimited text file (as string fields) or a Parquet file (typed) into a `RawTable`.

    Each physical line is decoded strictly on its own, so one line in another encoding is reported
    rather than aborting the file. ``names`` are the column names of a file without a header row.
    ``quoting=False`` reads quote characters literally (for formats such as MovieLens' u.item).
    """
    path = require_file(path)
    if sep is not None and len(sep) != 1:
        raise InputError(f"the separator must be one character, got {sep!r}")
    if is_parquet(path):
        return _read_parquet_table(path)
    return _read_text_table(path, sep, encoding, names, quoting)


def _unusable_type(kind: pa.DataType) -> bool:
    """Arrow types that hold no single id, time or value: nested ones, and times of day or
    durations (which pandas would turn into today's date)."""
    return bool(
        pa.types.is_nested(kind)
        or pa.types.is_time(kind)
        or pa.types.is_duration(kind)
        or pa.types.is_interval(kind)
    )


def _read_parquet_table(path: Path) -> RawTable:
    try:
        arrow = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataFormatError(f"{path.name}: not a readable Parquet file ({exc})") from exc
    frame = arrow.to_pandas(integer_object_nulls=True)
    table = RawTable(
        file=path.name,
        frame=frame,
        lines=np.arange(1, len(frame) + 1, dtype=np.int64),
        sep=",",
        rows_read=len(frame),
        unusable={f.name: str(f.type) for f in arrow.schema if _unusable_type(f.type)},
        binary={
            f.name
            for f in arrow.schema
            if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)
        },
    )
    return table


def _decoded(table: RawTable, column: str) -> pd.Series:
    """A binary Parquet column as text; a cell that is not UTF-8 skips its row."""
    out = np.full(len(table.frame), None, dtype=object)
    invalid = np.zeros(len(out), bool)
    for row, value in enumerate(table.frame[column].to_numpy(object)):
        if isinstance(value, bytes):
            try:
                out[row] = value.decode("utf-8")
            except UnicodeDecodeError:
                invalid[row] = True
    table.reject(invalid, "invalid_encoding", column, lambda r: f"column {column!r} is not UTF-8")
    return pd.Series(out, dtype=object)


def _detect_sep(line: str) -> str:
    """The candidate separator that occurs most often in ``line`` (the first one on a tie);
    a space when none occurs and the line has several words (a space-separated table)."""
    counts = [line.count(s) for s in SEPARATORS]
    if max(counts):
        return SEPARATORS[int(np.argmax(counts))]
    return " " if len(line.split()) > 1 else ","


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


def _unique_names(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        n = seen.get(name, 0)
        seen[name] = n + 1
        out.append(name if n == 0 else f"{name}.{n}")
    return out


def _read_text_table(
    path: Path, sep: str | None, encoding: str, names: Sequence[str] | None, quoting: bool
) -> RawTable:
    file = path.name
    lines, invalid = read_lines(path, encoding)
    if not lines:
        raise DataFormatError(f"{file}: the file is empty")
    first = next((line for line in lines if line is not None), "")
    if names is None and lines[0] is None:
        raise DataFormatError(f"{file}: line 1 (the header) is not valid {encoding}")
    sep = sep or _detect_sep(lines[0] if names is None else first)
    if sep == " ":  # a space-separated table: any run of spaces or tabs parts two fields
        lines = [None if line is None else " ".join(line.split()) for line in lines]
    quoted = quoting and any('"' in line for line in lines if line is not None)
    if names is None:
        header = next(csv.reader([lines[0]], delimiter=sep)) if quoted else lines[0].split(sep)
        names = [h.strip() for h in header]
        start = 1
    else:
        start = 0
    columns = _unique_names(list(names))
    table = RawTable(file, pd.DataFrame(), np.zeros(0, np.int64), sep)
    parse = _parse_quoted if quoted else _parse_plain
    cells, row_lines = parse(lines, start, sep, len(columns), invalid, table)
    table.frame = pd.DataFrame(
        {i: pd.Series(np.array(col, dtype=object), dtype=object) for i, col in enumerate(cells)}
    )
    table.frame.columns = columns
    table.header = [str(n) for n in names]
    table.lines = np.asarray(row_lines, np.int64)
    table.bad = np.zeros(len(row_lines), bool)
    table.rows_read += len(row_lines)
    return table


def _reject_line(
    table: RawTable,
    line_no: int,
    line: str | None,
    n_fields: int,
    ncols: int,
    invalid: tuple[str, str] | None,
) -> None:
    if invalid is not None:
        table.add_unparsed(line_no, "invalid_encoding", *invalid)
    elif line is None or not line.strip():
        table.add_unparsed(line_no, "empty_line", "")
    else:
        detail = f"expected {ncols} fields, found {n_fields}"
        table.add_unparsed(line_no, "wrong_field_count", line, detail)


def _parse_plain(
    lines: list[str | None],
    start: int,
    sep: str,
    ncols: int,
    invalid: dict[int, tuple[str, str]],
    table: RawTable,
) -> tuple[list[list[str]], list[int]]:
    """Columns of lines with no quote character, where one line is one row (the fast path).

    Field counts come from counting separators; the good lines are then split in one call and
    the columns taken by slicing, which is several times faster than splitting line by line.
    """
    body = lines[start:]
    counts = np.fromiter((-1 if s is None else s.count(sep) for s in body), np.int64, len(body))
    good = counts == ncols - 1
    if ncols == 1:
        good &= np.fromiter((s is not None and bool(s.strip()) for s in body), bool, len(body))
    for index in np.flatnonzero(~good) + start:
        line = lines[index]
        n_fields = 0 if line is None else line.count(sep) + 1
        _reject_line(table, int(index) + 1, line, n_fields, ncols, invalid.get(int(index)))
    kept = np.flatnonzero(good)
    good_lines = body if len(kept) == len(body) else [body[i] for i in kept]
    flat = sep.join(good_lines).split(sep) if len(kept) else []
    return [flat[j::ncols] for j in range(ncols)], (kept + start + 1).tolist()


def _parse_quoted(
    lines: list[str | None],
    start: int,
    sep: str,
    ncols: int,
    invalid: dict[int, tuple[str, str]],
    table: RawTable,
) -> tuple[list[list[str]], list[int]]:
    """Columns of RFC-4180 quoted rows (fields may hold separators and newlines), via `csv`.

    Usually every row is one line and one `list(reader)` call parses the file; only when a field
    spans lines or the quoting is broken are rows read one by one to track their first line.
    An undecodable line is fed as a blank line and reported from ``invalid``.
    """
    source = ["\n" if line is None else line + "\n" for line in lines[start:]]
    try:
        reader = csv.reader(source, delimiter=sep, strict=True)
        records = list(reader)
        firsts = list(range(start + 1, start + 1 + len(records)))
        one_per_line = reader.line_num == len(records)
    except csv.Error:
        one_per_line = False
    if not one_per_line:
        records, firsts = _read_records(lines, start, source, sep, table)
    rows: list[list[str]] = []
    row_lines: list[int] = []
    for row, first in zip(records, firsts, strict=True):
        if len(row) == ncols and (ncols > 1 or row[0].strip()):
            rows.append(row)
            row_lines.append(first)
        else:
            line = lines[first - 1] if row else ""
            _reject_line(table, first, line, len(row), ncols, invalid.get(first - 1))
    columns = [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(ncols)]
    return columns, row_lines


def _read_records(
    lines: list[str | None], start: int, source: list[str], sep: str, table: RawTable
) -> tuple[list[list[str]], list[int]]:
    """Rows one by one with the physical line each began on; broken quoting is reported.

    A row with broken quoting costs its first line only: reading restarts on the next line, so
    an unclosed quote does not swallow the rest of the file.
    """
    records: list[list[str]] = []
    firsts: list[int] = []
    offset = 0  # index in ``source`` where the current reader started
    while offset < len(source):
        reader = csv.reader(
            (source[i] for i in range(offset, len(source))), delimiter=sep, strict=True
        )
        consumed = 0  # lines of this reader used by complete rows
        try:
            for row in reader:
                records.append(row)
                firsts.append(start + offset + consumed + 1)
                consumed = reader.line_num
            break
        except csv.Error as exc:
            first = start + offset + consumed + 1
            table.add_unparsed(first, "malformed_quoting", lines[first - 1] or "", str(exc))
            offset += consumed + 1
    return records, firsts


# ---------------------------------------------------------------------------------- conversions
def _normal_name(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch not in " _-")


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
            table.frame[column] = _decoded(table, column)
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
    table.reject(outside, "timestamp_out_of_range", "timestamp", lambda r: f"outside {_RANGE_TEXT}")
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

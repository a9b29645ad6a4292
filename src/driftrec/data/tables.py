"""Reading a delimited text file or a Parquet file into a `RawTable`: the rows, the line each came
from, and every row rejected so far, before any field is converted (see `importers`).

A bad row never stops a read: it is skipped, counted under a reason and located by its line
number, so one broken line in a million-row log costs one row, not the run. Only problems that
make the whole file unusable raise `DataFormatError`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from driftrec.data.report import MAX_EXAMPLES, BadRow, ImportReport, truncate
from driftrec.data.textfile import is_parquet, read_lines, require_file
from driftrec.errors import DataFormatError, InputError

SEPARATORS = (",", "\t", ";", "|")


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


def decode_binary_column(table: RawTable, column: str) -> pd.Series:
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

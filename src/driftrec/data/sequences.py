"""The one-line-per-user sequence format of the SASRec / S3-Rec / ICLRec Amazon benchmarks.

Each line is ``user_id item_id_1 item_id_2 ...`` (whitespace separated), items oldest first. The
format has no timestamps, so an event's timestamp is its position in the user's sequence; models
that use real time gaps must check ``dataset.info["has_timestamps"]``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from driftrec.data.importers import is_user_column_name, looks_like_header
from driftrec.data.report import ImportReport, truncate
from driftrec.data.textfile import head_lines, is_parquet, read_lines, require_file
from driftrec.errors import DataFormatError


def read_sequences(
    path: str | Path, *, encoding: str = "utf-8"
) -> tuple[pd.DataFrame, ImportReport]:
    """Read a sequence file into raw events (event "interaction", value 1.0) and a report.

    The timestamp of an event is its 0-based position in the user's sequence. A user who appears on
    several lines continues where the previous line stopped, so file order is kept. An empty line,
    a user with no items, or a line that is not valid in ``encoding`` is skipped and reported. A
    first line that names columns (``user item timestamp``) is an error: the file is an event
    table, and reading it as sequences would turn its timestamps into item ids.
    """
    path = require_file(path)
    file = path.name
    if is_parquet(path):
        raise DataFormatError(
            f"{file}: is a Parquet file, not a sequence file; use --format events"
        )
    lines, invalid = read_lines(path, encoding)
    if lines and lines[0] is not None and _header_like(lines[0].split()):
        raise DataFormatError(
            f"{file}: line 1 looks like a header ({truncate(lines[0])!r}) but a sequence file has"
            " none (each line is a user and their items): remove it; for an event table with"
            " columns use --format events"
        )
    report = ImportReport(source=file)
    users: list[str] = []
    items: list[str] = []
    lengths: list[int] = []
    for index, line in enumerate(lines):
        number = index + 1
        report.rows_read += 1
        if line is None:
            report.add_bad(file, number, "row", "invalid_encoding", *invalid[index])
            continue
        tokens = line.split()
        if len(tokens) > 1:
            users.append(tokens[0])
            items.extend(tokens[1:])
            lengths.append(len(tokens) - 1)
        elif tokens:
            report.add_bad(file, number, "item", "no_items", line, "a user with no items")
        else:
            report.add_bad(file, number, "row", "empty_line", line)
    report.rows_imported = len(users)

    user = np.repeat(np.array(users, dtype=object), lengths)
    # Position within the user's whole sequence, continuing across repeated lines of one user.
    position = pd.Series(user, dtype=object).groupby(user, sort=False).cumcount().to_numpy()
    events = pd.DataFrame(
        {
            "user": pd.Series(user, dtype=object),
            "item": pd.Series(np.array(items, dtype=object), dtype=object),
            "timestamp": position.astype(np.int64),
            "event": pd.Series(np.full(len(items), "interaction", dtype=object), dtype=object),
            "value": np.ones(len(items)),
            "text": pd.Series(np.full(len(items), None, dtype=object), dtype=object),
        }
    )
    report.note(f"{file}: no timestamps in this format; timestamp = position in the sequence")
    return events, report


def _header_like(tokens: list[str]) -> bool:
    """Whether a first line names columns rather than a user: it names two event fields, or
    starts with a name for the user column ("user_id items")."""
    return looks_like_header(tokens) or (bool(tokens) and is_user_column_name(tokens[0]))


# A token that is surely a time, not an item id: 9+ digits (Unix seconds or finer) or a date.
_TIME_TOKEN = re.compile(r"\d{9,}(\.\d+)?|\d{4}-\d{2}-\d{2}([T ].*)?")
# Event tables have a handful of columns; a sequence file whose every line is that short and of
# one length cannot be told from one.
_MAX_TABLE_COLUMNS = 6


def text_layout(path: str | Path, sample: int = 50) -> str:
    """ "sequences" or "events" for a text file, judged from its first ``sample`` lines.

    Events when a delimiter (, ; | tab) occurs or line 1 names columns; sequences when the lines
    are whitespace-separated tokens of varying length with no column of times. A file that could
    be either (every line 2 to 6 tokens long, or a column that is always a time) raises
    `DataFormatError` asking for ``--format``: guessing wrong would import nonsense silently.
    """
    lines = head_lines(path, sample)
    if not lines or any(sep in line for line in lines for sep in (",", ";", "|", "\t")):
        return "events"
    rows = [line.split() for line in lines]
    if looks_like_header(rows[0]):
        return "events"
    if _header_like(rows[0]):  # "user_id items": `read_sequences` says what is wrong
        return "sequences"
    if all(len(row) < 2 for row in rows):
        return "events"
    lengths = {len(row) for row in rows}
    width = min(lengths)
    timed = [j for j in range(1, width) if all(_TIME_TOKEN.fullmatch(row[j]) for row in rows)]
    if timed or (len(lengths) == 1 and width <= _MAX_TABLE_COLUMNS):
        why = (
            f"field {timed[0] + 1} of every line looks like a time"
            if timed
            else f"every line has {width} fields"
        )
        raise DataFormatError(
            f"{Path(path).name}: cannot tell a sequence file (user item item ...) from a"
            f" space-separated event table ({why}); pass --format sequences for the first, or"
            " add a header line naming the columns (user item timestamp ...) for the second"
        )
    return "sequences"

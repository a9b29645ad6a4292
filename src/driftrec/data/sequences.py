"""The one-line-per-user sequence format of the SASRec / S3-Rec / ICLRec Amazon benchmarks.

Each line is ``user_id item_id_1 item_id_2 ...`` (whitespace separated), items oldest first. The
format has no timestamps, so an event's timestamp is its position in the user's sequence; models
that use real time gaps must check ``dataset.info["has_timestamps"]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from driftrec.data.report import ImportReport
from driftrec.errors import DataFormatError


def read_sequences(
    path: str | Path, *, encoding: str = "utf-8"
) -> tuple[pd.DataFrame, ImportReport]:
    """Read a sequence file into raw events (event "interaction", value 1.0) and a report.

    The timestamp of an event is its 0-based position in the user's sequence. A user who appears on
    several lines continues where the previous line stopped, so file order is kept. An empty line,
    a user with no items, or a line that is not valid in ``encoding`` is skipped and reported.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    file = path.name
    data = path.read_bytes()
    report = ImportReport(source=file)
    invalid: dict[int, tuple[str, str]] = {}  # line number -> (text, why it is not decodable)
    try:
        lines: list[str | None] = list(data.decode(encoding).split("\n"))
    except LookupError as exc:
        raise DataFormatError(f"{file}: unknown encoding {encoding!r}") from exc
    except UnicodeDecodeError:
        lines = []
        for number, raw in enumerate(data.split(b"\n"), start=1):
            try:
                lines.append(raw.decode(encoding))
            except UnicodeDecodeError as exc:
                lines.append(None)
                text = raw.decode(encoding, errors="replace")
                invalid[number] = (text, f"not {encoding}: {exc.reason} at byte {exc.start}")
    while lines and lines[-1] is not None and not lines[-1].strip():
        lines.pop()  # the final newline is not an empty line

    users: list[str] = []
    items: list[str] = []
    lengths: list[int] = []
    for number, line in enumerate(lines, start=1):
        report.rows_read += 1
        if line is None:
            report.add_bad(file, number, "row", "invalid_encoding", *invalid[number])
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


def looks_like_sequences(path: str | Path, sample: int = 50) -> bool:
    """Whether a text file looks like the sequence format rather than a delimited table.

    True when its first lines are all whitespace-separated tokens with no , ; | or tab (the
    separators `read_events` detects) and at least one line has an item after the user.
    """
    with Path(path).open("rb") as handle:
        head = [handle.readline() for _ in range(sample)]
    text = b"".join(head).decode("utf-8", errors="replace")
    if any(sep in text for sep in (",", ";", "|", "\t")):
        return False
    return any(len(line.split()) > 1 for line in text.splitlines())

"""What an import did: rows read, rows kept, and every skipped row counted under a reason.

Importers never drop input silently. A row that cannot be used is skipped, counted under a short
reason key (``unparsable_timestamp``, ``missing_user``, ...) and, for the first few, kept as an
example with its file, line number and raw text, so a user can fix the source file. Problems that
make the whole file unusable (no user column, unreadable header) raise
`driftrec.errors.DataFormatError` instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

MAX_EXAMPLES = 20
MAX_RAW_CHARS = 120
REDACTED = "<redacted>"


@dataclass(frozen=True)
class BadRow:
    """One skipped row, kept as an example so the user can find and fix it."""

    file: str
    line: int  # 1-based physical line (the header is line 1); the 1-based row for Parquet
    field: str  # our field name (user, timestamp, ...) or "row" for a problem with the whole row
    reason: str
    raw: str  # the row as it appears in the file, truncated to about MAX_RAW_CHARS
    detail: str = ""

    def describe(self) -> str:
        """One human-readable line."""
        where = f"{self.file}:{self.line}"
        what = self.reason if self.field == "row" else f"{self.reason} in {self.field!r}"
        detail = f" ({self.detail})" if self.detail else ""
        raw = "" if self.raw == REDACTED else f": {self.raw!r}"
        return f"{where}: {what}{detail}{raw}"


def truncate(text: str, limit: int = MAX_RAW_CHARS) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class ImportReport:
    """Counts and first examples of what one import (one file, or several merged) did.

    ``rows_read == rows_imported + sum(skipped.values())`` holds for every report an importer
    returns: each row read is either imported or counted under exactly one skip reason.
    """

    source: str
    rows_read: int = 0
    rows_imported: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: list[BadRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # decisions taken, e.g. the timestamp unit
    files: list[dict[str, Any]] = field(default_factory=list)  # per-file counts after `merge`

    @property
    def rows_skipped(self) -> int:
        return sum(self.skipped.values())

    def skip(self, reason: str, n: int = 1) -> None:
        """Count ``n`` skipped rows under ``reason`` without keeping an example."""
        if n:
            self.skipped[reason] = self.skipped.get(reason, 0) + int(n)

    def add_example(
        self, file: str, line: int, field: str, reason: str, raw: str, detail: str = ""
    ) -> None:
        """Keep a skipped row as an example (the first MAX_EXAMPLES are kept); does not count it."""
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(
                BadRow(file, int(line), field, reason, truncate(raw), truncate(detail))
            )

    def add_bad(
        self, file: str, line: int, field: str, reason: str, raw: str, detail: str = ""
    ) -> None:
        """Count one skipped row under ``reason`` and keep it as an example if there is room."""
        self.skip(reason)
        self.add_example(file, line, field, reason, raw, detail)

    def note(self, text: str) -> None:
        """Record a decision the importer took (e.g. a guessed timestamp unit)."""
        self.notes.append(text)

    def merge(self, other: ImportReport) -> ImportReport:
        """Add ``other``'s counts, examples and notes to this report (in place) and return it."""
        self.files.extend(other.files or [other._file_summary()])
        self.rows_read += other.rows_read
        self.rows_imported += other.rows_imported
        for reason, n in other.skipped.items():
            self.skip(reason, n)
        room = MAX_EXAMPLES - len(self.examples)
        self.examples.extend(other.examples[: max(room, 0)])
        self.notes.extend(other.notes)
        return self

    def redacted(self) -> ImportReport:
        """A copy whose examples keep file, line, field and reason but not the row's text: for a
        pseudonymised import, where that text may hold a raw user id."""
        copy = ImportReport.from_dict(self.to_dict())
        copy.examples = [replace(e, raw=REDACTED) for e in copy.examples]
        copy.note("skipped rows' text is not kept: user ids are pseudonymised")
        return copy

    def events_file(self) -> dict[str, Any]:
        """The counts of the first file read, the events file (a catalog or tags come after)."""
        return dict(self.files[0]) if self.files else self._file_summary()

    def _file_summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_imported": self.rows_imported,
            "skipped": dict(self.skipped),
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy, stored in the dataset manifest."""
        return {
            **self._file_summary(),
            "rows_skipped": self.rows_skipped,
            "examples": [asdict(e) for e in self.examples],
            "notes": list(self.notes),
            "files": [dict(f) for f in self.files],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportReport:
        """Rebuild a report from `to_dict` output (as kept in a dataset manifest)."""
        return cls(
            source=data["source"],
            rows_read=data["rows_read"],
            rows_imported=data["rows_imported"],
            skipped=dict(data.get("skipped", {})),
            examples=[BadRow(**e) for e in data.get("examples", [])],
            notes=list(data.get("notes", [])),
            files=[dict(f) for f in data.get("files", [])],
        )

    def lines(self) -> list[str]:
        """A human-readable summary, one string per line: each file with its own counts (the
        events file, the catalog and the tags are not added up), examples, then notes."""
        out = []
        for summary in self.files or [self._file_summary()]:
            skipped = summary["skipped"]
            line = (
                f"{summary['source']}: {summary['rows_read']:,} rows read,"
                f" {summary['rows_imported']:,} imported, {sum(skipped.values()):,} skipped"
            )
            if skipped:
                line += " (" + ", ".join(f"{n:,} x {r}" for r, n in sorted(skipped.items())) + ")"
            out.append(line)
        if self.examples:
            shown = len(self.examples)
            out.append(f"first {shown} skipped row(s):" if shown > 1 else "skipped row:")
            out += [f"  {e.describe()}" for e in self.examples]
        out += [f"note: {n}" for n in self.notes]
        return out

"""What was recommended and what was shown: the served lists the service logs and the
impressions clients report, beside the events table whose ``request_id`` links an outcome (a
click, a purchase, a dismissal) to them (docs/feedback.md).

Linking happens when the figures are read, not when the rows are written: an impression may
arrive before its served list is written (the list is logged without being awaited) and an
outcome before its impression, and none is refused or dropped for it. Whatever is still
unlinked when the figures are read is counted as such.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

DISMISS = "dismiss"  # the outcome that says "not for me": stored and counted, never interest
CONVERSIONS = frozenset({"purchase"})  # outcomes counted as conversions


@dataclass(frozen=True)
class Served:
    """A recommendation answer as the service gave it: items best first."""

    request_id: str
    user: str
    variant: str
    model_version: str
    items: tuple[str, ...]
    timestamp: int


@dataclass(frozen=True)
class Impression:
    """An item a client showed the user, at ``slot`` (0: first) of the answer ``request_id``."""

    request_id: str
    user: str
    item: str
    slot: int
    timestamp: int


def served_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "served",
        metadata,
        sa.Column("request_id", sa.String, primary_key=True),
        sa.Column("user", sa.String, nullable=False, index=True),
        sa.Column("variant", sa.String, nullable=False),
        sa.Column("model_version", sa.String, nullable=False),
        sa.Column("items", sa.JSON, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
    )


def impressions_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "impressions",
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("request_id", sa.String, nullable=False),
        sa.Column("user", sa.String, nullable=False, index=True),
        sa.Column("item", sa.String, nullable=False, index=True),
        sa.Column("slot", sa.Integer, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False, index=True),
        # a retried report of the same impression is stored once
        sa.UniqueConstraint("request_id", "item", name="one_impression_per_item_and_request"),
    )


class FeedbackLog:
    """Served lists and impressions in the event store's database (`EventStore.feedback`)."""

    def __init__(
        self,
        engine: sa.Engine,
        metadata: sa.MetaData,
        events: sa.Table,
        insert: Callable[[sa.Table], sa.Insert],
    ) -> None:
        self.engine, self.events = engine, events
        self.served = served_table(metadata)
        self.impressions = impressions_table(metadata)
        self._insert = insert

    def log_served(self, answers: Sequence[Served]) -> None:
        """Store served lists in one transaction (one already stored is left as it is): a
        plain many-row insert, since the log's writer waits for no answer."""
        if not answers:
            return
        rows = [
            {
                "request_id": a.request_id,
                "user": a.user,
                "variant": a.variant,
                "model_version": a.model_version,
                "items": list(a.items),
                "timestamp": int(a.timestamp),
            }
            for a in answers
        ]
        with self.engine.begin() as connection:
            connection.execute(self._insert(self.served).on_conflict_do_nothing(), rows)

    def add_impressions(self, shown: Sequence[Impression]) -> list[bool]:
        """Store impressions in one transaction; whether each was new (a retried one, the same
        request and item, is stored once)."""
        if not shown:
            return []
        t = self.impressions
        rows = [
            {
                "request_id": i.request_id,
                "user": i.user,
                "item": i.item,
                "slot": int(i.slot),
                "timestamp": int(i.timestamp),
            }
            for i in shown
        ]
        statement = self._insert(t).on_conflict_do_nothing().returning(t.c.request_id, t.c.item)
        with self.engine.begin() as connection:
            new = {(r.request_id, r.item) for r in connection.execute(statement, rows)}
        out = []
        for i in shown:
            key = (i.request_id, i.item)
            out.append(key in new)
            new.discard(key)  # a repeat later in the batch was not stored
        return out

    def _outcome(self, impression: sa.Table, positive: bool = True) -> sa.Exists:
        """Whether an outcome event links to ``impression`` (any but a dismissal when
        ``positive``, else a dismissal)."""
        e = self.events
        kind = e.c.event != DISMISS if positive else e.c.event == DISMISS
        return (
            sa.select(e.c.id)
            .where(e.c.request_id == impression.c.request_id, e.c.item == impression.c.item, kind)
            .exists()
        )

    def ignored(self, user: str) -> dict[str, int]:
        """How many times each item was shown to ``user`` with no positive outcome (a dismissal
        counts as ignored): what "shown but ignored" demotion reads."""
        i = self.impressions
        query = (
            sa.select(i.c.item, sa.func.count())
            .where(i.c.user == user, ~self._outcome(i))
            .group_by(i.c.item)
        )
        with self.engine.connect() as connection:
            return {item: int(n) for item, n in connection.execute(query)}

    def exposure(self) -> dict[str, int]:
        """Impressions per item: how much of a chance each has had."""
        i = self.impressions
        query = sa.select(i.c.item, sa.func.count()).group_by(i.c.item)
        with self.engine.connect() as connection:
            return {item: int(n) for item, n in connection.execute(query)}

    def impression_rows(self, since: int | None = None, until: int | None = None) -> pd.DataFrame:
        """Every impression in [since, until) with its served list's variant and model version
        (null: unlinked, no served list) and whether a positive outcome, a conversion or a
        dismissal links to it."""
        i, s, e = self.impressions, self.served, self.events
        converted = (
            sa.select(e.c.id)
            .where(
                e.c.request_id == i.c.request_id,
                e.c.item == i.c.item,
                e.c.event.in_(sorted(CONVERSIONS)),
            )
            .exists()
        )
        query = (
            sa.select(
                i.c.request_id,
                i.c.user,
                i.c.item,
                i.c.slot,
                i.c.timestamp,
                s.c.variant,
                s.c.model_version,
                self._outcome(i).label("clicked"),
                converted.label("converted"),
                self._outcome(i, positive=False).label("dismissed"),
            )
            .select_from(i.outerjoin(s, s.c.request_id == i.c.request_id))
            .where(*_between(i.c.timestamp, since, until))
        )
        with self.engine.connect() as connection:
            frame = pd.DataFrame(connection.execute(query).mappings().all(), columns=_IMPRESSION)
        for flag in ("clicked", "converted", "dismissed"):
            frame[flag] = frame[flag].astype(bool)
        return frame

    def unlinked_outcomes(self, since: int | None = None, until: int | None = None) -> pd.DataFrame:
        """Outcome events (with a request_id) in [since, until) that match no impression of
        that request and item, with the served list's variant and model version where the
        request is known."""
        i, s, e = self.impressions, self.served, self.events
        shown = (
            sa.select(i.c.id).where(i.c.request_id == e.c.request_id, i.c.item == e.c.item).exists()
        )
        query = (
            sa.select(
                e.c.request_id,
                e.c.user,
                e.c.item,
                e.c.event,
                e.c.timestamp,
                s.c.variant,
                s.c.model_version,
            )
            .select_from(e.outerjoin(s, s.c.request_id == e.c.request_id))
            .where(e.c.request_id.is_not(None), ~shown, *_between(e.c.timestamp, since, until))
        )
        with self.engine.connect() as connection:
            return pd.DataFrame(connection.execute(query).mappings().all(), columns=_UNLINKED)

    def delete_user(self, connection: sa.Connection, user: str) -> int:
        """Erase the user's served lists and impressions inside the caller's transaction."""
        erased = 0
        for table in (self.served, self.impressions):
            erased += connection.execute(sa.delete(table).where(table.c.user == user)).rowcount
        return erased


_IMPRESSION = [
    "request_id", "user", "item", "slot", "timestamp", "variant", "model_version", "clicked",
    "converted", "dismissed",
]  # fmt: skip
_UNLINKED = ["request_id", "user", "item", "event", "timestamp", "variant", "model_version"]


def _between(column: sa.Column, since: int | None, until: int | None) -> list[sa.ColumnElement]:
    where = []
    if since is not None:
        where.append(column >= since)
    if until is not None:
        where.append(column < until)
    return where


__all__ = ["CONVERSIONS", "DISMISS", "FeedbackLog", "Impression", "Served"]

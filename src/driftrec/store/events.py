"""The event store: every accepted event, durable before it is acknowledged.

SQLAlchemy 2 over an embedded SQLite file by default (write-ahead log, ``synchronous=FULL``: an
acknowledged event survives a killed process and a power loss) or PostgreSQL by URL
(``postgresql+psycopg://...``: committed, so it survives what the server's own settings make it
survive, by default both). A batch is one transaction: all of it is stored or none. A client
``event_id`` makes a retry idempotent: the same (user, event_id) is stored once, however many
times and from however many connections it is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from driftrec.data.events import Event
from driftrec.errors import InputError


@dataclass(frozen=True)
class StoredEvent:
    """An event of a user, as the store keeps it; ``event_id`` is the client's retry key."""

    user: str
    event: Event
    event_id: str | None = None


def _table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "events",
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("user", sa.String, nullable=False, index=True),
        sa.Column("item", sa.String, nullable=True),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("event", sa.String, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("event_id", sa.String, nullable=True),
        # NULLs never clash, so only events that carry an event_id are deduplicated
        sa.UniqueConstraint("user", "event_id", name="one_event_per_client_id"),
    )


def _sqlite_durability(dbapi_connection: object, _: object) -> None:
    """Write-ahead log and a sync on every commit: what makes SQLite's acknowledgement durable."""
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class EventStore:
    """Append, read and erase users' events in a SQL database (``url``: SQLAlchemy's form, e.g.
    ``sqlite:///runs/events.db`` or ``postgresql+psycopg://user@host/db``). ``schema`` puts the
    table in a PostgreSQL schema (tests use one each); the table is created when missing."""

    def __init__(self, url: str, schema: str | None = None) -> None:
        try:
            backend = sa.engine.make_url(url).get_backend_name()
        except sa.exc.ArgumentError as err:
            raise InputError(f"database URL {url!r} is not a SQLAlchemy URL ({err})") from None
        if backend not in ("sqlite", "postgresql"):
            raise InputError(f"database URL {url!r}: events are stored in SQLite or PostgreSQL")
        self.engine = sa.create_engine(url)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_durability)
        self.table = _table(sa.MetaData(schema=schema))
        self.table.metadata.create_all(self.engine)

    def append(self, events: Sequence[StoredEvent]) -> int:
        """Store ``events`` in one transaction; returns how many were new (an event whose
        (user, event_id) is already stored is a retry, not stored again)."""
        if not events:
            return 0
        rows = [
            {
                "user": e.user,
                "item": e.event.item,
                "timestamp": int(e.event.timestamp),
                "event": e.event.event,
                "value": float(e.event.value),
                "text": e.event.text,
                "event_id": e.event_id,
            }
            for e in events
        ]
        insert = postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        statement = insert(self.table).on_conflict_do_nothing().returning(self.table.c.id)
        with self.engine.begin() as connection:
            return len(connection.execute(statement, rows).all())  # the rows really inserted

    def events_of(self, user: str) -> list[Event]:
        """The user's events, oldest first (equal times in the order they were stored)."""
        t = self.table
        query = sa.select(t).where(t.c.user == user).order_by(t.c.timestamp, t.c.id)
        with self.engine.connect() as connection:
            return [
                Event(row.item, row.timestamp, row.event, row.value, row.text)
                for row in connection.execute(query)
            ]

    def delete_user(self, user: str) -> int:
        """Erase every event of ``user``; returns how many there were."""
        with self.engine.begin() as connection:
            return connection.execute(
                sa.delete(self.table).where(self.table.c.user == user)
            ).rowcount

    def count(self) -> int:
        """How many events are stored."""
        with self.engine.connect() as connection:
            return int(
                connection.execute(sa.select(sa.func.count()).select_from(self.table)).scalar()
            )

    def close(self) -> None:
        self.engine.dispose()

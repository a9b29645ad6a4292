"""The event store: every accepted event, and every catalog item a client added, durable
before it is acknowledged.

SQLAlchemy 2 over an embedded SQLite file by default (write-ahead log, ``synchronous=FULL``: an
acknowledged event survives a killed process and a power loss) or PostgreSQL by URL
(``postgresql+psycopg://...``: committed, so it survives what the server's own settings make it
survive, by default both). A batch is one transaction: all of it is stored or none. A client
``event_id`` makes a retry idempotent: the same (user, event_id) is stored once, however many
times and from however many connections it is sent.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from driftrec.data.events import Event
from driftrec.errors import InputError
from driftrec.store.feedback import FeedbackLog


@dataclass(frozen=True)
class StoredEvent:
    """An event of a user, as the store keeps it; ``event_id`` is the client's retry key."""

    user: str
    event: Event
    event_id: str | None = None
    request_id: str | None = None  # the recommendation answer this event is an outcome of


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
        sa.Column("request_id", sa.String, nullable=True, index=True),
        # NULLs never clash, so only events that carry an event_id are deduplicated
        sa.UniqueConstraint("user", "event_id", name="one_event_per_client_id"),
    )


def erasure_digest(user: str) -> str:
    """What the erasure log keeps of an erased user: a SHA-256 digest of their store id,
    enough to recognise them in a model trained before the erasure, never their id."""
    return hashlib.sha256(user.encode()).hexdigest()


def _erasures_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "erasures",
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False, index=True),
        sa.Column("erased_at", sa.Float, nullable=False),  # Unix seconds
    )


@dataclass(frozen=True)
class CatalogItem:
    """An item a client put into the catalog: its text is what text-aware models embed."""

    item: str
    title: str = ""
    text: str = ""
    categories: tuple[str, ...] = ()


def _items_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "items",
        metadata,
        sa.Column("item", sa.String, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),  # the order items were first added
    )


def _add_missing_columns(engine: sa.Engine, table: sa.Table) -> None:
    """Add the columns a store written by an older driftrec lacks (nullable ones only, so
    the rows it holds stay valid): ``create_all`` makes missing tables, never columns."""
    present = {c["name"] for c in sa.inspect(engine).get_columns(table.name, schema=table.schema)}
    missing = [c for c in table.columns if c.name not in present]
    if not missing:
        return
    name = engine.dialect.identifier_preparer.format_table(table)
    with engine.begin() as connection:
        for column in missing:
            kind = column.type.compile(dialect=engine.dialect)
            connection.exec_driver_sql(f'ALTER TABLE {name} ADD COLUMN "{column.name}" {kind}')
            if column.index:
                sa.Index(f"ix_{table.name}_{column.name}", column).create(connection)


def _next_code_point(char: str) -> str | None:
    """The character after ``char`` in code point order (UTF-8's byte order), skipping the
    surrogates UTF-8 cannot encode; None after the last one."""
    after = ord(char) + 1
    if 0xD800 <= after <= 0xDFFF:
        after = 0xE000
    return chr(after) if after <= 0x10FFFF else None


def _sqlite_durability(synchronous: str) -> Callable[[object, object], None]:
    def configure(dbapi_connection: object, _: object) -> None:
        """Write-ahead log and (durable) a sync on every commit: what makes SQLite's
        acknowledgement durable."""
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA secure_delete=ON")  # an erased user's rows are overwritten
        cursor.close()

    return configure


class EventStore:
    """Append, read and erase users' events in a SQL database (``url``: SQLAlchemy's form, e.g.
    ``sqlite:///runs/events.db`` or ``postgresql+psycopg://user@host/db``). ``schema`` puts the
    table in a PostgreSQL schema (tests use one each); the table is created when missing.
    ``durable=False`` skips SQLite's sync on commit: for scratch stores (replay) whose events
    live elsewhere, never for a service's."""

    def __init__(self, url: str, schema: str | None = None, durable: bool = True) -> None:
        try:
            parsed = sa.engine.make_url(url)
        except sa.exc.ArgumentError:
            raise InputError(f"database URL {url!r} is not a SQLAlchemy URL") from None
        shown = parsed.render_as_string(hide_password=True)  # never echo a password
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise InputError(f"database URL {shown!r}: events are stored in SQLite or PostgreSQL")
        # hide_parameters: an error never carries users' ids or texts into a log
        self.engine = sa.create_engine(parsed, hide_parameters=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(
                self.engine, "connect", _sqlite_durability("FULL" if durable else "OFF")
            )
        # the dialect's INSERT, which has ON CONFLICT for idempotent retries and upserts
        self._insert = (
            postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        )
        metadata = sa.MetaData(schema=schema)
        self.table = _table(metadata)
        self.items_table = _items_table(metadata)
        self.erasures_table = _erasures_table(metadata)
        self.feedback = FeedbackLog(self.engine, metadata, self.table, self._insert)
        metadata.create_all(self.engine)
        _add_missing_columns(self.engine, self.table)
        if self.engine.dialect.name == "postgresql":
            # LIKE 'prefix%' reads a B-tree only in byte order; the default index follows the
            # database's collation, so the user listing gets one of its own
            sa.Index(
                "events_user_pattern",
                self.table.c.user,
                postgresql_ops={"user": "text_pattern_ops"},
            ).create(self.engine, checkfirst=True)
        t = self.table  # built once: every append runs it, often for one event
        self._append = (
            self._insert(t)
            .on_conflict_do_nothing()
            .returning(t.c.id, t.c.user, t.c.event_id, sort_by_parameter_order=True)
        )

    def append(self, events: Sequence[StoredEvent]) -> list[bool]:
        """Store ``events`` in one transaction; returns whether each was new (an event whose
        (user, event_id) is already stored, or came earlier in the batch, is a retry)."""
        return [row is not None for row in self.insert(events)]

    def insert(self, events: Sequence[StoredEvent]) -> list[int | None]:
        """`append`, returning each event's row id (None for a retry): the id names a stored
        event wherever it is copied to (the shared live state)."""
        if not events:
            return []
        rows = [
            {
                "user": e.user,
                "item": e.event.item,
                "timestamp": int(e.event.timestamp),
                "event": e.event.event,
                "value": float(e.event.value),
                "text": e.event.text,
                "event_id": e.event_id,
                "request_id": e.request_id,
            }
            for e in events
        ]
        with self.engine.begin() as connection:
            # in the events' order, retries left out: paired back by (user, event_id)
            returned = list(connection.execute(self._append, rows))
        ids: list[int | None] = []
        at = 0
        for e in events:
            hit = at < len(returned) and (returned[at].user, returned[at].event_id) == (
                e.user,
                e.event_id,
            )
            ids.append(int(returned[at].id) if hit else None)
            at += hit
        return ids

    def events_of(self, user: str, newest: int | None = None) -> list[Event]:
        """The user's events, oldest first (equal times in the order they were stored); only
        the ``newest`` ones when given."""
        return [event for _, _, event in self.rows_of(user, newest)]

    def rows_of(self, user: str, newest: int | None = None) -> list[tuple[int, str | None, Event]]:
        """`events_of` with each event's row id and event_id."""
        t = self.table
        query = sa.select(t).where(t.c.user == user)
        if newest is None:
            query = query.order_by(t.c.timestamp, t.c.id)
        else:
            query = query.order_by(t.c.timestamp.desc(), t.c.id.desc()).limit(newest)
        with self.engine.connect() as connection:
            rows = list(connection.execute(query))
        if newest is not None:
            rows.reverse()
        return [
            (
                int(row.id),
                row.event_id,
                Event(row.item, row.timestamp, row.event, row.value, row.text),
            )
            for row in rows
        ]

    def all_events(self) -> list[StoredEvent]:
        """Every stored event of every user, oldest first (equal times in the order they were
        stored): what training further on the service's events reads."""
        t = self.table
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(t).order_by(t.c.timestamp, t.c.id))
            return [
                StoredEvent(
                    row.user,
                    Event(row.item, row.timestamp, row.event, row.value, row.text),
                    row.event_id,
                )
                for row in rows
            ]

    def users_with_prefix(self, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` distinct stored users whose id starts with ``prefix``, in order: an
        index range scan (SQLite's binary order, PostgreSQL's pattern index), with LIKE's
        wildcards in ``prefix`` taken literally."""
        t = self.table
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = sa.select(t.c.user).distinct().where(t.c.user.like(escaped + "%", escape="\\"))
        if prefix and self.engine.dialect.name == "sqlite":
            # SQLite's LIKE ignores ASCII case and reads no index: bound the range instead
            query = query.where(t.c.user >= prefix)
            after = _next_code_point(prefix[-1])
            if after is not None:
                query = query.where(t.c.user < prefix[:-1] + after)
        with self.engine.connect() as connection:
            return list(connection.execute(query.order_by(t.c.user).limit(limit)).scalars())

    def delete_user(self, user: str) -> int:
        """Erase every event of ``user``, and the lists served and shown to them, and log the
        erasure (a digest, `erased_since`); returns how many events there were. SQLite
        overwrites the rows (secure_delete) and checkpoints its write-ahead log, so the file
        keeps no copy; PostgreSQL keeps dead rows until its next vacuum (docs/service.md)."""
        with self.engine.begin() as connection:
            erased = connection.execute(
                sa.delete(self.table).where(self.table.c.user == user)
            ).rowcount
            self.feedback.delete_user(connection, user)  # what they were shown goes too
            connection.execute(
                sa.insert(self.erasures_table),
                {"digest": erasure_digest(user), "erased_at": time.time()},
            )
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return erased

    def erased_since(self, since: float) -> set[str]:
        """Digests (`erasure_digest`) of the users erased after ``since`` (Unix seconds): a
        replica loading a model saved before forgets them, even if it missed the change."""
        t = self.erasures_table
        query = sa.select(t.c.digest).where(t.c.erased_at > since).distinct()
        with self.engine.connect() as connection:
            return set(connection.execute(query).scalars())

    def put_items(self, items: Sequence[CatalogItem]) -> list[str]:
        """Add or update catalog items in one transaction; returns the ids that were new."""
        if not items:
            return []
        t = self.items_table
        insert = self._insert
        with self.engine.begin() as connection:
            known = set(
                connection.execute(
                    sa.select(t.c.item).where(t.c.item.in_([i.item for i in items]))
                ).scalars()
            )
            first = int(connection.execute(sa.select(sa.func.count()).select_from(t)).scalar())
            rows = [
                {
                    "item": i.item,
                    "title": i.title,
                    "text": i.text,
                    "categories": list(i.categories),
                    "seq": first + n,
                }
                for n, i in enumerate(items)
            ]
            statement = insert(t)
            statement = statement.on_conflict_do_update(
                index_elements=[t.c.item],
                set_={c: statement.excluded[c] for c in ("title", "text", "categories")},
            )
            connection.execute(statement, rows)
        return [i.item for i in items if i.item not in known]

    def items(self, ids: Sequence[str] | None = None) -> list[CatalogItem]:
        """Every item clients added (or those of ``ids``), in the order they were first
        added."""
        t = self.items_table
        query = sa.select(t).order_by(t.c.seq)
        if ids is not None:
            query = query.where(t.c.item.in_(list(ids)))
        with self.engine.connect() as connection:
            return [
                CatalogItem(row.item, row.title, row.text, tuple(row.categories))
                for row in connection.execute(query)
            ]

    def count(self) -> int:
        """How many events are stored."""
        with self.engine.connect() as connection:
            return int(
                connection.execute(sa.select(sa.func.count()).select_from(self.table)).scalar()
            )

    def close(self) -> None:
        self.engine.dispose()

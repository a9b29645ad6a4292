"""Shared test set-up: embeddings go to a per-session cache, never into the user's home; event
stores on the embedded SQLite file and on the real PostgreSQL server (127.0.0.1:5432, trust
auth, database `test`, which every machine, CI's included, runs), each PostgreSQL one in a
schema of its own, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from driftrec.data.synthetic import SyntheticConfig, generate
from driftrec.store import EventStore


@pytest.fixture(scope="session", autouse=True)
def embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Point DRIFTREC_CACHE at a session directory unless the caller chose one (to reuse it)."""
    if "DRIFTREC_CACHE" not in os.environ:
        os.environ["DRIFTREC_CACHE"] = str(tmp_path_factory.mktemp("driftrec-cache"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved 40-user synthetic dataset, one per test module (the CLI tests read it)."""
    config = SyntheticConfig(
        n_users=40, n_items=60, events_per_user=(22, 40), min_segment=5, seed=1
    )
    return generate(config).save(tmp_path_factory.mktemp("synthetic") / "data")


POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "sqlite":
        store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
        yield store
        store.close()
        return
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    store = EventStore(POSTGRES, schema=schema)
    yield store
    store.close()
    with admin.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()

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
import redis
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


REDIS = "redis://127.0.0.1:6379/0"  # the Redis server every machine, CI's included, runs


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix of the test's own, its keys deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(REDIS)
    keys = list(client.scan_iter(f"{name}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()

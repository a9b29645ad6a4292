"""Several replicas of the service over one PostgreSQL store and one Redis (`--state`), as a
client sees them: real `driftrec serve` processes, real HTTP, the real servers."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa
from clitools import assert_input_error, cli
from servers import Server, start_server

from driftrec.client import ServiceError
from driftrec.data.synthetic import SyntheticConfig, SyntheticData, generate
from driftrec.models import create
from driftrec.store import EventStore
from driftrec.store.shared import SharedState, connect
from driftrec.store.stream import RedisEventStream, StreamConsumer

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticData, Path]:
    home = tmp_path_factory.mktemp("replicas")
    data = generate(SyntheticConfig(n_users=80, seed=3))
    data.save(home / "data")
    return data, home


@pytest.fixture(scope="module")
def model_dirs(synthetic: tuple[SyntheticData, Path]) -> tuple[Path, Path]:
    """Two versions of a small model, the second to roll out."""
    data, home = synthetic
    info = {"dataset": str(home / "data")}
    first = create("gru4rec", epochs=3, progress=False).fit(data.dataset)
    second = create("gru4rec", epochs=4, seed=1, progress=False).fit(data.dataset)
    return first.save(home / "v1", info=info), second.save(home / "v2", info=info)


@contextmanager
def _deployment() -> Iterator[tuple[str, list[str]]]:
    """A PostgreSQL schema and a Redis key prefix of their own: the store URL and the state
    options; dropped and deleted afterwards."""
    schema = f"r_{uuid.uuid4().hex[:12]}"
    prefix = f"test-{schema}"
    admin = sa.create_engine(PG_ADMIN)
    with admin.begin() as connection:
        connection.execute(sa.text(f"create schema {schema}"))
    try:
        yield f"{PG_ADMIN}?options=-csearch_path%3D{schema}", [
            "--state", REDIS, "--state-prefix", prefix,
        ]  # fmt: skip
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f"drop schema {schema} cascade"))
        admin.dispose()
        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture(scope="module")
def replicas(
    model_dirs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server, str]]:
    """Two replicas of v1 on a deployment of their own."""
    home = tmp_path_factory.mktemp("replica-logs")
    with _deployment() as (db, state):
        options = [*state, "--demote-ignored", "0.5"]
        first = start_server(model_dirs[0], db, home / "a.log", *options)
        second = start_server(model_dirs[0], db, home / "b.log", *options)
        yield first, second, db
        first.stop(), second.stop()


def test_an_event_posted_to_one_replica_is_in_the_others_next_answer_1000_times(
    synthetic: tuple[SyntheticData, Path], replicas: tuple[Server, Server, str]
) -> None:
    """Each round posts the reader's current top item as seen by the user to one replica and
    asks the other: a stale answer would still hold it (seen items are excluded)."""
    data, _ = synthetic
    a, b, _ = replicas
    assert a.client().health()["state"] == "redis"
    users = [str(u) for u in data.dataset.user_ids[:10]]
    stale = []
    with a.client() as ca, b.client() as cb:
        top = {u: cb.recommend(u)["items"][0]["item"] for u in users}
        for n in range(1_000):
            user = users[n % len(users)]
            writer, reader = (ca, cb) if n % 2 == 0 else (cb, ca)
            writer.post_events({"user": user, "item": top[user], "timestamp": 2_000_000_000 + n})
            items = [i["item"] for i in reader.recommend(user)["items"]]
            if top[user] in items:
                stale.append(n)
            top[user] = items[0]
    assert stale == []


def test_items_shown_and_ignored_through_one_replica_are_demoted_by_the_other(
    synthetic: tuple[SyntheticData, Path], replicas: tuple[Server, Server, str]
) -> None:
    data, _ = synthetic
    a, b, _ = replicas
    user = str(data.dataset.user_ids[40])
    with a.client() as ca, b.client() as cb:
        answer = ca.recommend(user)
        shown = [i["item"] for i in answer["items"][:3]]
        assert [i["item"] for i in cb.recommend(user)["items"][:3]] == shown
        for _ in range(5):
            answer = ca.recommend(user)
            ca.post_impressions(answer["request_id"], user, shown)
        top = [i["item"] for i in cb.recommend(user)["items"][:3]]
    assert not set(top) & set(shown)


def test_items_and_erasures_reach_every_replica(
    synthetic: tuple[SyntheticData, Path], replicas: tuple[Server, Server, str]
) -> None:
    data, _ = synthetic
    a, b, _ = replicas
    trained = str(data.dataset.user_ids[-1])
    with a.client() as ca, b.client() as cb:
        assert cb.interests(trained)["events"] > 0
        ca.put_items([{"item": "brand-new", "title": "A new thing"}])
        ca.delete_user(trained)
        deadline = time.monotonic() + 10
        while True:  # the change stream is read within milliseconds; allow a busy machine
            try:
                cb.post_events({"user": "fresh", "item": "brand-new", "timestamp": 1})
                erased = cb.interests(trained)["events"] == 0
            except ServiceError:
                erased = False
            if erased or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert erased
        assert cb.interests(trained)["events"] == 0  # training history gone from its model too


def test_a_new_model_rolls_out_replica_by_replica_without_failing_requests(
    synthetic: tuple[SyntheticData, Path],
    model_dirs: tuple[Path, Path],
    replicas: tuple[Server, Server, str],
) -> None:
    data, _ = synthetic
    a, b, _ = replicas
    users = [str(u) for u in data.dataset.user_ids[10:30]]
    item = str(data.dataset.item_ids[0])
    failures: list[str] = []
    done = time.monotonic() + 600

    def load(worker: int) -> int:
        answered = 0
        with a.client() as ca, b.client() as cb:
            while time.monotonic() < done:
                client = ca if answered % 2 == 0 else cb
                user = users[(worker + answered) % len(users)]
                try:
                    client.post_events({"user": user, "item": item, "timestamp": 3})
                    client.recommend(user)
                except Exception as err:
                    failures.append(repr(err))
                answered += 1
        return answered

    with ThreadPoolExecutor(4) as pool:
        running = [pool.submit(load, w) for w in range(4)]
        time.sleep(1)
        versions = []
        for replica in (a, b):
            with replica.client() as client:
                versions.append(client.reload(str(model_dirs[1]))["model_version"])
            time.sleep(1)
        done = time.monotonic()  # the workers stop
        answered = sum(r.result() for r in running)
    assert failures == [] and answered > 20
    assert versions[0] == versions[1]
    for replica in (a, b):
        assert replica.client().health()["model_version"] == versions[0]


def _consumer(db: str, state: list[str], name: str, log: Path) -> subprocess.Popen[bytes]:
    """`driftrec consume` as its own process."""
    command = [
        sys.executable, "-c", "from driftrec.cli.main import main; main()", "consume",
        "--db", db, *state, "--partitions", "8", "--name", name, "--lease", "2",
    ]  # fmt: skip
    with log.open("ab") as handle:
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)


def test_kill_9_of_a_replica_and_a_consumer_mid_load_loses_and_doubles_no_event(
    synthetic: tuple[SyntheticData, Path], model_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    """8 clients post batches with event ids through two `--ingest stream` replicas (a
    failed post is retried on the other one, as a client behind a load balancer would), two
    consumers store them; one replica and one consumer are killed with SIGKILL mid-load.
    Afterwards every acknowledged event is in the store exactly once, and the live state
    holds each user's stored events, no more."""
    data, _ = synthetic
    items = [str(i) for i in data.dataset.item_ids[:50]]
    with _deployment() as (db, state):
        state = [*state, "--ingest", "stream", "--partitions", "8"]
        a = start_server(model_dirs[0], db, tmp_path / "a.log", *state)
        b = start_server(model_dirs[0], db, tmp_path / "b.log", *state)
        consumers = [_consumer(db, state[:4], f"c{n}", tmp_path / f"c{n}.log") for n in (1, 2)]
        acknowledged: set[str] = set()
        progress = threading.Semaphore(0)
        deadline = time.monotonic() + 240

        def post(worker: int) -> int:
            retries = 0
            replicas = [a, b] if worker % 2 == 0 else [b, a]
            for n in range(40):
                batch = [
                    {
                        "user": f"load-{worker}-{n % 5}",
                        "item": items[(worker * 7 + n + j) % len(items)],
                        "timestamp": 2_000_000_000 + n,
                        "event_id": f"w{worker}-{n}-{j}",
                    }
                    for j in range(1 + n % 3)
                ]
                for attempt in range(20):
                    replica = replicas[attempt % 2]
                    try:
                        response = httpx.post(
                            f"{replica.url}/events", json={"events": batch}, timeout=30
                        )
                    except httpx.TransportError:
                        response = None
                    if response is not None and response.status_code == 200:
                        acknowledged.update(e["event_id"] for e in batch)
                        break
                    retries += 1
                    assert time.monotonic() < deadline, "the load did not finish in time"
                    time.sleep(0.05)
                else:
                    raise AssertionError(f"batch {n} of worker {worker} was never accepted")
                progress.release()
            return retries

        try:
            with ThreadPoolExecutor(8) as pool:
                running = [pool.submit(post, w) for w in range(8)]
                for _ in range(80):  # a quarter of the 320 batches in
                    progress.acquire(timeout=120)
                a.kill9()
                consumers[0].kill()  # SIGKILL
                consumers[0].wait(30)
                retries = sum(r.result() for r in running)
            stream = RedisEventStream(connect(REDIS), state[3], 8)
            watcher = StreamConsumer(stream, EventStore(db), "watcher")
            drained = time.monotonic() + 120
            while watcher.lag() and time.monotonic() < drained:
                time.sleep(0.5)  # the surviving consumer takes over once the leases run out
            assert watcher.lag() == 0
            engine = sa.create_engine(db)
            with engine.connect() as connection:
                stored = connection.execute(
                    sa.text("select event_id, count(*) from events group by event_id")
                ).all()
                per_user = dict(
                    connection.execute(
                        sa.text('select "user", count(*) from events group by "user"')
                    ).all()
                )
            engine.dispose()
            counts = dict(stored)
            assert retries > 0  # the kill was mid-load: some posts failed over
            assert acknowledged <= set(counts)  # nothing acknowledged lost
            assert max(counts.values()) == 1  # nothing stored twice
            with b.client() as client:
                for user, count in per_user.items():
                    assert client.interests(user)["events"] == count, user
        finally:
            for c in consumers:
                c.kill()
                c.wait(30)
            b.stop()


def test_serve_and_consume_refuse_bad_scale_out_options_in_one_line(
    model_dirs: tuple[Path, Path], tmp_path: Path, redis_prefix: str
) -> None:
    model, db = model_dirs[0], f"sqlite:///{tmp_path / 'e.db'}"
    serve = ["serve", "--model", model, "--db", db]
    assert_input_error(cli(*serve, "--ingest", "stream"), "--ingest stream needs --state")
    assert_input_error(cli(*serve, "--ingest", "kafka"), "--ingest")
    assert_input_error(cli(*serve, "--state-ttl", "0"), "--state-ttl")
    assert_input_error(cli(*serve, "--state", "http://127.0.0.1:6379"), "state URL")
    # replicas of one deployment must keep the same window: the first to start sets it
    SharedState(connect(REDIS), window=1_000, prefix=redis_prefix)
    state = ["--state", REDIS, "--state-prefix", redis_prefix]
    assert_input_error(cli(*serve, *state, "--window", "50"), "--window 50", "keeps 1000")
    consume = ["consume", "--db", db, "--state", REDIS, "--state-prefix", redis_prefix]
    assert_input_error(cli(*consume, "--partitions", "0"), "--partitions")
    assert_input_error(cli(*consume, "--lease", "0"), "--lease")
    RedisEventStream(connect(REDIS), redis_prefix, 4)
    assert_input_error(cli(*consume, "--partitions", "8"), "created with 4")
    assert_input_error(
        cli("consume", "--db", db, "--state", "redis://127.0.0.1:1/0"), "does not answer"
    )

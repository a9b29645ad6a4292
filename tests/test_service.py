"""The service as a client uses it: a real `driftrec serve` process, real HTTP (driftrec.client),
the real SQLite file or PostgreSQL server, kill -9 and concurrent clients."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from clitools import assert_input_error, cli
from servers import Server, start_server

from driftrec.client import ServiceError
from driftrec.data.synthetic import SyntheticConfig, SyntheticData, generate
from driftrec.models import create

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticData, Path]:
    home = tmp_path_factory.mktemp("served")
    data = generate(SyntheticConfig(n_users=150, seed=0))
    data.save(home / "data")
    return data, home


@pytest.fixture(scope="module")
def model_dir(synthetic: tuple[SyntheticData, Path]) -> Path:
    """SASRec on the synthetic users, 40 epochs without early stopping (which stops this small
    set too soon for the model to follow a change of interest)."""
    data, home = synthetic
    model = create("sasrec", epochs=40, patience=100, progress=False).fit(data.dataset)
    return model.save(home / "sasrec", info={"dataset": str(home / "data")})


@pytest.fixture
def server(model_dir: Path, tmp_path: Path) -> Iterator[Server]:
    served = start_server(model_dir, f"sqlite:///{tmp_path / 'events.db'}", tmp_path / "log")
    yield served
    served.stop()


def _event(user: str, item: str, timestamp: int, **fields: object) -> dict[str, object]:
    return {"user": user, "item": item, "timestamp": timestamp, "event": "click", **fields}


def test_events_move_the_next_recommendations_profile_and_drift_score(
    synthetic: tuple[SyntheticData, Path], server: Server
) -> None:
    """Users whose last events were all one category each post five views of a category they
    never touched: its share rises in each one's short-term profile, the drift score rises, and
    its share of the next top 10 rises (over the users: a single user's ten items are a coarse
    measure of a model trained for seconds)."""
    data, _ = synthetic
    ds = data.dataset
    names = data.categories
    ev = ds.events[ds.events["item"] >= 0]
    last_time = int(ev["timestamp"].max())
    before_share, after_share = [], []
    with server.client() as client:
        for u, rows in ev.groupby("user"):
            history = data.item_category[rows["item"].to_numpy()]
            if len(set(history[-8:].tolist())) != 1 or len(set(history.tolist())) == len(names):
                continue
            user = str(ds.user_ids[u])
            new = next(c for c in range(len(names)) if c not in set(history.tolist()))
            fresh = np.flatnonzero(data.item_category == new)[:5]

            def share(answer: dict[str, object], new: int = new) -> float:
                return float(np.mean([names[new] in i["categories"] for i in answer["items"]]))

            def short(profile: dict[str, object], new: int = new) -> float:
                shares = {t["topic"]: t["share"] for t in profile["short_term"]}
                return shares.get(names[new], 0.0)

            before = client.recommend(user, k=10)
            before_profile = client.interests(user, top=50)
            posted = [
                _event(user, str(ds.item_ids[i]), last_time + 60 * (n + 1), event="view")
                for n, i in enumerate(fresh)
            ]
            answer = client.post_events(posted)
            assert answer["accepted"] == 5 and answer["rejected"] == []
            after = client.recommend(user, k=10)
            after_profile = client.interests(user, top=50)
            assert after["source"] == "model" and after["model_version"] == before["model_version"]
            assert short(after_profile) > short(before_profile) + 0.3
            assert after_profile["drift_score"] > before_profile["drift_score"]
            # the detector flags the change within the five events, and the timeline shows it
            drift = after_profile["drift"]
            assert drift["shift_detected"] and drift["last_shift"] in {
                e["timestamp"] for e in posted
            }
            line = client.timeline(user, points=1000, top=50)
            assert drift["last_shift"] in line["shifts"] and len(line["points"]) == line["events"]
            assert line["points"][-1]["drift_score"] == pytest.approx(after_profile["drift_score"])
            assert line["points"][-1]["short_term"][line["topics"].index(names[new])] == (
                pytest.approx(short(after_profile))
            )
            assert after_profile["events"] == before_profile["events"] + 5
            assert not {e["item"] for e in posted} & {i["item"] for i in after["items"]}
            assert len(after_profile["influential_events"]) == 5
            before_share.append(share(before))
            after_share.append(share(after))
            if len(after_share) == 5:
                break
    assert len(after_share) == 5
    assert np.mean(after_share) > np.mean(before_share) + 0.1, (before_share, after_share)


def test_cold_start_answers_and_explanations(
    synthetic: tuple[SyntheticData, Path], server: Server
) -> None:
    data, _ = synthetic
    item = str(data.dataset.item_ids[0])
    with server.client() as client:
        stranger = client.recommend("nobody-yet", k=5)
        assert stranger["source"] == "popular" and len(stranger["items"]) == 5
        client.post_events({"user": "newcomer", "item": item, "timestamp": 1_700_000_000})
        first = client.recommend("newcomer", k=5, diversify=0.7)
        assert first["source"] == "model" and item not in [i["item"] for i in first["items"]]
        why = client.why("newcomer", first["items"][0]["item"])
        assert why["explained_events"] == 1 and why["events"][0]["item"] == item
        assert why["topics"]  # the categories of the one event
        with pytest.raises(ServiceError) as err:
            client.why("newcomer", "no-such-item")
        assert err.value.status == 404 and err.value.detail[0]["loc"] == ["path", "item"]
        health = client.health()
        assert health["index"] == "exact" and health["items"] == data.dataset.n_items
        metrics = client.metrics()
    assert 'driftrec_requests_total{method="GET",route="/users/{user}/recommendations"' in metrics
    assert "nobody-yet" not in metrics and "newcomer" not in metrics
    assert 'driftrec_stage_seconds_count{stage="store"}' in metrics


def test_bad_requests_are_4xx_naming_the_field_or_limit_and_write_nothing(
    synthetic: tuple[SyntheticData, Path], model_dir: Path, tmp_path: Path
) -> None:
    data, _ = synthetic
    item = str(data.dataset.item_ids[0])
    db = tmp_path / "events.db"
    server = start_server(
        model_dir,
        f"sqlite:///{db}",
        tmp_path / "log",
        "--max-batch",
        "3",
        "--max-text",
        "20",
        "--max-body",
        "4000",
    )
    try:
        url = server.url
        cases = [  # (request, status, a field or limit the answer must name)
            (dict(content=b"{not json", headers={"content-type": "application/json"}), 422, "body"),
            (dict(json={"user": "u", "item": item, "value": "many"}), 422, "value"),
            (dict(json={"item": item}), 422, "user"),
            (dict(json={"user": "u", "item": item, "colour": "red"}), 422, "colour"),
            (dict(json={"user": "u", "item": item, "timestamp": 10**13}), 422, "timestamp"),
            (dict(json={"user": "a/b", "item": item}), 422, "user"),
            (dict(json={"user": "u", "item": item, "text": "nul \u0000 here"}), 422, "text"),
            (dict(json={"user": "..", "item": item}), 422, "user"),
            (dict(json={"user": "u", "item": item, "value": 1e39}), 422, "value"),
            (dict(json={"events": [{"user": "u", "item": item}] * 4}), 422, "--max-batch"),
            (dict(json={"user": "u", "item": item, "text": "x" * 21}), 422, "--max-text"),
            (
                dict(
                    content=b"[" + b" " * 5000 + b"]", headers={"content-type": "application/json"}
                ),
                413,
                "--max-body",
            ),
            (
                dict(
                    json={"events": [{"user": "u", "item": item}, {"user": "u", "item": "zz"}]},
                    params={"atomic": "true"},
                ),
                422,
                "item",
            ),
        ]
        for request, status, needle in cases:
            response = httpx.post(f"{url}/events", **request)
            assert response.status_code == status, (request, response.text)
            assert needle in json.dumps(response.json()["detail"]), (needle, response.text)
        # not atomic: the good event is stored, the bad one listed with its index and reason
        response = httpx.post(
            f"{url}/events",
            json={
                "events": [
                    {"user": "u", "item": item},
                    {"user": "u", "item": "zz"},
                    {"user": "u", "item": item, "event": "teleport"},
                ]
            },
        )
        body = response.json()
        assert response.status_code == 200 and body["accepted"] == 1
        assert [(r["index"], r["field"]) for r in body["rejected"]] == [(1, "item"), (2, "event")]
        for path, params, needle in [
            ("/users/u/recommendations", {"k": 0}, "k"),
            ("/users/u/recommendations", {"k": 5000}, "--max-k"),
            ("/users/u/recommendations", {"diversify": 2}, "diversify"),
            ("/users/u/recommendations", {"text": "space"}, "text"),  # sasrec without text
        ]:
            response = httpx.get(f"{url}{path}", params=params)
            assert response.status_code == 422 and needle in response.text, response.text
    finally:
        server.stop()
    with sqlite3.connect(db) as connection:
        assert connection.execute("select count(*) from events").fetchone()[0] == 1


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh event store: a SQLite file, or a schema of its own on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN)
    with admin.begin() as connection:
        connection.execute(sa.text(f"create schema {schema}"))
    yield f"{PG_ADMIN}?options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(sa.text(f"drop schema {schema} cascade"))
    admin.dispose()


def _stored(db_url: str) -> list[tuple[str, str, str | None]]:
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text('select "user", item, event_id from events')).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def test_an_acknowledged_event_survives_kill_9(
    synthetic: tuple[SyntheticData, Path], model_dir: Path, db_url: str, tmp_path: Path
) -> None:
    data, _ = synthetic
    items = [str(i) for i in data.dataset.item_ids[:3]]
    server = start_server(model_dir, db_url, tmp_path / "log")
    with server.client() as client:
        client.post_events({"user": "k9", "item": items[0], "timestamp": 1_700_000_000})
        client.post_events([_event("k9", i, 1_700_000_100 + n) for n, i in enumerate(items[1:])])
    server.kill9()  # right after the acknowledgement: no clean shutdown
    assert sorted(i for u, i, _ in _stored(db_url) if u == "k9") == sorted(items)
    server = start_server(model_dir, db_url, tmp_path / "log")
    try:
        with server.client() as client:
            assert client.interests("k9")["events"] == 3
            answer = client.recommend("k9", k=20)
        assert answer["source"] == "model" and not set(items) & {i["item"] for i in answer["items"]}
    finally:
        server.stop()


def test_concurrent_clients_retrying_store_every_acknowledged_event_exactly_once(
    synthetic: tuple[SyntheticData, Path], model_dir: Path, db_url: str, tmp_path: Path
) -> None:
    """8 clients post overlapping users; every batch is sent twice (a retry after a lost
    answer) and some singles three times, all with client event ids."""
    data, _ = synthetic
    items = [str(i) for i in data.dataset.item_ids[:50]]
    server = start_server(model_dir, db_url, tmp_path / "log")

    def client_run(c: int) -> tuple[int, set[tuple[str, str]]]:
        accepted, sent = 0, set()
        with server.client() as client:
            for b in range(6):
                batch = [
                    _event(
                        f"cc{(c + j) % 5}",
                        items[(c * 7 + b + j) % 50],
                        1_700_000_000 + b,
                        event_id=f"c{c}-b{b}-{j}",
                    )
                    for j in range(5)
                ]
                for _ in range(2):
                    accepted += client.post_events(batch)["accepted"]
                sent |= {(e["user"], e["event_id"]) for e in batch}
                single = _event(f"cc{c % 5}", items[b], 1_700_000_500 + b, event_id=f"c{c}-s{b}")
                for _ in range(3):
                    accepted += client.post_events(single)["accepted"]
                sent.add((single["user"], single["event_id"]))
        return accepted, sent

    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(client_run, range(8)))
        with server.client() as client:
            profiles = {u: client.interests(f"cc{u}")["events"] for u in range(5)}
    finally:
        server.stop()
    sent = set().union(*(s for _, s in results))
    stored = [(u, e) for u, _, e in _stored(db_url)]
    assert len(stored) == len(set(stored)) == len(sent) == 8 * 6 * 6
    assert set(stored) == sent and sum(a for a, _ in results) == len(sent)
    for u in range(5):  # the live state applied each event once, as the store holds it
        assert profiles[u] == sum(1 for user, _ in stored if user == f"cc{u}")


def test_deleting_a_user_leaves_no_trace(
    synthetic: tuple[SyntheticData, Path], model_dir: Path, tmp_path: Path
) -> None:
    """A training user who also posted events: after DELETE, no table, no live state and no
    file of the model directory names them, and their next answers are cold-start ones."""
    data, _ = synthetic
    served = tmp_path / "model"
    served.mkdir()
    for f in model_dir.iterdir():
        (served / f.name).write_bytes(f.read_bytes())
    user = str(data.dataset.user_ids[3])
    db = tmp_path / "events.db"
    server = start_server(served, f"sqlite:///{db}", tmp_path / "log")
    try:
        with server.client() as client:
            client.post_events(
                [
                    _event(user, str(data.dataset.item_ids[1]), 1_800_000_000),
                    {"user": user, "text": "late night jazz", "event": "search"},
                ]
            )
            assert client.interests(user)["events"] > 1
            erased = client.delete_user(user)
            assert erased["events"] == 2 and erased["training_history"]
            assert erased["model_directory_rewritten"] and erased["live_state"]
            after = client.recommend(user, k=5)
            profile = client.interests(user)
            assert after["source"] == "popular" and profile["events"] == 0
            assert client.delete_user(user)["events"] == 0  # erasing twice is fine
    finally:
        server.stop()
    with sqlite3.connect(db) as connection:
        for (table,) in connection.execute("select name from sqlite_master where type='table'"):
            dump = json.dumps(connection.execute(f"select * from {table}").fetchall())
            assert user not in dump, table
    for f in served.iterdir():
        assert user.encode() not in f.read_bytes(), f
    assert user not in json.loads((served / "ids.json").read_text())["users"]


def test_once_a_key_is_set_every_write_and_per_user_read_needs_it(
    synthetic: tuple[SyntheticData, Path], model_dir: Path, tmp_path: Path
) -> None:
    item = str(synthetic[0].dataset.item_ids[0])
    server = start_server(
        model_dir,
        f"sqlite:///{tmp_path / 'e.db'}",
        tmp_path / "log",
        env={"DRIFTREC_API_KEY": "s3cret-key"},
    )
    guarded = [
        ("POST", "/events", {"json": {"user": "u", "item": item}}),
        ("GET", "/users/u/recommendations", {}),
        ("GET", "/users/u/interests", {}),
        ("GET", "/users/u/timeline", {}),
        ("GET", f"/users/u/recommendations/{item}/why", {}),
        ("PUT", "/items/x1", {"json": {"title": "x"}}),
        ("PUT", "/items", {"json": {"items": [{"item": "x2"}]}}),
        ("GET", "/users?q=u", {}),
        ("DELETE", "/users/u", {}),
        ("POST", "/admin/reload", {"json": {}}),
    ]
    try:
        for method, path, kwargs in guarded:
            for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
                response = httpx.request(method, server.url + path, headers=headers, **kwargs)
                assert response.status_code == 401, (method, path, response.text)
            response = httpx.request(
                method, server.url + path, headers={"X-API-Key": "s3cret-key"}, **kwargs
            )
            assert response.status_code == 200, (method, path, response.text)
        for path in ("/health", "/overview", "/", "/static/dashboard.js"):  # no user data
            assert httpx.get(server.url + path).status_code == 200, path
    finally:
        server.stop()
    assert "s3cret-key" not in server.output()


def test_pseudonymised_ids_never_reach_the_store(
    synthetic: tuple[SyntheticData, Path], model_dir: Path, tmp_path: Path
) -> None:
    item = str(synthetic[0].dataset.item_ids[0])
    db = tmp_path / "e.db"
    server = start_server(
        model_dir,
        f"sqlite:///{db}",
        tmp_path / "log",
        "--secret-env",
        "TEST_SECRET",
        env={"TEST_SECRET": "pepper"},
    )
    try:
        with server.client() as client:
            client.post_events({"user": "alice@example.com", "item": item})
            assert client.interests("alice@example.com")["events"] == 1
            assert client.recommend("alice@example.com")["user"] == "alice@example.com"
            # the store holds pseudonyms: a listing finds a whole id, never lists others
            found = client.users("alice@example.com")
            assert found["pseudonymised"] and found["users"] == [
                {"user": "alice@example.com", "stored": True, "trained": False}
            ]
            assert client.users("alice")["users"] == client.users("")["users"] == []
    finally:
        server.stop()
    with sqlite3.connect(db) as connection:
        users = [u for (u,) in connection.execute('select "user" from events')]
    assert len(users) == 1 and users[0] != "alice@example.com" and len(users[0]) == 32


def test_a_new_model_is_swapped_in_without_stopping(
    synthetic: tuple[SyntheticData, Path], model_dir: Path, tmp_path: Path
) -> None:
    data, home = synthetic
    other = (
        create("als", factors=16)
        .fit(data.dataset)
        .save(tmp_path / "als", info={"dataset": str(home / "data")})
    )
    server = start_server(model_dir, f"sqlite:///{tmp_path / 'e.db'}", tmp_path / "log")
    try:
        with server.client() as client:
            client.post_events(_event("swapper", str(data.dataset.item_ids[2]), 1_700_000_000))
            old = client.recommend("swapper")["model_version"]
            with pytest.raises(ServiceError) as err:
                client.reload(str(tmp_path / "missing"))
            assert err.value.status == 422 and err.value.detail[0]["loc"] == ["body", "model_dir"]
            assert client.recommend("swapper")["model_version"] == old
            swapped = client.reload(str(other))
            assert swapped["previous_version"] == old and swapped["model"] == "als"
            answer = client.recommend("swapper")
            assert answer["model_version"] == swapped["model_version"] != old
            assert client.interests("swapper")["events"] == 1  # live events carried over
    finally:
        server.stop()


def test_a_new_item_is_recommendable_on_the_next_request(
    synthetic: tuple[SyntheticData, Path], tmp_path: Path
) -> None:
    """With a text-reading model (content), PUT /items embeds the new item; a user searching
    for what it is about gets it at once."""
    data, home = synthetic
    content = create("content", progress=False).fit(data.dataset)
    served = content.save(tmp_path / "content", info={"dataset": str(home / "data")})
    server = start_server(served, f"sqlite:///{tmp_path / 'e.db'}", tmp_path / "log")
    try:
        with server.client() as client:
            added = client.put_items(
                [
                    {
                        "item": "brand-new",
                        "title": "Volcano Lava Survival Guide",
                        "text": "All about erupting volcanoes, lava flows and magma chambers.",
                        "categories": ["geology"],
                    }
                ]
            )
            assert added == {
                "added": ["brand-new"],
                "updated": [],
                "recommendable": True,
                "model_version": added["model_version"],
            }
            client.post_events(
                {"user": "geo", "event": "search", "text": "erupting volcanoes and lava"}
            )
            answer = client.recommend("geo", k=5)
            assert answer["source"] == "search" and answer["items"][0]["item"] == "brand-new"
            assert answer["items"][0]["categories"] == ["geology"]
    finally:
        server.stop()
    server = start_server(served, f"sqlite:///{tmp_path / 'e.db'}", tmp_path / "log2")
    try:  # a restart puts the added item back
        with server.client() as client:
            assert client.recommend("geo", k=5)["items"][0]["item"] == "brand-new"
    finally:
        server.stop()


def test_serve_refuses_bad_options_in_one_line(model_dir: Path, tmp_path: Path) -> None:
    assert_input_error(cli("serve", "--model", tmp_path / "nothing"), "config.json")
    assert_input_error(cli("serve", "--model", model_dir, "--max-batch", "0"), "--max-batch")
    assert_input_error(cli("serve", "--model", model_dir, "--calibrate", "-1"), "--calibrate")
    assert_input_error(cli("serve", "--model", model_dir, "--db", "mysql://x/y"), "mysql://x/y")
    assert_input_error(
        cli("serve", "--model", model_dir, "--secret-env", "NOT_SET_ANYWHERE"), "NOT_SET_ANYWHERE"
    )

"""The feedback loop (docs/feedback.md): served lists, impressions and outcomes linked in the
store and counted by hand, the A/B arithmetic, the re-ranking steps, and the real service
(variants, request ids, impressions, clicks, online metrics, demotion, exploration, 4xx)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clitools import assert_input_error, cli, ok
from servers import Server, start_server

from driftrec.client import ServiceError
from driftrec.data.events import Event
from driftrec.data.synthetic import SyntheticConfig, SyntheticData, generate
from driftrec.errors import InputError
from driftrec.evaluation.replay import scratch_tracker
from driftrec.feedback import compare, online_metrics
from driftrec.feedback.variants import Variant, assign, bucket, check_variants, parse_variant
from driftrec.models import create
from driftrec.store import EventStore, Impression, Served, StoredEvent
from driftrec.tracking import Catalog
from driftrec.tracking.exposure import Exposure
from driftrec.tracking.rerank import demote, explore

DCG1 = 1 / np.log2(3)  # the gain of slot 1


def _fill(store: EventStore) -> None:
    """Two served answers and one never served; clicks, a purchase, a dismissal, and two
    outcomes that match no impression."""
    f = store.feedback
    served = [
        Served("r1", "a", "A", "v1", ("i1", "i2", "i3"), 990),
        Served("r2", "b", "B", "v2", ("i1", "i4"), 3990),
    ]
    f.log_served(served)
    f.log_served(served[:1])  # logged twice: kept once
    shown = [
        Impression("r1", "a", "i1", 0, 1000),
        Impression("r1", "a", "i2", 1, 1000),
        Impression("r1", "a", "i3", 2, 1000),
        Impression("r2", "b", "i4", 0, 4000),  # the client showed another order
        Impression("r2", "b", "i1", 1, 4000),
        Impression("r9", "c", "i5", 0, 4100),  # no served list: unlinked
    ]
    assert f.add_impressions(shown) == [True] * 6
    assert f.add_impressions(shown[:1]) == [False]  # a retry is stored once

    def outcome(user: str, item: str, at: int, kind: str, request: str) -> StoredEvent:
        return StoredEvent(user, Event(item, at, kind), request_id=request)

    store.append(
        [
            outcome("a", "i2", 1010, "click", "r1"),
            outcome("a", "i2", 1020, "purchase", "r1"),  # the same impression: counted once
            outcome("a", "i3", 1030, "dismiss", "r1"),
            outcome("b", "i4", 4010, "click", "r2"),
            outcome("b", "i1", 4020, "click", "r2"),
            outcome("a", "i9", 1040, "click", "r1"),  # never shown: unlinked, variant A
            outcome("d", "i1", 4200, "click", "r7"),  # an unknown request: unlinked
            StoredEvent("a", Event("i1", 1050, "view")),  # no request: not an outcome
        ]
    )


def test_online_metrics_by_hand(store: EventStore) -> None:
    _fill(store)
    f = store.feedback
    shown, orphans = f.impression_rows(), f.unlinked_outcomes()
    by_variant = online_metrics(shown, orphans, "variant")
    assert (by_variant["impressions"], by_variant["unlinked_impressions"]) == (6, 1)
    assert by_variant["unlinked_outcomes"] == 2
    groups = {g["group"]: g for g in by_variant["groups"]}
    a, b, lost = groups["A"], groups["B"], groups["(unlinked)"]
    assert (a["impressions"], a["requests"], a["users"], a["clicks"]) == (3, 1, 1, 1)
    assert a["ctr"] == pytest.approx(1 / 3) and a["conversion_rate"] == pytest.approx(1 / 3)
    assert (a["dismissals"], a["no_outcome"], a["unlinked_outcomes"]) == (1, 1, 1)
    assert a["ndcg_on_clicks"] == pytest.approx(DCG1)  # one click at slot 1, ideal slot 0
    assert (b["impressions"], b["clicks"], b["ctr"], b["conversions"]) == (2, 2, 1.0, 0)
    assert b["ndcg_on_clicks"] == pytest.approx(1.0)  # slots 0 and 1: the ideal
    assert (lost["impressions"], lost["clicks"], lost["unlinked_outcomes"]) == (1, 0, 1)
    assert lost["ndcg_on_clicks"] is None
    by_slot = {g["group"]: g for g in online_metrics(shown, orphans, "slot")["groups"]}
    assert [by_slot[s]["impressions"] for s in ("0", "1", "2")] == [3, 2, 1]
    assert [by_slot[s]["clicks"] for s in ("0", "1", "2")] == [1, 2, 0]
    assert by_slot["(unlinked)"]["unlinked_outcomes"] == 2  # an outcome without a slot
    windows = online_metrics(shown, orphans, "all", window=3600)["groups"]
    assert [(g["window_start"], g["impressions"], g["clicks"]) for g in windows] == [
        (0, 3, 1),
        (3600, 3, 2),
    ]
    # every impression and outcome lands in one count: none dropped
    assert sum(g["impressions"] for g in by_variant["groups"]) == len(shown) == 6
    later = online_metrics(f.impression_rows(since=3600), f.unlinked_outcomes(since=3600))
    assert (later["impressions"], later["unlinked_outcomes"]) == (3, 1)


def test_ignored_items_exposure_and_erasure(store: EventStore) -> None:
    _fill(store)
    f = store.feedback
    assert f.ignored("a") == {"i1": 1, "i3": 1}  # i2 clicked; a dismissal is ignored
    assert f.exposure() == {"i1": 2, "i2": 1, "i3": 1, "i4": 1, "i5": 1}
    exposure = Exposure(f)
    slots = exposure.slots(np.array(["i1", "i5", "new"], dtype=object))
    assert exposure.counts(slots).tolist() == [2, 1, 0]
    assert exposure.ignored("a") == {"i1": 1, "i3": 1}
    exposure.record([Impression("r3", "a", "i1", 0, 2000)], [True])
    assert exposure.ignored("a")["i1"] == 2 and exposure.counts(slots).tolist() == [3, 1, 0]
    exposure.engaged([StoredEvent("a", Event("i1", 2010, "click"), request_id="r3")])
    assert "i1" not in exposure.ignored("a")
    store.delete_user("a")
    assert f.ignored("a") == {} and set(f.impression_rows()["user"]) == {"b", "c"}
    assert "a" not in set(pd.DataFrame(f.unlinked_outcomes())["user"])


def test_a_store_from_before_request_ids_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute(
            'CREATE TABLE events (id INTEGER PRIMARY KEY, "user" VARCHAR NOT NULL, item VARCHAR,'
            " timestamp BIGINT NOT NULL, event VARCHAR NOT NULL, value FLOAT NOT NULL,"
            " text TEXT, event_id VARCHAR)"
        )
        db.execute("INSERT INTO events VALUES (1, 'u', 'i', 5, 'view', 1.0, NULL, NULL)")
    store = EventStore(f"sqlite:///{path}")
    store.append([StoredEvent("u", Event("j", 6, "click"), request_id="r")])
    assert [e.item for e in store.events_of("u")] == ["i", "j"]
    assert store.feedback.unlinked_outcomes()["request_id"].tolist() == ["r"]
    store.close()


def _arms(rng: np.random.Generator, users: int, ctr: dict[str, float]) -> pd.DataFrame:
    """Impressions of ``users`` users per arm, 20 each, every user with their own click rate
    (a beta around the arm's CTR: users differ, as real ones do)."""
    rows = []
    for arm, mean in ctr.items():
        for u in range(users):
            p = rng.beta(2 * mean / (1 - mean), 2)
            clicks = rng.random(20) < p
            rows += [{"variant": arm, "user": f"{arm}{u}", "clicked": c} for c in clicks]
    return pd.DataFrame(rows)


def test_the_bootstrap_over_users_holds_its_level_and_finds_a_real_difference() -> None:
    rng = np.random.default_rng(0)
    alarms = sum(
        compare(_arms(rng, 100, {"a": 0.1, "b": 0.1}), "a", "b", seed=s).p_value < 0.05
        for s in range(20)
    )
    assert alarms <= 3  # A/A: about 1 in 20 at alpha 0.05
    found = compare(_arms(rng, 150, {"a": 0.1, "b": 0.2}), "a", "b")
    assert found.verdict == "better" and found.low > 0 and found.p_value < 0.05
    assert found.treatment_ctr > found.control_ctr
    small = compare(_arms(rng, 10, {"a": 0.1, "b": 0.5}), "a", "b")
    assert small.verdict == "too small to decide" and small.p_value is None


def test_variants_split_users_stably_by_their_shares() -> None:
    arms = [Variant("a", Path("m1"), 0.3), Variant("b", Path("m2"), 0.7)]
    check_variants(arms)
    chosen = [assign(f"user{n}", arms) for n in range(10_000)]
    assert np.mean(chosen) == pytest.approx(0.7, abs=0.02)
    assert chosen == [assign(f"user{n}", arms) for n in range(10_000)]  # stable
    assert bucket("alice", "s1") != bucket("alice", "s2") or bucket("bob", "s1") != bucket(
        "bob", "s2"
    )  # a new salt reshuffles
    assert parse_variant("b=runs/x:y:0.5") == Variant("b", Path("runs/x:y"), 0.5)
    for bad, says in (
        ("b=runs/x", "NAME=MODEL_DIR:SHARE"),
        ("b=runs/x:lots", "not a number"),
        ("b=runs/x:1.5", r"in \(0, 1\]"),
    ):
        with pytest.raises(InputError, match=says):
            parse_variant(bad)
    with pytest.raises(InputError, match="add up to 1"):
        check_variants([Variant("a", Path("m"), 0.5), Variant("b", Path("m"), 0.4)])
    with pytest.raises(InputError, match="must differ"):
        check_variants([Variant("a", Path("m"), 0.5), Variant("a", Path("m"), 0.5)])


def test_demotion_by_hand_and_exploration_slots() -> None:
    items, scores = np.array([7, 8, 9]), np.array([3.0, 2.0, 1.0])
    # item 7 ignored once: 3 - 0.5 * (3 - 1) = 2.0, ties with 8 and keeps its place (stable);
    # twice: 3 - 0.75 * 2 = 1.5, below 8
    assert demote(items, scores, np.array([1, 0, 0]), 1.0)[0].tolist() == [7, 8, 9]
    moved, kept = demote(items, scores, np.array([2, 0, 0]), 1.0)
    assert moved.tolist() == [8, 7, 9] and kept.tolist() == [2.0, 3.0, 1.0]
    rng = np.random.default_rng(0)
    listed = np.arange(10)
    for _ in range(50):
        out, slots = explore(listed, np.array([100, 101]), np.array([1.0, 0.0]), 0.1, rng)
        assert len(slots) == 1 and out[slots[0]] == 100  # weight 0 is never drawn
        rest = np.delete(out, slots)
        assert rest.tolist() == list(range(9))  # the rest keep their order; the last gave way
    none, slots = explore(listed, np.array([], np.int64), np.array([]), 0.5, rng)
    assert none.tolist() == listed.tolist() and len(slots) == 0


def test_a_dismissed_item_is_never_shown_again_nor_read_as_interest(tmp_path: Path) -> None:
    data = generate(SyntheticConfig(n_users=30, n_items=80, seed=2))
    model = create("als", factors=8, seed=0).fit(data.dataset)
    tracker = scratch_tracker(model, Catalog.from_dataset(data.dataset), tmp_path / "s.db", 30)
    user = str(data.dataset.user_ids[0])
    try:
        before = tracker.recommend(user, 10)
        events = tracker.interests(user)["events"]
        top = before.items[0]
        tracker.ingest([StoredEvent(user, Event(top, 2_000_000_000, "dismiss"), request_id="r")])
        assert top not in tracker.recommend(user, 10).items
        assert top not in tracker.recommend(user, 10, exclude_seen=False).items
        assert tracker.interests(user)["events"] == events  # not an interest event
    finally:
        tracker.close()
        tracker.store.close()


# ---------------------------------------------------------------- the real service


@pytest.fixture(scope="module")
def served_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticData, Path]:
    home = tmp_path_factory.mktemp("feedback")
    data = generate(SyntheticConfig(n_users=60, n_items=200, seed=3))
    data.save(home / "data")
    model = create("sasrec", epochs=5, progress=False).fit(data.dataset)
    return data, model.save(home / "sasrec", info={"dataset": str(home / "data")})


@pytest.fixture
def server(served_model: tuple[SyntheticData, Path], tmp_path: Path) -> Iterator[Server]:
    _, model_dir = served_model
    served = start_server(
        None,
        f"sqlite:///{tmp_path / 'events.db'}",
        tmp_path / "log",
        "--variant", f"a={model_dir}:0.5", "--variant", f"b={model_dir}:0.5",
        "--demote-ignored", "1", "--explore", "0.1",
    )  # fmt: skip
    yield served
    served.stop()


def test_feedback_links_impressions_clicks_requests_and_variants(
    served_model: tuple[SyntheticData, Path], server: Server
) -> None:
    data, _ = served_model
    users = [str(u) for u in data.dataset.user_ids[:30]]
    with server.client() as client:
        health = client.health()
        assert [(v["name"], v["share"]) for v in health["variants"]] == [("a", 0.5), ("b", 0.5)]
        expected: dict[str, dict[str, int]] = {"a": {}, "b": {}}
        for n, user in enumerate(users):
            answer = client.recommend(user, k=10)
            assert len(answer["request_id"]) == 32 and answer["variant"] in ("a", "b")
            assert client.recommend(user, k=10)["variant"] == answer["variant"]  # stable
            explored = [i for i in answer["items"] if i["exploration"]]
            assert len(explored) == 1 and explored[0]["score"] is None
            shown = [i["item"] for i in answer["items"]]
            assert client.post_impressions(answer["request_id"], user, shown) == {
                "accepted": 10,
                "duplicates": 0,
            }
            clicked = shown[n % 3]  # slots 0, 1, 2 in turn
            posted = client.post_events(
                {
                    "user": user,
                    "item": clicked,
                    "event": "click",
                    "request_id": answer["request_id"],
                }
            )
            assert posted["accepted"] == 1
            counts = expected[answer["variant"]]
            counts["impressions"] = counts.get("impressions", 0) + 10
            counts["clicks"] = counts.get("clicks", 0) + 1
        assert set(expected) == {"a", "b"} and all(expected.values())  # both arms served
        metrics = client.online_metrics(by="variant")
        groups = {g["group"]: g for g in metrics["groups"]}
        for arm in ("a", "b"):
            assert groups[arm]["impressions"] == expected[arm]["impressions"]
            assert groups[arm]["clicks"] == expected[arm]["clicks"]
            assert groups[arm]["ctr"] == pytest.approx(0.1)
            assert (
                groups[arm]["no_outcome"] == expected[arm]["impressions"] - expected[arm]["clicks"]
            )
        assert metrics["unlinked_impressions"] == 0 and metrics["unlinked_outcomes"] == 0
        (comparison,) = metrics["comparisons"]
        assert comparison["control"] == "a" and comparison["verdict"] == "too small to decide"
        by_slot = {g["group"]: g for g in client.online_metrics(by="slot")["groups"]}
        assert [by_slot[s]["clicks"] for s in ("0", "1", "2")] == [10, 10, 10]


def test_shown_but_ignored_items_sink(
    served_model: tuple[SyntheticData, Path], server: Server
) -> None:
    """The same ten items shown three times and never acted on: each loses 0.875 of the
    candidates' score range (--demote-ignored 1), so others take their places."""
    data, _ = served_model
    user = str(data.dataset.user_ids[40])
    with server.client() as client:
        first = client.recommend(user, k=10)
        model_items = [i["item"] for i in first["items"] if not i["exploration"]]
        for _ in range(3):
            again = client.recommend(user, k=10)  # a new request id each time
            client.post_impressions(again["request_id"], user, model_items)
        after = [i["item"] for i in client.recommend(user, k=10)["items"] if not i["exploration"]]
        assert not set(after) & set(model_items)


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/feedback/impressions", {"request_id": "xyz", "user": "u", "items": ["i"]}, "request_id"),
        ("/feedback/impressions", {"request_id": "0" * 32, "user": "u", "items": []}, "items"),
        ("/feedback/impressions", {"request_id": "0" * 32, "items": ["i"]}, "user"),
        ("/events", {"user": "u", "item": "i", "request_id": "Z" * 32}, "request_id"),
    ],
)
def test_malformed_feedback_is_a_4xx_naming_the_field(
    server: Server, path: str, body: dict[str, object], loc: str
) -> None:
    with server.client() as client:
        response = client.http.post(path, json=body)
    assert response.status_code == 422
    assert any(loc in d["loc"] for d in response.json()["detail"])


def test_feedback_queries_that_cannot_be_answered_are_named(server: Server) -> None:
    with server.client() as client:
        for params, loc in (({"window": "soon"}, "window"), ({"by": "colour"}, "by")):
            with pytest.raises(ServiceError) as err:
                client.online_metrics(**params)
            assert err.value.status == 422 and err.value.detail[0]["loc"] == ["query", loc]
        answer = client.recommend("someone", k=3)
        shown = [i["item"] for i in answer["items"]]
        with pytest.raises(ServiceError) as err:
            client.post_impressions(answer["request_id"], "someone", [shown[0], shown[0]])
        assert err.value.detail[0]["loc"] == ["body", "items", 1]
        with pytest.raises(ServiceError) as err:
            client.reload(variant="c")
        assert err.value.detail[0]["loc"] == ["body", "variant"]


def test_simulate_drives_real_services_and_agrees_with_their_online_metrics(
    tmp_path: Path,
) -> None:
    """`driftrec simulate` end to end on a small population: popularity live and frozen,
    with exploration on the live one, over HTTP; the service's own CTR per impression is the
    simulator's clicks over the slots it showed, and new items are counted."""
    out = tmp_path / "sim.json"
    ok(
        cli(
            "simulate",
            "-m",
            "pop",
            "--users",
            "30",
            "--days",
            "2",
            "--frozen",
            "--explore",
            "0.2",
            "--new-items",
            "0.05",
            "--home",
            tmp_path / "home",
            "--json",
            out,
        )
    )
    result = json.loads(out.read_text())
    runs = {r["run"]: r for r in result["runs"]}
    assert set(runs) == {"pop · live · explore 0.2", "pop · frozen"}
    for run in runs.values():
        sessions = run["sessions"]
        assert sessions == result["users"] * 2 * 4
        assert run["service_impressions"] == sessions * result["k"]
        assert run["service_ctr_per_impression"] == pytest.approx(run["ctr"] / result["k"])
        assert run["service_unlinked_outcomes"] == 0
        assert len(run["daily"]) == 2 and 0 < run["coverage"] <= 1
    explored, frozen = runs["pop · live · explore 0.2"], runs["pop · frozen"]
    assert explored["new_items"]["shown_on_first_day"] > 0  # exploration finds new items
    assert frozen["new_items"]["impressions"] == 0  # popularity alone never shows them
    assert frozen["recovery_reference"] == "its own"  # no live run of pop without exploration
    bad = cli("simulate", "-m", "pop", "--explore", "2", "--home", tmp_path / "h2")
    assert_input_error(bad, "--explore")

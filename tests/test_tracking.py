"""The tracking layer in-process: profiles and drift score (hand-worked), topics, live state
consistency with the store, erasing training users from models, explanations."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from tinydata import clustered

from driftrec.data.events import Event
from driftrec.models import ALS, create
from driftrec.store import EventStore, StoredEvent
from driftrec.tracking import Catalog, Engine, Topics, Tracker
from driftrec.tracking.explain import contributions
from driftrec.tracking.live import LiveUsers
from driftrec.tracking.profiles import decay_weights, drift_score, interest_shares, js_divergence
from driftrec.tracking.rerank import calibrate
from driftrec.tracking.tracker import finish_model_rewrite, load_served


def test_decay_weights_halve_every_half_life_counting_back_from_the_newest() -> None:
    assert decay_weights(3, 1.0).tolist() == [0.25, 0.5, 1.0]
    assert decay_weights(0, 5.0).shape == (0,)


def test_drift_score_is_the_jensen_shannon_divergence_in_bits() -> None:
    assert drift_score(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    assert drift_score(np.array([0.3, 0.7]), np.array([0.3, 0.7])) == pytest.approx(0.0)
    # by hand: M = (0.75, 0.25); KL(P||M) = log2(4/3); KL(Q||M) = 0.5 log2(2/3) + 0.5 log2 2
    expected = (np.log2(4 / 3) + 0.5 * np.log2(2 / 3) + 0.5) / 2
    assert drift_score(np.array([1.0, 0.0]), np.array([0.5, 0.5])) == pytest.approx(expected)
    assert drift_score(np.zeros(2), np.array([1.0, 0.0])) == 0.0  # no evidence, no drift


def test_interest_shares_split_an_items_weight_over_its_categories() -> None:
    topics = Topics.from_categories([("a",), ("a", "b"), ()])
    assert topics.names == ["a", "b"]
    # events oldest first: item 0, then item 1 (weight 1), half-life 1: item 0 weighs 0.5
    shares = interest_shares(topics, np.array([0, 1]), half_life=1.0)
    assert shares == pytest.approx([(0.5 + 0.5) / 1.5, 0.5 / 1.5])
    assert interest_shares(topics, np.array([2]), 1.0).tolist() == [0.0, 0.0]
    grown = topics.add_items([("c",)])
    assert grown.names == ["a", "b", "c"] and grown.of_items(np.array([3])) == [["c"]]


def test_clustered_topics_find_the_groups_and_name_them_from_titles() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 8)) * 5
    vectors = np.vstack(
        [centres[0] + rng.normal(size=(30, 8)), centres[1] + rng.normal(size=(30, 8))]
    )
    titles = [f"Jazz piano record {i}" for i in range(30)] + [
        f"Garden soil guide {i}" for i in range(30)
    ]
    topics = Topics.from_vectors(vectors.astype(np.float32), titles)
    assert topics.source == "clusters" and len(set(topics.names)) == len(topics.names)
    jazz = {t for ts in topics.of_items(np.arange(30)) for t in ts}
    garden = {t for ts in topics.of_items(np.arange(30, 60)) for t in ts}
    assert not jazz & garden
    assert all("jazz" in t for t in jazz) and all("garden" in t for t in garden)


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    return EventStore(f"sqlite:///{tmp_path / 'e.db'}")


def test_live_state_holds_history_then_stored_events_and_never_applies_one_twice(
    store: EventStore,
) -> None:
    live = LiveUsers(store, lambda user: [Event("h", 1)] if user == "known" else [], capacity=2)
    store.append([StoredEvent("known", Event("s", 5))])  # stored before the user is loaded
    assert [e.item for e in live.get("known").events] == ["h", "s"]
    sent = StoredEvent("known", Event("x", 3), "retry-me")
    assert live.append([sent, sent]) == [True, False]
    assert live.append([sent]) == [False]
    assert [e.item for e in live.get("known").events] == ["h", "x", "s"]  # in time order
    live.get("a"), live.get("b")  # capacity 2: "known" is evicted, then rebuilt from the store
    assert "known" not in live
    assert [e.item for e in live.get("known").events] == ["h", "x", "s"]


def test_cached_values_are_recomputed_once_an_event_arrives(store: EventStore) -> None:
    live = LiveUsers(store, lambda user: [])
    state = live.get("u")
    calls = []
    count = lambda events: calls.append(1) or len(events)  # noqa: E731
    assert state.cached("n", count) == 0 and state.cached("n", count) == 0 and len(calls) == 1
    live.append([StoredEvent("u", Event("i", 1))])
    assert state.cached("n", count) == 1 and len(calls) == 2


def test_a_running_value_is_advanced_by_events_added_in_time_order(store: EventStore) -> None:
    live = LiveUsers(store, lambda user: [])
    calls: list[str] = []

    def start(events: list[Event]) -> list[str]:
        calls.append("start")
        return [e.item for e in events]

    def advance(value: list[str], added: list[Event]) -> list[str]:
        calls.append("advance")
        return value + [e.item for e in added]

    def running() -> list[str]:
        return live.get("u").running("items", start, advance)

    assert running() == [] and running() == []
    live.append([StoredEvent("u", Event("a", 10))])
    live.append([StoredEvent("u", Event("b", 20)), StoredEvent("u", Event("c", 20))])
    assert running() == ["a", "b", "c"]
    live.append([StoredEvent("u", Event("d", 15))])  # out of time order: started over
    assert running() == ["a", "d", "b", "c"]
    assert calls == ["start", "advance", "start"]


def test_a_running_value_may_keep_what_the_window_dropped(store: EventStore) -> None:
    live = LiveUsers(store, lambda user: [], window=3)
    gone: list[list[str]] = []

    def slide(value: list[str], dropped: list[Event]) -> list[str]:
        gone.append([e.item for e in dropped])
        return value

    def running(sliding: bool) -> list[str]:
        return live.get("u").running(
            ("items", sliding),
            lambda events: [e.item for e in events],
            lambda value, added: value + [e.item for e in added],
            slide if sliding else None,
        )

    live.append([StoredEvent("u", Event(i, n)) for n, i in enumerate("abc")])
    assert running(True) == running(False) == ["a", "b", "c"]
    live.append([StoredEvent("u", Event("d", 3)), StoredEvent("u", Event("e", 4))])
    assert [e.item for e in live.get("u").events] == ["c", "d", "e"]
    assert running(True) == ["a", "b", "c", "d", "e"] and gone == [["a", "b"]]
    assert running(False) == ["c", "d", "e"]  # without `slide`: started over on the window


def test_a_running_query_vector_answers_as_recomputing_it_would(store: EventStore) -> None:
    model = ALS(factors=8, iterations=5).fit(clustered())
    tracker = Tracker(Engine.build(model, "v1", Catalog()), store, Catalog())
    sent: list[Event] = []
    for n, item in enumerate(["1", "2", "25", "3", "27", "28", "2"]):
        sent.append(Event(item, 100 + n))
        tracker.ingest([StoredEvent("new", sent[-1])])
        answer = tracker.recommend("new", k=5)
        fresh = model.recommend(events=[sent], k=5)
        assert answer.items == fresh.item_ids[0].tolist()
        np.testing.assert_allclose(answer.scores, fresh.scores[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["als", "bpr", "itemknn"])  # running, batched, exact
def test_answers_before_each_event_of_a_batch_are_those_served_one_event_at_a_time(
    tmp_path: Path, name: str
) -> None:
    model = create(name).fit(clustered())
    batch = [
        StoredEvent(user, Event(item, 100 + n))
        for n, (user, item) in enumerate(
            [("u01", "25"), ("new", "3"), ("u01", "27"), ("new", "28"), ("u01", "2"), ("x", "5")]
        )
    ]
    together = Tracker(
        Engine.build(model, "v1", Catalog()), EventStore(f"sqlite:///{tmp_path}/a.db"), Catalog()
    )
    answers = together.recommend_before(batch, k=5)
    alone = Tracker(
        Engine.build(model, "v1", Catalog()), EventStore(f"sqlite:///{tmp_path}/b.db"), Catalog()
    )
    for sent, answer in zip(batch, answers, strict=True):
        expected = alone.recommend(sent.user, k=5)
        assert (answer.items, answer.source) == (expected.items, expected.source)
        np.testing.assert_allclose(answer.scores, expected.scores, rtol=1e-4, atol=1e-5)
        alone.ingest([sent])
    assert together.store.count() == 0  # asking stores nothing


def test_forgetting_a_training_user_removes_them_and_changes_no_one_else(tmp_path: Path) -> None:
    data = clustered()
    model = ALS(factors=8, iterations=5).fit(data)
    before = model.recommend(["u01", "u20"], k=5).item_ids
    assert model.forget_users(["u03", "nobody"]) == ["u03"]
    assert "u03" not in model.user_ids_ and len(model.user_factors_) == 29
    assert len(model.history_) == 29 and model.history_events("u03") == []
    assert np.array_equal(model.recommend(["u01", "u20"], k=5).item_ids, before)
    model.save(tmp_path / "m")
    assert b"u03" not in (tmp_path / "m" / "ids.json").read_bytes()
    assert create("als").load(tmp_path / "m").recommend(["u20"], k=5).item_ids.tolist() == [
        before[1].tolist()
    ]


def test_a_model_saved_before_an_erasure_loads_without_the_erased_user(
    store: EventStore, tmp_path: Path
) -> None:
    """A replica that missed the change (it was down) still forgets the user: the store's
    erasure log names them, by digest, since the model was saved; erasures before it, and a
    model saved after, leave it whole."""
    model = ALS(factors=8, iterations=5).fit(clustered())
    model.save(tmp_path / "m")
    old = time.time() - 3600
    os.utime(tmp_path / "m" / "state.safetensors", (old, old))
    store.delete_user("u03")  # erased after the model was saved
    assert "u03" not in load_served(tmp_path / "m", store).user_ids_
    assert "u04" in load_served(tmp_path / "m", store).user_ids_
    model.save(tmp_path / "m")  # a model saved after the erasure keeps whom it learned
    later = time.time() + 60  # file times lag the clock by a tick: no race with the erasure
    os.utime(tmp_path / "m" / "state.safetensors", (later, later))
    assert "u03" in load_served(tmp_path / "m", store).user_ids_


def test_leave_one_out_contributions_are_score_differences(store: EventStore) -> None:
    data = clustered()
    model = ALS(factors=8, iterations=5).fit(data)
    events = [Event("1", 1), Event("2", 2), Event("25", 3)]
    targets = model.item_indices(["3", "30"])
    positions, lift = contributions(model, events, targets)
    full = model.score(model.query_histories(events=[events]))[0, targets]
    without_last = model.score(model.query_histories(events=[events[:2]]))[0, targets]
    assert positions.tolist() == [0, 1, 2]
    assert lift[2] == pytest.approx(full - without_last, abs=1e-5)
    assert lift[2, 1] > lift[2, 0]  # item "25" (group B) raises "30" (B) more than "3" (A)


def test_diversified_answers_spread_over_more_groups(store: EventStore) -> None:
    data = clustered()
    model = ALS(factors=8, iterations=10).fit(data)
    engine = Engine.build(model, "v1", Catalog())
    tracker = Tracker(engine, store, Catalog())
    tracker.ingest([StoredEvent("mixed", Event(i, n)) for n, i in enumerate(["1", "2", "3", "21"])])
    plain = tracker.recommend("mixed", k=6)
    varied = tracker.recommend("mixed", k=6, diversify=0.9)
    group = lambda items: {int(i) >= 20 for i in items}  # noqa: E731
    assert plain.source == varied.source == "model" and len(varied.items) == 6
    assert group(varied.items) == {True, False}
    assert not {"1", "2", "3", "21"} & set(varied.items)  # seen items stay out


def test_an_interrupted_model_rewrite_is_finished_or_discarded(tmp_path: Path) -> None:
    model = ALS(factors=8, iterations=5).fit(clustered())
    directory = model.save(tmp_path / "m")
    smaller = ALS.load(directory)
    smaller.forget_users(["u03"])
    scratch = tmp_path / ".m.rewrite"
    smaller.save(scratch)  # written whole but not yet marked complete: discarded
    finish_model_rewrite(directory)
    assert not scratch.exists() and "u03" in ALS.load(directory).user_ids_
    smaller.save(scratch)
    (scratch / "COMPLETE").touch()
    os.replace(scratch / "state.safetensors", directory / "state.safetensors")  # crash here
    finish_model_rewrite(directory)
    assert not scratch.exists() and "u03" not in ALS.load(directory).user_ids_


def test_calibration_trades_score_for_the_target_topic_mix_by_hand() -> None:
    membership = np.array([[1.0, 0], [1, 0], [1, 0], [0, 1], [0, 1]])  # items 0-2: A, 3-4: B
    items, scores = np.arange(5), np.array([1.0, 0.9, 0.8, 0.5, 0.4])
    half = np.array([0.5, 0.5])
    # the first pick: one item is all A or all B, equally far (JS 0.311) from half and half,
    # so the best score goes first; then item 1 (relevance 0.833, leaves the list all A) against
    # item 3 (relevance 0.167, makes it half and half):
    # weight 0.3: 0.7 * 0.833 - 0.3 * 0.311 = 0.49 > 0.7 * 0.167 = 0.117: item 1
    # weight 0.9: 0.1 * 0.833 - 0.9 * 0.311 = -0.2 < 0.1 * 0.167 = 0.017: item 3
    assert calibrate(membership, items, scores, 2, 0.0, half)[0].tolist() == [0, 1]
    assert calibrate(membership, items, scores, 2, 0.3, half)[0].tolist() == [0, 1]
    picked, kept = calibrate(membership, items, scores, 2, 0.9, half)
    assert picked.tolist() == [0, 3] and kept.tolist() == [1.0, 0.5]  # the model's scores
    assert calibrate(membership, items, scores, 2, 0.9, np.zeros(2))[0].tolist() == [0, 1]


def test_calibrated_answers_follow_the_short_term_topic_mix(store: EventStore) -> None:
    model = ALS(factors=8, iterations=10).fit(clustered())
    events = [StoredEvent("mixed", Event(i, n)) for n, i in enumerate(["1", "2", "21", "22"])]
    answers = {}
    for weight in (0.0, 0.9):
        engine = Engine.build(model, "v1", Catalog())
        tracker = Tracker(engine, store, Catalog(), calibrate=weight)
        if weight == 0.0:
            tracker.ingest(events)
        answers[weight] = tracker.recommend("mixed", k=6)
    topics = engine.topics
    assert topics is not None
    target = interest_shares(topics, model.item_indices(["1", "2", "21", "22"]), 5.0)

    def distance(items: list[str]) -> float:
        mix = topics.membership[model.item_indices(items)].toarray().sum(axis=0)
        return float(js_divergence(target, mix / mix.sum()))

    assert distance(answers[0.9].items) < distance(answers[0.0].items)
    assert not {"1", "2", "21", "22"} & set(answers[0.9].items)


def test_once_a_shift_is_detected_calibrated_answers_let_go_of_the_old_interest(
    store: EventStore,
) -> None:
    model = ALS(factors=8, iterations=10).fit(clustered())
    # items 0-14 of group A three times (15-19 stay unseen), then four of group B
    history = [str(i % 15) for i in range(45)] + ["20", "21", "22", "23"]
    events = [StoredEvent("mover", Event(i, n)) for n, i in enumerate(history)]
    engine = Engine.build(model, "v1", Catalog())
    tracker = Tracker(engine, store, Catalog(), calibrate=0.9)
    tracker.ingest(events)
    drift = tracker.interests("mover")["drift"]
    assert drift["shift_detected"] and drift["shifts"] == [47]  # at the third B event
    assert drift["events_since_shift"] == 1
    calibrated = tracker.recommend("mover", k=5).items
    assert all(int(i) >= 20 for i in calibrated)  # only the new interest's group
    plain = Tracker(engine, store, Catalog()).recommend("mover", k=5).items
    assert any(int(i) < 20 for i in plain)  # the model alone still leans on the old one


def test_the_detector_keeps_its_place_when_the_window_drops_old_events(tmp_path: Path) -> None:
    model = ALS(factors=8, iterations=10).fit(clustered())
    history = [str(i % 15) for i in range(45)] + ["20", "21", "22", "23"]
    events = [StoredEvent("mover", Event(i, n)) for n, i in enumerate(history)]
    store = EventStore(f"sqlite:///{tmp_path}/w.db")
    tracker = Tracker(Engine.build(model, "v1", Catalog()), store, Catalog(), window=48)
    tracker.ingest(events[:47])
    assert tracker.interests("mover")["drift"]["shifts"] == []  # the detector starts here
    tracker.ingest(events[47:])  # 49 events: the window drops the first
    drift = tracker.interests("mover")["drift"]
    assert drift["shifts"] == [47] and drift["events_since_shift"] == 1
    assert tracker.interests("mover")["events"] == 48
    track = tracker.live.get("mover").derived[("drift", tracker.engine.serial)][1]
    assert track.state.events == 49 and track.dropped == 1  # advanced, not started over

"""Streaming replay: the same answers as asking the tracker before each event one at a time,
hand-worked metrics and windows, the refit policy, the command line and ml-100k end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clitools import assert_input_error, cli, flat, ok
from tinydata import clustered

from driftrec.data.dataset import Dataset
from driftrec.data.events import Event
from driftrec.data.loaders import load_dataset
from driftrec.errors import InputError
from driftrec.evaluation.replay import (
    ReplayPolicy,
    ReplayResult,
    replay,
    replay_split,
    time_order,
)
from driftrec.models import ALS, create
from driftrec.store import EventStore, StoredEvent
from driftrec.tracking import Catalog, Engine, Tracker

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def interleaved() -> Dataset:
    """The clustered users' events spread over time so that users interleave, plus a search."""
    data = clustered()
    ev = data.events.copy()
    rng = np.random.default_rng(3)
    ev["timestamp"] = ev.groupby("user").cumcount() * 100 + rng.integers(0, 90, len(ev))
    frame = pd.DataFrame(
        {
            "user": data.user_ids[ev["user"]],
            "item": data.item_ids[ev["item"]].astype(object),
            "timestamp": ev["timestamp"],
            "text": None,
        }
    )
    search = {"user": "u00", "item": None, "timestamp": 1_050, "text": "group b things"}
    return Dataset.from_frames(pd.concat([frame, pd.DataFrame([search])], ignore_index=True))


def test_replay_answers_as_the_tracker_asked_before_each_event_one_at_a_time(
    tmp_path: Path,
) -> None:
    data = interleaved()
    train, start = replay_split(data, 0.3)
    model = ALS(factors=8, iterations=5).fit(train)
    result = replay(model, data, start, k=5, progress=False)
    stream = time_order(data).iloc[start:]
    assert (stream["item"] < 0).sum() == result.text_events == 1  # the search: ingested only
    assert len(result.ranks) == len(stream) - 1 and (np.diff(result.timestamps) >= 0).all()
    tracker = Tracker(
        Engine.build(model, "v", Catalog()), EventStore(f"sqlite:///{tmp_path}/e.db"), Catalog()
    )
    ranks = []
    for user, item, t in zip(stream["user"], stream["item"], stream["timestamp"], strict=True):
        user_id = str(data.user_ids[user])
        if item < 0:
            tracker.ingest([StoredEvent(user_id, Event(None, int(t), text="group b things"))])
            continue
        item_id = str(data.item_ids[item])
        answer = tracker.recommend(user_id, k=5)
        ranks.append(answer.items.index(item_id) if item_id in answer.items else -1)
        tracker.ingest([StoredEvent(user_id, Event(item_id, int(t)))])
    assert result.ranks.tolist() == ranks
    hits = result.ranks >= 0
    served = result.recommended[hits, result.ranks[hits]]
    targets = stream["item"].to_numpy()[stream["item"].to_numpy() >= 0][hits]
    assert (served == targets).all() and result.recommended.shape == (len(ranks), 5)
    assert (
        data.events["item"].to_numpy()[result.rows] == stream["item"][stream["item"] >= 0]
    ).all()
    assert 0 < (result.ranks >= 0).mean() < 1


def test_the_split_trains_on_the_events_before_the_replay() -> None:
    data = interleaved()
    train, start = replay_split(data, 0.25)
    stream = time_order(data)
    assert start == 361 - 90 and train.n_events == start
    assert train.events["timestamp"].max() <= stream["timestamp"].iloc[start]
    assert train._is_time_ordered()
    with pytest.raises(InputError, match="fraction"):
        replay_split(data, 1.0)


def test_metrics_and_windows_are_worked_by_hand() -> None:
    result = ReplayResult(
        model="m",
        k=10,
        policy="fixed",
        exclude_seen=True,
        rows=np.arange(5),
        users=np.array(["a", "b", "a", "b", "a"], dtype=object),
        timestamps=np.array([0, 10, 100, 250, 260]),
        ranks=np.array([0, -1, 1, 3, -1]),
        recommended=np.zeros((5, 10), np.int64),
        sources=np.array(["model", "popular", "model", "model", "model"], dtype=object),
        new_items=np.array([False, False, True, False, False]),
        repeats=np.array([False, False, False, False, True]),
        text_events=1,
        refits=[2],
    )
    overall = result.summary()
    assert overall["hr@10"] == pytest.approx(3 / 5)
    assert overall["ndcg@10"] == pytest.approx((1 + 1 / np.log2(3) + 1 / np.log2(5)) / 5)
    assert (overall["cold_answers"], overall["new_items"], overall["repeats"]) == (1, 1, 1)
    by_count = result.windows(count=2)
    assert [w["events"] for w in by_count] == [3, 2]
    assert by_count[0]["hr@10"] == pytest.approx(2 / 3) and by_count[1]["hr@10"] == 0.5
    assert [w["refits"] for w in by_count] == [1, 0]  # the refit came after the second event
    by_time = result.windows(seconds=100)  # [0, 100), [100, 200), [200, 300)
    assert [(w["start"], w["end"], w["events"]) for w in by_time] == [
        (0, 10, 2),
        (100, 100, 1),
        (250, 260, 2),
    ]
    with pytest.raises(InputError, match="positive"):
        result.windows(seconds=0)


def test_a_refit_policy_retrains_on_everything_so_far() -> None:
    data = interleaved()
    train, start = replay_split(data, 0.3)
    seen: list[int] = []

    def refit(so_far: Dataset) -> ALS:
        seen.append(so_far.n_events)
        return ALS(factors=8, iterations=5).fit(so_far)

    model = ALS(factors=8, iterations=5).fit(train)
    result = replay(model, data, start, policy=ReplayPolicy(50, refit), progress=False)
    assert seen and all(n > start for n in seen) and seen == sorted(seen)
    assert len(result.refits) == len(seen) and "every 50" in result.policy
    with pytest.raises(InputError, match="both"):
        ReplayPolicy(refit_every=5)


def test_the_replay_command_prints_tables_and_writes_json(tmp_path: Path) -> None:
    source = tmp_path / "events.csv"
    data = interleaved()
    pd.DataFrame(
        {
            "user": data.user_ids[data.events["user"]],
            "item": data.item_ids[data.events["item"]],
            "timestamp": data.events["timestamp"],
        }
    ).to_csv(source, index=False)
    out = tmp_path / "replay.json"
    text = flat(
        ok(cli("replay", source, "-m", "als", "-m", "pop", "--windows", "3", "--json", out))
    )
    assert "HR@10 / NDCG@10 per window" in text and "fixed" in text
    records = json.loads(out.read_text())
    assert [r["model"] for r in records] == ["als", "pop"]
    assert all(len(r["windows"]) == 3 for r in records)
    assert_input_error(cli("replay", source, "-m", "als", "--window", "7x"), "--window", "7d")
    assert_input_error(cli("replay", source, "-m", "nosuch"), "unknown model")
    assert_input_error(cli("replay", source, "--calibrate", "2"), "--calibrate", "between 0 and 1")
    calibrated = tmp_path / "calibrated.json"
    ok(cli("replay", source, "-m", "als", "--calibrate", "0.9", "--json", calibrated))
    assert json.loads(calibrated.read_text())[0]["calibrate"] == 0.9
    model_dir = tmp_path / "all"
    ok(cli("train", source, "-m", "als", "-o", model_dir))  # learned every event
    assert_input_error(cli("replay", source, "-m", model_dir), "replay's start")


@pytest.mark.realdata
def test_ml100k_replay_end_to_end() -> None:
    path = SHARED / "ml-100k"
    if not path.exists():
        pytest.skip(f"{path} not present")
    data = load_dataset(path)
    train, start = replay_split(data, 0.05)
    result = replay(create("als").fit(train), data, start, progress=False)
    overall = result.summary()
    assert overall["events"] == 5_000 and 0.08 < overall["hr@10"] < 0.3
    assert len(result.windows(seconds=7 * 86_400)) >= 1

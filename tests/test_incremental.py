"""Incremental training (issue 16, part 4): a saved model trained further on the events that
arrived since, with new users and items, from the library and from `driftrec train --from`.

Small synthetic data cut in time: the base model learns from the first 70% of the events with
only the users and items seen by then; the newer events bring new users (the synthetic users who
start late, plus "newcomer") and new items (two popular items renamed after the cut, so they are
consumed where the old ones were, and one with no events at all).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from clitools import assert_input_error, cli, flat, ok

from driftrec import models
from driftrec.data.dataset import Dataset
from driftrec.data.events import Event
from driftrec.data.split import EvalSet, leave_one_out
from driftrec.data.synthetic import SyntheticConfig, generate
from driftrec.errors import InputError
from driftrec.evaluation.evaluator import evaluate
from driftrec.evaluation.experiment import continue_training, train_model
from driftrec.models import create
from driftrec.models.capabilities import ContinuesTraining
from driftrec.store import EventStore
from driftrec.store.events import CatalogItem, StoredEvent

CONFIG = SyntheticConfig(
    n_users=80, n_items=80, n_categories=6, events_per_user=(22, 40), min_segment=5, seed=4
)
NEURAL = {
    "hidden": 16,
    "max_len": 10,
    "dropout": 0.0,
    "epochs": 20,
    "batch_size": 64,
    "learning_rate": 1e-2,
    "warmup_steps": 5,
    "progress": False,
    "threads": 1,
}
ARCH = {"sasrec": {"heads": 2, "layers": 1}, "gru4rec": {}}
RENAMED = {"i0001": "new-1", "i0002": "new-2"}  # after the cut these items are new ones
UNUSED = "new-unused"  # a new catalog item without events


def _frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """The synthetic events (external ids), catalog and users, and its dataset info."""
    dataset = generate(CONFIG).dataset
    events, items, users = dataset.to_frames()
    return events, items, users, dataset.info


@pytest.fixture(scope="module")
def stages() -> dict[str, object]:
    """base (before the 70% cut), newer (raw events after it), grown (base + newer)."""
    events, items, users, info = _frames()
    time = events["timestamp"].to_numpy()
    cut = int(np.sort(time)[int(0.7 * len(time))])
    before, after = events[time < cut], events[time >= cut].copy()
    after["item"] = after["item"].replace(RENAMED)
    newcomer = after[after["user"] == after["user"].iloc[0]].head(6).assign(user="newcomer")
    after = pd.concat([after, newcomer], ignore_index=True)
    renamed = items[items["item"].isin(list(RENAMED))].assign(item=list(RENAMED.values()))
    unused = pd.DataFrame({"item": [UNUSED], "title": ["Unused"], "text": ["Never seen."]})
    new_items = pd.concat([renamed, unused], ignore_index=True)
    seen = items[items["item"].isin(set(before["item"].dropna()))]
    base = Dataset.from_frames(before, seen, name="synthetic", info=info, users=users)
    grown = base.appended(after, new_items)
    return {"base": base, "after": after, "new_items": new_items, "grown": grown, "cut": cut}


@pytest.fixture(scope="module")
def trained(stages) -> dict[str, models.Recommender]:
    """Each model trained on the base data, as `driftrec train` trains it."""
    out = {}
    for name, arch in ARCH.items():
        out[name] = train_model(create(name, **NEURAL, **arch), stages["base"])
    out["als"] = train_model(create("als", factors=8, iterations=5), stages["base"])
    return out


def _copy(model: models.Recommender, tmp_path: Path) -> models.Recommender:
    """A copy through save and load, as `train --from` gets it."""
    return models.load(model.save(tmp_path / model.name))


# ---------------------------------------------------------------------- the data
def test_appended_keeps_indices_and_adds_the_rest(stages) -> None:
    base, grown, after = stages["base"], stages["grown"], stages["after"]
    assert list(grown.user_ids[: base.n_users]) == list(base.user_ids)
    assert list(grown.item_ids[: base.n_items]) == list(base.item_ids)
    assert "newcomer" in set(grown.user_ids[base.n_users :])
    assert set(grown.item_ids[base.n_items :]) == {"new-1", "new-2", UNUSED}
    assert grown.n_events == base.n_events + len(after)
    row = grown.items.iloc[int(grown.item_index([UNUSED])[0])]
    assert (row["title"], row["text"]) == ("Unused", "Never seen.")
    # the same events, by external ids, in a dataset built in one piece
    events, _, _ = grown.to_frames()
    whole, _, _ = Dataset.from_frames(pd.concat([base.to_frames()[0], after])).to_frames()
    assert _rows(events) == _rows(whole)


def _rows(events: pd.DataFrame) -> list[tuple[str, ...]]:
    """Each event as text, in a fixed order: what two datasets must hold alike."""
    key = events[["user", "item", "timestamp", "event", "value"]]
    return sorted(tuple(str(v) for v in row) for row in key.itertuples(index=False))


def test_reindexed_puts_given_ids_first_and_keeps_every_event(stages) -> None:
    grown = stages["grown"]
    users, items = grown.user_ids[::-1][:5], np.array(["i0040", "no-such-item"], dtype=object)
    moved = grown.reindexed(users, items, ("purchase",))
    assert list(moved.user_ids[:5]) == list(users)
    assert list(moved.item_ids[:2]) == list(items)
    assert moved.event_types[0] == "purchase"
    assert moved.n_items == grown.n_items + 1  # the unknown id gets an empty row
    assert moved.histories().lengths[moved.n_items - grown.n_items - 1] >= 0
    for user in grown.user_ids[:10]:
        before = grown.histories(grown.user_index([user]))
        after = moved.histories(moved.user_index([user]))
        assert list(grown.item_ids[before.items]) == list(moved.item_ids[after.items])
        assert list(np.asarray(grown.event_types)[before.events]) == list(
            np.asarray(moved.event_types)[after.events]
        )
    assert moved.items.iloc[0]["title"] == grown.items.iloc[grown.item_index(["i0040"])[0]]["title"]


# ---------------------------------------------------------------------- the models
@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "als"])
def test_new_users_and_items_get_rows_and_are_recommended(name, stages, trained, tmp_path) -> None:
    base, grown = stages["base"], stages["grown"]
    model = _copy(trained[name], tmp_path)
    assert isinstance(model, ContinuesTraining)
    since = model.trained_until_
    assert since == int(base.histories().timestamps.max()) or name != "als"
    continue_training(model, grown)
    assert model.n_items == grown.n_items and len(model.user_ids_) == grown.n_users
    assert model.item_vectors().shape[0] == grown.n_items
    assert model.trained_until_ > since
    new = model.item_indices(["new-1", "new-2"])
    assert (new >= base.n_items).all()
    # the renamed items took the place of two popular ones: they are recommended to the users
    # whose next event they are, far above a random rank
    histories, targets = [], []
    for user in grown.user_ids[: base.n_users]:
        events = model.history_events(str(user))
        for n in range(1, len(events)):
            if events[n].item in ("new-1", "new-2") and events[n].timestamp >= stages["cut"]:
                histories.append(events[:n])
                targets.append(events[n].item)
    scores = model.score(model.query_histories(events=histories))
    target = model.item_indices(targets)
    ranks = (scores > scores[np.arange(len(target)), target][:, None]).sum(axis=1)
    assert len(ranks) >= 10
    assert np.median(ranks) < grown.n_items / 4, np.median(ranks)
    answer = model.recommend(users=["newcomer"], k=5)
    assert answer.lengths[0] == 5
    seen = {e.item for e in model.history_events("newcomer")}
    assert seen and not seen & set(answer.item_ids[0])
    back = models.load(model.save(tmp_path / "continued"))
    probe = model.query_histories(users=["newcomer", str(grown.user_ids[0])])
    np.testing.assert_allclose(back.score(probe), model.score(probe), rtol=1e-5, atol=1e-6)
    assert back.trained_until_ == model.trained_until_


@pytest.mark.parametrize("name", ["sasrec", "gru4rec"])
def test_new_item_rows_are_initialised_as_training_does(name, stages, trained, tmp_path) -> None:
    model = _copy(trained[name], tmp_path)
    old = model.net_.item_emb.ids.weight.detach().clone()
    continue_training(model, stages["grown"], epochs=1)
    table = model.net_.item_emb.ids.weight.detach()
    unused = int(model.item_indices([UNUSED])[0]) + 1  # row 0 is padding
    # never a positive target, so only pushed down a little as a negative: still small and
    # random, like the rows a new network starts with (std 0.02), not zero, not copied
    assert 0.005 < float(table[unused].std()) < 0.1
    assert not torch.equal(table[unused], torch.zeros_like(table[unused]))
    assert table.shape[0] == old.shape[0] + 3


def _new_last_events(grown: Dataset, base: Dataset, since: int) -> EvalSet:
    """Each user's last event (held out of training and validation alike) where it is newer than
    the base model: rows of users and items both models know, so both get the same input."""
    test = leave_one_out(grown).test
    history = grown.histories()
    users = test.histories.users
    last = history.timestamps[history.indptr[users + 1] - 1]
    rows = [
        r
        for r in range(len(test))
        if last[r] > since
        and users[r] < base.n_users
        and (test.histories.row(r) < base.n_items).all()
        and (test.targets(r) < base.n_items).all()
        and not np.isin(test.targets(r), test.histories.row(r)).all()  # a repeat counts for none
    ]
    return test.take(np.asarray(rows))


@pytest.mark.parametrize("name", ["sasrec", "gru4rec"])
def test_continued_model_is_no_worse_on_the_new_events(name) -> None:
    # more users than elsewhere, so that enough have a new last event that is not a repeat
    dataset = generate(dataclasses.replace(CONFIG, n_users=400)).dataset
    events, items, users = dataset.to_frames()
    time = events["timestamp"].to_numpy()
    cut = int(np.sort(time)[int(0.7 * len(time))])
    base = Dataset.from_frames(events[time < cut], items, info=dataset.info, users=users)
    grown = base.appended(events[time >= cut])
    model = train_model(create(name, **NEURAL, **ARCH[name]), base)
    rows = _new_last_events(grown, base, model.trained_until_)
    assert len(rows) >= 30
    before = _ndcg_per_row(model, rows, base)
    continue_training(model, grown)
    after = _ndcg_per_row(model, rows, grown)
    summary = model.training_summary()
    assert summary["best_valid_ndcg@10"] >= summary["start_valid_ndcg@10"]
    # not worse by more than noise: two standard errors of the mean paired difference
    change = after - before
    noise = 2 * change.std(ddof=1) / np.sqrt(len(change))
    assert change.mean() >= -noise, (before.mean(), after.mean(), noise)


def _ndcg_per_row(model: models.Recommender, rows: EvalSet, data: Dataset) -> np.ndarray:
    """(n,) NDCG@10 of each row, by the evaluator."""
    return np.array(
        [
            evaluate(model, rows.take(np.array([r])), data).metrics["NDCG@10"]
            for r in range(len(rows))
        ]
    )


def test_replay_and_epochs_bound_what_is_trained(stages, trained, tmp_path) -> None:
    model = _copy(trained["sasrec"], tmp_path)
    continue_training(model, stages["grown"], epochs=2, patience=5, replay=0.0)
    log = model.log_
    assert len(log.epochs) == 2 and log.start_score is not None
    assert model.training_summary()["epochs_run"] == 2


def test_als_solves_only_the_touched_rows(stages, trained, tmp_path) -> None:
    model = _copy(trained["als"], tmp_path)
    base, grown = stages["base"], stages["grown"]
    before = model.user_factors_.copy()
    since = model.trained_until_
    continue_training(model, grown)
    history = grown.histories()
    touched = np.unique(history.event_rows()[history.timestamps > since])
    untouched = np.setdiff1d(np.arange(base.n_users), touched)
    assert len(untouched) and len(touched)
    np.testing.assert_array_equal(model.user_factors_[untouched], before[untouched])
    assert not np.allclose(model.user_factors_[touched[touched < base.n_users]], 0)
    # a touched user's learned vector is the fold-in of their items, as after a fit
    probe = history.take(touched[:5])
    np.testing.assert_allclose(
        model.user_vectors(probe), model._fold_in(probe), rtol=1e-3, atol=1e-4
    )


def test_refused_when_nothing_is_newer_or_the_ids_do_not_line_up(stages, trained, tmp_path):
    model = _copy(trained["sasrec"], tmp_path)
    with pytest.raises(InputError, match="no item events after"):
        continue_training(model, stages["base"])
    shuffled = stages["grown"].reindexed(stages["grown"].user_ids[::-1], [])
    with pytest.raises(InputError, match="reindexed"):
        model.partial_fit(shuffled)
    with pytest.raises(InputError, match="cannot continue training"):
        continue_training(train_model(create("pop"), stages["base"]), stages["grown"])
    assert model.n_items == stages["base"].n_items  # nothing changed by a refusal


def test_text_features_of_new_items(stages, tmp_path) -> None:
    params = {**NEURAL, **ARCH["sasrec"], "features": "text", "epochs": 3}
    model = train_model(create("sasrec", **params), stages["base"])
    continue_training(model, stages["grown"], epochs=1)
    from driftrec.text import get_encoder, item_texts

    grown = stages["grown"]
    index = int(model.item_indices([UNUSED])[0])
    expected = get_encoder(model.text_model).encode([item_texts(grown)[index]], progress=False)
    features = model.net_.item_emb.features[1 + index].numpy()
    np.testing.assert_allclose(features, expected[0], rtol=1e-5, atol=1e-6)
    known = model.net_.item_emb.known[1:].numpy()
    assert known[model.item_indices(["new-1"])[0]] == 1 and known[index] == 0
    assert model.recommend(text="Never seen.", k=1).item_ids[0, 0] == UNUSED


# ---------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def saved(stages, tmp_path_factory) -> dict[str, Path]:
    """The base dataset and a SASRec trained on it by `driftrec train`."""
    root = tmp_path_factory.mktemp("incremental")
    data = stages["base"].save(root / "data")
    model = root / "sasrec"
    params = [f"{k}={json.dumps(v)}" for k, v in {**NEURAL, **ARCH["sasrec"]}.items()]
    ok(cli("train", data, "-m", "sasrec", "-o", model, *[a for p in params for a in ("-p", p)]))
    return {"data": data, "model": model, "root": root}


def _store(path: Path, stages) -> str:
    """A SQLite event store holding the newer events and the new catalog items."""
    url = f"sqlite:///{path}"
    store = EventStore(url)
    after, new_items = stages["after"], stages["new_items"]
    store.put_items(
        [CatalogItem(str(r.item), str(r.title), str(r.text)) for r in new_items.itertuples()]
    )
    store.append(
        [
            StoredEvent(
                str(r.user),
                Event(
                    None if pd.isna(r.item) else str(r.item),
                    int(r.timestamp),
                    str(r.event),
                    float(r.value),
                    None if pd.isna(r.text) else str(r.text),
                ),
            )
            for r in after.itertuples()
        ]
    )
    store.close()
    return url


def test_train_from_a_model_and_the_event_store(saved, stages, tmp_path) -> None:
    url = _store(tmp_path / "events.db", stages)
    out = tmp_path / "continued"
    printed = flat(ok(cli("train", "--from", saved["model"], "--db", url, "-o", out)))
    grown = stages["grown"]
    users = grown.n_users - stages["base"].n_users
    assert f"added {users} new users, 3 new items and" in printed
    assert "item events in" in printed and "further ->" in printed
    model = models.load(out)
    assert {"newcomer", "new-1", UNUSED} <= set(model.user_ids_) | set(model.item_ids_)
    info = json.loads((out / "config.json").read_text())["info"]
    assert info["store"]["events"] == len(stages["after"])
    assert info["dataset"] == str(saved["data"].resolve())  # the next run joins it again
    assert info["added"]["users"] == users and info["continued_from"]
    ok(cli("recommend", out, "--user", "newcomer", "-k", "3"))
    # the same events given as a dataset: the same model
    data = grown.save(tmp_path / "grown")
    again = tmp_path / "again"
    ok(cli("train", data, "--from", saved["model"], "-o", again))
    probe = model.query_histories(users=["newcomer"])
    np.testing.assert_allclose(
        models.load(again).score(probe), model.score(probe), rtol=1e-4, atol=1e-5
    )


def test_train_from_bad_input_is_one_line(saved, stages, tmp_path) -> None:
    model, data, out = saved["model"], saved["data"], tmp_path / "out"
    assert_input_error(cli("train", data, "--from", model, "-o", out), "no item events after")
    missing = tmp_path / "nothing.db"
    assert_input_error(
        cli("train", "--from", model, "--db", f"sqlite:///{missing}", "-o", out),
        "no such SQLite file",
    )
    assert not missing.exists()  # not created by looking
    assert_input_error(
        cli("train", "--from", model, "--db", "mysql://localhost/x", "-o", out),
        "SQLite or PostgreSQL",
    )
    assert_input_error(cli("train", "--from", model, "--db", "::", "-o", out), "not a database")
    empty = tmp_path / "empty.db"
    EventStore(f"sqlite:///{empty}").close()
    assert_input_error(
        cli("train", "--from", model, "--db", f"sqlite:///{empty}", "-o", out), "no events"
    )
    pop = tmp_path / "pop"
    ok(cli("train", data, "-m", "pop", "-o", pop))
    assert_input_error(cli("train", data, "--from", pop, "-o", out), "cannot be trained further")
    assert_input_error(cli("train", "--from", model, "-o", out), "give DATA")
    assert_input_error(cli("train", data, "--from", model, "-m", "als", "-o", out), "--model")
    assert_input_error(cli("train", data, "--db", "sqlite:///x.db", "-m", "als", "-o", out))
    assert_input_error(cli("train", data, "-o", out), "--model")
    assert_input_error(cli("train", "--from", tmp_path / "none", "-o", out), "config.json")
    assert not out.exists()

"""Models that read text: the content-based model, sequence models with item-text features, free
text mixed into `recommend`, and the item table that carries content.

Everything runs on a small synthetic catalog (16 distinct themes of titles and descriptions) with
the real all-MiniLM-L6-v2; item and search texts are embedded once and cached (DRIFTREC_CACHE).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from driftrec import models
from driftrec.data.dataset import NO_ITEM, Dataset
from driftrec.data.histories import UNKNOWN_USER, Histories
from driftrec.data.split import leave_one_out
from driftrec.data.synthetic import SyntheticConfig, SyntheticData, generate
from driftrec.errors import InputError
from driftrec.models import create
from driftrec.models.base import mask_seen, top_k
from driftrec.models.capabilities import Factorised, Incremental
from driftrec.models.content import DAY, ContentBased
from driftrec.models.items import ItemEmbedding, neighbour_popularity
from driftrec.models.neural import COLD_SHIFTS, NeuralSequenceModel, _calibration_items

# 60 users, 120 items over 8 themes (15 each), 10% of events are searches.
CONFIG = SyntheticConfig(
    n_users=60,
    n_items=120,
    n_categories=8,
    events_per_user=(22, 40),
    min_segment=5,
    search_rate=0.1,
    seed=3,
)
COLD = np.arange(8)  # item indices whose events are removed for the sequence models
# Tiny, quick sequence models (one thread, so the scores are reproducible).
NEURAL = {
    "hidden": 16,
    "max_len": 10,
    "dropout": 0.0,
    "epochs": 15,
    "batch_size": 64,
    "learning_rate": 1e-2,
    "warmup_steps": 5,
    "progress": False,
    "threads": 1,
}
ARCH = {
    "sasrec": {"heads": 2, "layers": 1},
    "gru4rec": {},
    "fused": {"heads": 1, "layers": 1, "long_len": 10},
}

COOKING_QUERY = "I want a cookbook with easy recipes for family dinners"
JAZZ_QUERY = "smoky late-night saxophone records"
NEW_COOKBOOK = (
    "The Weeknight Skillet. Categories: cooking. A homestyle cookbook of quick one-pot pasta"
    " dinners for busy families."
)
NEW_JAZZ = (
    "Blue Trumpet Sessions. Categories: jazz music. A live jazz album of bebop trumpet solos and"
    " swinging ballads."
)
NEW_COOKBOOK_QUERY = "quick one-pot pasta dinners for busy families"  # finds the new cookbook
NEW_JAZZ_QUERY = "bebop trumpet solos"  # finds the new album


def _neural(name: str, **overrides) -> NeuralSequenceModel:
    return create(name, **{**NEURAL, **ARCH[name], **overrides})


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def synth() -> SyntheticData:
    return generate(CONFIG)


@pytest.fixture(scope="module")
def dataset(synth: SyntheticData) -> Dataset:
    return synth.dataset


@pytest.fixture(scope="module")
def content(dataset: Dataset) -> ContentBased:
    return create("content", progress=False).fit(dataset)


@pytest.fixture(scope="module")
def cold_data(dataset: Dataset) -> Dataset:
    """The synthetic data without any event of the COLD items (they stay in the catalog)."""
    events = dataset.events
    return dataset.with_events(events[~np.isin(events["item"].to_numpy(), COLD)])


@pytest.fixture(scope="module")
def sasrec_text(cold_data: Dataset) -> NeuralSequenceModel:
    return _neural("sasrec", features="text").fit(cold_data)


@pytest.fixture(scope="module")
def sasrec_ids(cold_data: Dataset) -> NeuralSequenceModel:
    return _neural("sasrec").fit(cold_data)


def _theme(synth: SyntheticData, name: str) -> int:
    return synth.categories.index(name)


def _pure(synth: SyntheticData, name: str, exclude: np.ndarray = COLD) -> np.ndarray:
    """Indices of the items of one theme only (no second category), cold items left out."""
    single = np.array([len(c) == 1 for c in synth.dataset.items["categories"]])
    chosen = (synth.item_category == _theme(synth, name)) & single
    return np.setdiff1d(np.flatnonzero(chosen), exclude)


def _share(synth: SyntheticData, items: np.ndarray, name: str) -> float:
    """Share of ``items`` whose primary theme is ``name``."""
    return float(np.mean(synth.item_category[items] == _theme(synth, name)))


def _days(*values: float) -> list[int]:
    return [int(v * DAY) for v in values]


def _as_unknown(histories: Histories) -> Histories:
    """The same events, attributed to no known user (so no behaviour text is read)."""
    return dataclasses.replace(histories, users=np.full(len(histories), UNKNOWN_USER, np.int64))


def _theme_rows(synth: SyntheticData) -> Histories:
    """One history per theme: six warm items of that theme only."""
    return Histories.from_sequences([_pure(synth, name)[:6] for name in synth.categories])


# ---------------------------------------------------------------------------------- content
@pytest.mark.parametrize(
    ("theme", "sentence"),
    [
        ("cooking", COOKING_QUERY),
        ("jazz music", JAZZ_QUERY),
        ("science fiction", "a novel about spaceships and alien planets"),
        ("gardening", "how to grow tomatoes in raised vegetable beds"),
    ],
)
def test_content_text_query_ranks_items_of_the_theme(
    theme: str, sentence: str, content: ContentBased, synth: SyntheticData
) -> None:
    recs = content.recommend(text=sentence, k=10)
    assert recs.items.shape == (1, 10)
    assert recs.users is None
    assert _share(synth, recs.items[0], theme) >= 0.7
    assert np.all(np.diff(recs.scores[0]) <= 0)
    assert np.all(np.abs(recs.scores) <= 1.0 + 1e-5)  # cosine similarities


def test_content_recent_events_outweigh_old_ones_with_a_short_half_life(
    dataset: Dataset, synth: SyntheticData
) -> None:
    old, new = _pure(synth, "cooking")[:8], _pure(synth, "jazz music")[:3]
    history = Histories.from_sequences([[*old, *new]])  # eight cooking items, then three jazz
    jazz = synth.item_category == _theme(synth, "jazz music")
    cooking = synth.item_category == _theme(synth, "cooking")
    for half_life, recent_wins in ((1.0, True), (1000.0, False)):
        model = create("content", half_life=half_life, progress=False).fit(dataset)
        scores = model.score(history)
        mask_seen(scores, history)
        top = top_k(scores, 5)[0]
        finite = np.isfinite(scores[0])
        jazz_mean = scores[0, jazz & finite].mean()
        cooking_mean = scores[0, cooking & finite].mean()
        if recent_wins:  # the three newest events decide
            assert _share(synth, top, "jazz music") >= 0.8, half_life
            assert jazz_mean > cooking_mean
        else:  # nearly equal weights: the eight old events outnumber them
            assert _share(synth, top, "cooking") >= 0.8, half_life
            assert cooking_mean > jazz_mean


def test_content_half_life_days_weighs_by_time_not_by_position(
    dataset: Dataset, synth: SyntheticData
) -> None:
    old, new = _pure(synth, "cooking")[:8], _pure(synth, "jazz music")[:3]
    sequence = [[*old, *new]]
    cooking_days = [i / 24 for i in range(8)]  # eight cooking items within a few hours
    later = Histories.from_sequences(sequence, timestamps=[_days(*cooking_days, 30, 30.1, 30.2)])
    soon = Histories.from_sequences(sequence, timestamps=[_days(*cooking_days, 0.4, 0.45, 0.5)])

    by_days = create("content", half_life_days=2.0, progress=False).fit(dataset)
    for history, winner in ((later, "jazz music"), (soon, "cooking")):
        scores = by_days.score(history)
        mask_seen(scores, history)
        assert _share(synth, top_k(scores, 5)[0], winner) >= 0.8, winner

    # Counting events instead, the two histories are the same query.
    by_events = create("content", half_life=20.0, progress=False).fit(dataset)
    np.testing.assert_array_equal(by_events.score(later), by_events.score(soon))
    assert not np.allclose(by_days.score(later), by_days.score(soon))


def test_content_constructor_checks() -> None:
    for bad in ({"half_life": 0}, {"half_life": -1.0}, {"half_life_days": 0.0}):
        with pytest.raises(ValueError, match="half_life"):
            create("content", **bad)


def _first_search(dataset: Dataset) -> tuple[int, int]:
    """(user, time of their first search) of a user with item events before and after it."""
    events = dataset.events
    for user, rows in events.groupby("user", sort=True):
        searches = rows[rows["text"].notna()]
        items = rows[rows["item"] != NO_ITEM]
        if searches.empty:
            continue
        first = int(searches["timestamp"].iloc[0])
        if (items["timestamp"] < first).sum() >= 3 and (items["timestamp"] > first).sum() >= 1:
            return int(user), first
    raise AssertionError("no user searches between item events")


def test_content_reads_a_known_users_search_text(content: ContentBased, dataset: Dataset) -> None:
    user, _ = _first_search(dataset)
    history = content.histories_for([dataset.user_ids[user]])
    with_text = content.interest(history)
    without = content.interest(_as_unknown(history))
    assert not np.allclose(with_text, without)
    np.testing.assert_allclose(np.linalg.norm(with_text, axis=1), 1.0, rtol=1e-5)

    loud = create("content", behaviour_weight=1.0, progress=False).fit(dataset)
    np.testing.assert_allclose(loud.interest(history), with_text, rtol=1e-5, atol=1e-6)
    silent = create("content", behaviour_weight=0.0, progress=False).fit(dataset)
    muted = silent.interest(history)
    assert not np.allclose(muted, with_text)
    # (searches still count as events when ages are counted in events, so muted text shifts the
    # weights of the item events around it a little)
    assert np.linalg.norm(muted - without) < np.linalg.norm(with_text - without)

    # Ages in days: behaviour_weight=0 ignores what the user wrote, as if the history had no user.
    by_days = {"half_life_days": 30.0, "progress": False}
    silent = create("content", behaviour_weight=0.0, **by_days).fit(dataset)
    np.testing.assert_allclose(
        silent.interest(history), silent.interest(_as_unknown(history)), rtol=1e-5, atol=1e-6
    )
    loud = create("content", behaviour_weight=1.0, **by_days).fit(dataset)
    assert not np.allclose(loud.interest(history), loud.interest(_as_unknown(history)))


def test_content_ignores_text_written_after_the_rows_newest_event(
    content: ContentBased, dataset: Dataset
) -> None:
    user, searched = _first_search(dataset)
    full = content.histories_for([dataset.user_ids[user]])
    times = full.timestamps
    before = full.slices(np.array([0]), np.array([int((times < searched).sum())]), [user])
    through = full.slices(np.array([0]), np.array([int((times <= searched).sum()) + 1]), [user])
    assert before.timestamps.max() < searched < through.timestamps.max()

    # The query ends before the first search: the search (and everything later) is not read.
    np.testing.assert_array_equal(content.interest(before), content.interest(_as_unknown(before)))
    # Once the history reaches past it, it is.
    assert not np.allclose(content.interest(through), content.interest(_as_unknown(through)))


def test_content_user_with_only_search_events(dataset: Dataset, synth: SyntheticData) -> None:
    """A user who only searched has an empty item history: the searches alone make the query,
    also when the batch has no item event at all."""
    ids = dataset.item_ids
    jazz = ids[_pure(synth, "jazz music")[:5]].tolist()
    events = pd.DataFrame(
        {
            "user": ["fan"] * 5 + ["searcher"] * 2,
            "item": [*jazz, None, None],
            "timestamp": [100, 200, 300, 400, 500, 150, 250],
            "event": ["view"] * 5 + ["search"] * 2,
            "text": [None] * 5 + ["best cookbooks", "easy dinner recipes"],
        }
    )
    catalog = dataset.items.assign(item=ids)
    data = Dataset.from_frames(events, catalog)
    model = create("content", progress=False).fit(data)
    assert model.histories_for(["searcher"]).lengths.tolist() == [0]

    alone = model.recommend(users=["searcher"], k=5)
    assert _share(synth, data.item_index(alone.item_ids[0].tolist()), "cooking") >= 0.8
    both = model.recommend(users=["fan", "searcher"], k=5)
    np.testing.assert_array_equal(both.items[1], alone.items[0])
    assert _share(synth, data.item_index(both.item_ids[0].tolist()), "jazz music") >= 0.8


def test_content_save_load_round_trip(
    content: ContentBased, dataset: Dataset, tmp_path: Path
) -> None:
    back = models.load(content.save(tmp_path / "content"))
    assert type(back) is ContentBased
    assert back.get_params() == content.get_params()
    histories = content.histories_for(dataset.user_ids[:10])
    np.testing.assert_array_equal(back.score(histories), content.score(histories))
    np.testing.assert_array_equal(back.text_scores([JAZZ_QUERY]), content.text_scores([JAZZ_QUERY]))


def test_content_add_items_makes_a_new_item_rankable(
    content: ContentBased, dataset: Dataset, tmp_path: Path
) -> None:
    model = copy.deepcopy(content)
    n = model.n_items
    before = model.text_scores([COOKING_QUERY])
    assert model.add_items(["new-cookbook", "new-jazz"], [NEW_COOKBOOK, NEW_JAZZ]) is model
    assert model.n_items == n + 2
    assert model.item_ids_[-2:].tolist() == ["new-cookbook", "new-jazz"]
    after = model.text_scores([COOKING_QUERY])
    assert after.shape == (1, n + 2)
    np.testing.assert_array_equal(after[:, :n], before)

    cooking = model.recommend(text=NEW_COOKBOOK_QUERY, k=10).item_ids[0].tolist()
    assert cooking[0] == "new-cookbook" and "new-jazz" not in cooking
    assert model.recommend(text=NEW_JAZZ_QUERY, k=1).item_ids[0].tolist() == ["new-jazz"]
    assert model.score(model.histories_for(dataset.user_ids[:3])).shape == (3, n + 2)
    back = models.load(model.save(tmp_path / "grown"))
    np.testing.assert_array_equal(back.text_scores([COOKING_QUERY]), after)


def test_content_add_items_rejects_bad_ids(content: ContentBased, dataset: Dataset) -> None:
    model = copy.deepcopy(content)
    n = model.n_items
    with pytest.raises(ValueError, match="already in the catalog"):
        model.add_items([str(dataset.item_ids[0])], ["anything"])
    with pytest.raises(ValueError, match="repeated"):
        model.add_items(["twice", "twice"], ["a", "b"])
    with pytest.raises(ValueError, match="2 item ids but 1 texts"):
        model.add_items(["x", "y"], ["a"])
    assert model.n_items == n and len(model.item_vectors_) == n  # nothing half-added


# ---------------------------------------------------------------------------------- sequence + text
def test_text_sasrec_knows_which_items_have_training_events(
    sasrec_text: NeuralSequenceModel, cold_data: Dataset
) -> None:
    item_emb = sasrec_text.net_.item_emb
    counts = np.bincount(cold_data.histories().items, minlength=cold_data.n_items)
    known = item_emb.known[1:].numpy() > 0
    assert not known[COLD].any()
    np.testing.assert_array_equal(known, counts > 0)
    assert item_emb.known[0] == 0  # padding
    assert item_emb.features.shape == (cold_data.n_items + 1, 384)
    assert sasrec_text.log_.epochs[-1]["loss"] < sasrec_text.log_.epochs[0]["loss"]


def test_text_sasrec_scores_cold_items_from_their_text(
    sasrec_text: NeuralSequenceModel, sasrec_ids: NeuralSequenceModel, synth: SyntheticData
) -> None:
    """A cold item is scored highest by the history of its own theme, which an id-only model
    (whose cold items' ids were never a training target) cannot do."""
    rows = _theme_rows(synth)
    with_text, ids_only = sasrec_text.score(rows), sasrec_ids.score(rows)
    assert np.isfinite(with_text).all()
    assert (np.ptp(with_text[:, COLD], axis=1) > 1e-3).all()  # not one shared vector
    assert not np.allclose(with_text[:, COLD], ids_only[:, COLD])

    def own_theme_rank(scores: np.ndarray) -> float:
        """Mean rank (1 = best) of each cold item's own theme among the theme rows' scores."""
        ranks = (-scores[:, COLD]).argsort(axis=0).argsort(axis=0) + 1  # (themes, cold items)
        return float(ranks[synth.item_category[COLD], np.arange(len(COLD))].mean())

    chance = (len(synth.categories) + 1) / 2  # 4.5 of 8 themes
    assert own_theme_rank(with_text) <= 2.5 < chance
    assert own_theme_rank(with_text) < own_theme_rank(ids_only)


def test_item_vectors_are_computed_once_per_model_version(
    sasrec_text: NeuralSequenceModel, cold_data: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scoring a request costs the history and the ranking, not a pass of the adapter over the
    whole catalog; fresh vectors come with a new model version (here: add_items)."""
    model = copy.deepcopy(sasrec_text)
    rows = cold_data.histories(np.arange(3))
    expected = model.score(rows)
    calls = []
    original = ItemEmbedding.weight
    monkeypatch.setattr(
        ItemEmbedding, "weight", property(lambda table: calls.append(1) or original.fget(table))
    )
    for _ in range(3):
        np.testing.assert_array_equal(model.score(rows), expected)
    assert calls == []  # the first score above filled the cache
    model.add_items(["brand-new"], [NEW_COOKBOOK])
    assert model.score(rows).shape == (3, cold_data.n_items + 1) and len(calls) == 1
    model.score(rows)
    assert len(calls) == 1


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "fused"])
def test_add_items_grows_the_catalog_without_changing_old_scores(
    name: str,
    sasrec_text: NeuralSequenceModel,
    cold_data: Dataset,
    synth: SyntheticData,
    tmp_path: Path,
) -> None:
    model = copy.deepcopy(sasrec_text) if name == "sasrec" else None
    if model is None:
        model = _neural(name, features="text").fit(cold_data)
    rows = _theme_rows(synth)
    n = model.n_items
    before = model.score(rows)
    model.add_items(["new-cookbook", "new-jazz"], [NEW_COOKBOOK, NEW_JAZZ])
    assert model.n_items == n + 2
    assert model.item_ids_[-2:].tolist() == ["new-cookbook", "new-jazz"]
    after = model.score(rows)
    assert after.shape == (len(rows), n + 2)
    np.testing.assert_allclose(after[:, :n], before, rtol=1e-5, atol=1e-5)

    item_emb = model.net_.item_emb
    assert not item_emb.training
    assert torch.all(item_emb.ids.weight[-2:] == 0)  # no id part: scored from the text alone
    assert item_emb.known[-2:].tolist() == [0.0, 0.0]
    assert len(model.sample_probs_) == n + 3 and torch.all(model.sample_probs_[-2:] == 0)
    if name == "fused":
        assert torch.all(model.net_.long_emb.weight[-2:] == 0)
    assert model.text_scores([COOKING_QUERY]).shape == (1, n + 2)
    assert model.recommend(text=NEW_COOKBOOK_QUERY, k=1).item_ids[0].tolist() == ["new-cookbook"]

    back = models.load(model.save(tmp_path / name))
    assert back.n_items == n + 2
    np.testing.assert_array_equal(back.score(rows), after)

    with pytest.raises(ValueError, match="already in the catalog"):
        model.add_items(["new-cookbook"], ["again"])


def test_cold_boost_shifts_only_items_without_training_events(
    sasrec_text: NeuralSequenceModel, synth: SyntheticData
) -> None:
    model = copy.deepcopy(sasrec_text)
    rows = _theme_rows(synth)
    before = model.score(rows)
    model.cold_boost = 1.5
    after = model.score(rows)
    unknown = model.net_.item_emb.known[1:].numpy() == 0
    assert unknown[COLD].all()
    np.testing.assert_allclose(after[:, unknown], before[:, unknown] + 1.5, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(after[:, ~unknown], before[:, ~unknown])
    assert model.get_params()["cold_boost"] == 1.5


def test_text_sasrec_scores_a_zero_shot_item_by_its_theme(
    sasrec_text: NeuralSequenceModel, synth: SyntheticData
) -> None:
    model = copy.deepcopy(sasrec_text)
    n = model.n_items
    model.add_items(["new-cookbook", "new-jazz"], [NEW_COOKBOOK, NEW_JAZZ])
    scores = model.score(_theme_rows(synth))
    cooking, jazz = _theme(synth, "cooking"), _theme(synth, "jazz music")
    assert scores[cooking, n] > scores[jazz, n]
    assert scores[jazz, n + 1] > scores[cooking, n + 1]


def test_text_sasrec_save_load_round_trip(
    sasrec_text: NeuralSequenceModel, synth: SyntheticData, tmp_path: Path
) -> None:
    back = models.load(sasrec_text.save(tmp_path / "sasrec"))
    assert back.get_params() == sasrec_text.get_params() and back.features == "text"
    rows = _theme_rows(synth)
    np.testing.assert_array_equal(back.score(rows), sasrec_text.score(rows))
    torch.testing.assert_close(
        back.net_.item_emb.features, sasrec_text.net_.item_emb.features, rtol=0, atol=0
    )
    torch.testing.assert_close(
        back.net_.item_emb.known, sasrec_text.net_.item_emb.known, rtol=0, atol=0
    )
    np.testing.assert_array_equal(
        back.text_scores([JAZZ_QUERY]), sasrec_text.text_scores([JAZZ_QUERY])
    )


def test_text_sasrec_answers_a_sentence_like_the_content_model(
    sasrec_text: NeuralSequenceModel, content: ContentBased, synth: SyntheticData
) -> None:
    """Both rank a sentence against the same language-model embeddings of the item texts."""
    recs = sasrec_text.recommend(text=COOKING_QUERY, k=10)
    assert _share(synth, recs.items[0], "cooking") >= 0.7
    np.testing.assert_array_equal(recs.items, content.recommend(text=COOKING_QUERY, k=10).items)


def test_multihot_features_train_but_read_no_text(
    cold_data: Dataset, sasrec_ids: NeuralSequenceModel, synth: SyntheticData
) -> None:
    model = _neural("sasrec", features="multihot").fit(cold_data)
    assert model.net_.item_emb.adapter is not None
    assert model.net_.item_emb.warm_content  # text_fusion is about text: multi-hot is added
    assert model.net_.item_emb.features.shape[1] == 8  # one column per category
    scores = model.score(_theme_rows(synth))
    assert np.isfinite(scores).all() and (np.ptp(scores[:, COLD], axis=1) > 0).all()
    for no_text in (model, sasrec_ids):
        with pytest.raises(ValueError, match="'content'"):
            no_text.recommend(text=COOKING_QUERY)
        with pytest.raises(ValueError, match="features='text'"):
            no_text.add_items(["new"], ["a new item"])


def test_unknown_feature_kind_is_refused_at_construction() -> None:
    for name in ("sasrec", "gru4rec", "fused"):
        with pytest.raises(ValueError, match="must be one of 'none', 'text', 'multihot'"):
            create(name, features="bogus")


# ---------------------------------------------------------------------------------- mixing
def _user_of_theme(dataset: Dataset, synth: SyntheticData, theme: str) -> str:
    """A user whose last ten item events are mostly of ``theme``."""
    histories = dataset.histories()
    for u in range(dataset.n_users):
        recent = histories.row(u)[-10:]
        if _share(synth, recent, theme) >= 0.7:
            return str(dataset.user_ids[u])
    raise AssertionError(f"no user mostly into {theme}")


def test_text_weight_ends_reproduce_history_and_text_rankings(
    content: ContentBased, dataset: Dataset, synth: SyntheticData
) -> None:
    theme = next(t for t in synth.categories if t != "jazz music")
    user = _user_of_theme(dataset, synth, theme)
    history_only = content.recommend(users=[user], k=10)
    mixed_0 = content.recommend(users=[user], text=JAZZ_QUERY, text_weight=0.0, k=10)
    np.testing.assert_array_equal(mixed_0.items, history_only.items)
    assert mixed_0.users == [user]

    text_only = content.text_scores([JAZZ_QUERY])
    mask_seen(text_only, content.histories_for([user]))  # seen items stay excluded
    mixed_1 = content.recommend(users=[user], text=JAZZ_QUERY, text_weight=1.0, k=10)
    np.testing.assert_array_equal(mixed_1.items, top_k(text_only, 10))
    # the text alone ranks the user's seen items too: the same list once they are skipped
    seen = len(set(content.histories_for([user]).items.tolist()))
    pure_text = content.recommend(text=JAZZ_QUERY, k=10 + seen).item_ids[0].tolist()
    assert mixed_1.item_ids[0].tolist() == [i for i in pure_text if i in mixed_1.item_ids[0]]


def test_mixing_moves_the_ranking_toward_the_text(
    content: ContentBased, dataset: Dataset, synth: SyntheticData
) -> None:
    theme = next(t for t in synth.categories if t != "jazz music")
    user = _user_of_theme(dataset, synth, theme)
    shares = []
    tops = {}
    for weight in (0.0, 0.25, 0.5, 0.75, 1.0):
        recs = content.recommend(users=[user], text=JAZZ_QUERY, text_weight=weight, k=10)
        tops[weight] = recs.items[0].tolist()
        shares.append(_share(synth, recs.items[0], "jazz music"))
    assert shares == sorted(shares)
    assert shares[0] <= 0.3 and shares[-1] >= 0.7
    assert tops[0.5] != tops[0.0] and tops[0.5] != tops[1.0]
    # half and half: the list holds both what the history and what the text asks for
    assert set(tops[0.5]) & set(tops[0.0]) and set(tops[0.5]) & set(tops[1.0])


def test_text_mixes_with_a_raw_sequence_on_a_text_sequence_model(
    sasrec_text: NeuralSequenceModel, dataset: Dataset, synth: SyntheticData
) -> None:
    session = dataset.item_ids[_pure(synth, "cooking")[:4]].tolist()
    pure = sasrec_text.recommend(sequences=[session], k=10)
    mixed = sasrec_text.recommend(sequences=[session], text=JAZZ_QUERY, text_weight=0.7, k=10)
    assert not set(mixed.item_ids[0]) & set(session)
    assert _share(synth, mixed.items[0], "jazz music") > _share(synth, pure.items[0], "jazz music")


@pytest.mark.parametrize("weight", [-0.1, 1.5, float("nan")])
def test_text_weight_out_of_range_is_refused(content: ContentBased, weight: float) -> None:
    with pytest.raises(ValueError, match="text_weight"):
        content.recommend(text=JAZZ_QUERY, text_weight=weight)


def test_a_model_that_reads_no_text_names_the_content_model(dataset: Dataset) -> None:
    pop = create("pop").fit(dataset)
    user = str(dataset.user_ids[0])
    for query in ({}, {"users": [user]}, {"sequences": [[str(dataset.item_ids[0])]]}):
        with pytest.raises(ValueError, match=r"does not read text.*'content'"):
            pop.recommend(**query, text=JAZZ_QUERY)
    with pytest.raises(ValueError, match="'content'"):
        pop.text_scores([JAZZ_QUERY])
    assert pop.recommend(users=[user], k=3).items.shape == (1, 3)  # without text it answers


# ---------------------------------------------------------------------------------- ItemEmbedding
def _table(n_items: int = 6, d: int = 4, known=None) -> ItemEmbedding:
    torch.manual_seed(0)
    features = torch.randn(n_items, 5)
    known = torch.tensor([True, False, True, False, True, True]) if known is None else known
    return ItemEmbedding(n_items, d, features, known)


@pytest.mark.parametrize("with_features", [False, True])
def test_item_table_padding_row_is_zero(with_features: bool) -> None:
    table = _table() if with_features else ItemEmbedding(6, 4)
    for train in (True, False):
        table.train(train)
        assert torch.all(table.weight[0] == 0)
        assert torch.all(table(torch.tensor([[0, 0, 3]]))[0, :2] == 0)
    if with_features:
        assert torch.all(table.cold_vectors()[0] == 0)


def test_item_table_unknown_items_use_the_cold_adapter() -> None:
    table = _table().eval()
    with torch.no_grad():
        content = table.adapter(table.features)  # (n_items + 1, d)
        cold = table.cold(table.features)
        out = table(torch.arange(7))
        torch.testing.assert_close(table.cold_vectors()[1:], cold[1:], rtol=0, atol=0)
    unknown = torch.tensor([2, 4])  # items 1 and 3, shifted by the padding row
    known = torch.tensor([1, 3, 5, 6])
    torch.testing.assert_close(out[unknown], cold[unknown], rtol=0, atol=0)
    torch.testing.assert_close(out[known], table.ids.weight[known] + content[known])
    assert not torch.allclose(out[known], cold[known])


def test_item_table_cold_logit_bias_only_on_unknown_items() -> None:
    table = _table()
    with torch.no_grad():
        table.cold.offset.fill_(-2.5)
        table.cold.scale.fill_(0.5)
        bias = table.logit_bias()
        np.testing.assert_array_equal(bias.numpy(), [0, 0, -2.5, 0, -2.5, 0, 0])  # padding first
        unknown = torch.tensor([2, 4])
        raw = table.cold.adapter(table.features[unknown])
        torch.testing.assert_close(table(unknown), 0.5 * raw)  # scaled, offset added to logits
    assert ItemEmbedding(6, 4).logit_bias() is None


def test_calibration_items_are_a_tenth_of_the_known_items() -> None:
    known = np.zeros(1000, bool)
    known[::2] = True  # 500 known items
    mask = _calibration_items(known, torch.Generator().manual_seed(0)).numpy()
    assert len(mask) == 1001 and not mask[0]  # padding row first
    assert mask.sum() == 50 and known[mask[1:]].all()
    again = _calibration_items(known, torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_array_equal(mask, again)


def _gradients(model: NeuralSequenceModel, batch: dict[str, torch.Tensor]) -> dict:
    model.net_.zero_grad()
    torch.manual_seed(1)
    model._loss(batch).backward()
    return {n: p.grad.clone() for n, p in model.net_.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("loss", ["ce", "sampled", "gbce"])
def test_cold_adapter_term_trains_only_the_cold_adapter(cold_data: Dataset, loss: str) -> None:
    """The auxiliary term must not move anything the warm ranking uses: every other gradient is
    the same as without it, and the cold adapter gets a gradient only from it."""
    # Every item swapped, so every calibration item takes part (and gets its scale and offset a
    # gradient) in this one batch.
    model = _neural(
        "sasrec", features="text", epochs=1, loss=loss, negatives=64, cold_share=1.0
    ).fit(cold_data)
    model.net_.train()
    batch = {name: t[:32] for name, t in model._training_tensors().items()}
    with_term = _gradients(model, batch)
    model.cold_share = 0.0
    without = _gradients(model, batch)
    cold = {n for n in with_term if n.startswith("item_emb.cold.")}
    assert cold and all(with_term[n].abs().sum() > 0 for n in cold)
    # Without the term, the cold items' logits are masked: their adapter gets zeros at most.
    assert all(torch.all(without[n] == 0) for n in cold if n in without)
    for name in set(with_term) - cold:
        torch.testing.assert_close(with_term[name], without[name], msg=name)


@pytest.mark.parametrize("loss", ["ce", "sampled", "gbce"])
def test_training_the_cold_adapter_leaves_the_warm_model_unchanged(
    cold_data: Dataset, synth: SyntheticData, loss: str
) -> None:
    """End to end over a whole fit (random streams, gradient clipping, early stopping): with or
    without the cold adapter's term, every warm parameter and every known item's score is the
    same, bit for bit; only the cold adapter differs."""
    split = leave_one_out(cold_data)
    fits = {
        share: _neural("sasrec", features="text", loss=loss, negatives=16, cold_share=share).fit(
            split.train, valid=split.valid
        )
        for share in (0.0, 0.5)
    }
    without, with_term = (dict(fits[s].net_.named_parameters()) for s in (0.0, 0.5))
    for name, value in without.items():
        if name.startswith("item_emb.cold."):
            assert not torch.equal(value, with_term[name]), name
        else:
            assert torch.equal(value, with_term[name]), name
    known = fits[0.0].net_.item_emb.known[1:].numpy() > 0
    # Histories of known items only: an unknown input item is read through the cold adapter.
    themes = _theme_rows(synth)
    rows = Histories.from_sequences(
        [themes.row(i)[known[themes.row(i)]] for i in range(len(themes))]
    )
    np.testing.assert_array_equal(fits[0.0].score(rows)[:, known], fits[0.5].score(rows)[:, known])


@pytest.mark.parametrize("with_features", [False, True])
def test_item_table_weight_rows_equal_forward_in_eval_mode(with_features: bool) -> None:
    table = (_table() if with_features else ItemEmbedding(6, 4)).eval()
    index = torch.tensor([[3, 0, 1], [6, 2, 2]])
    with torch.no_grad():
        torch.testing.assert_close(table.weight[index], table(index))
        torch.testing.assert_close(table.weight, table(torch.arange(7)))


def test_item_table_checks_the_feature_rows() -> None:
    with pytest.raises(ValueError, match="5 feature rows for 6 items"):
        ItemEmbedding(6, 4, torch.zeros(5, 3))


def _expected_cost(scores: np.ndarray, seen: Histories, absent: np.ndarray, shift: float) -> float:
    """Share of the warm top-10 probability (softmax over each row's unseen warm items) that cold
    items shifted by ``shift`` push out of the top 10, over all rows; one item at a time."""
    lost = total = 0.0
    for row, history in enumerate(seen.to_csr(len(absent))):
        candidate = np.ones(len(absent), bool)
        candidate[history.indices] = False
        warm = np.flatnonzero(candidate & ~absent)
        cold = scores[row, candidate & absent] + shift
        p = np.exp(scores[row, warm] - scores[row, warm].max())
        p /= p.sum()
        for rank, j in enumerate(np.argsort(-scores[row, warm], kind="stable")[:10]):
            total += p[j]
            if rank + (cold > scores[row, warm[j]]).sum() >= 10:
                lost += p[j]
    return lost / total


@pytest.mark.parametrize("with_valid", [True, False])
def test_cold_budget_shifts_cold_logits_as_far_as_the_expected_cost_allows(
    cold_data: Dataset, with_valid: bool
) -> None:
    """After training, the cold offset moves to the largest shift at which the cold items are
    expected (by the model's own probabilities) to take at most ``cold_budget`` of the warm
    top-10 hits of the validation rows, or of every user's next request without validation
    data; training itself is untouched."""
    split = leave_one_out(cold_data)
    valid = split.valid if with_valid else None
    free, budgeted = (
        _neural("sasrec", features="text", cold_budget=b).fit(split.train, valid=valid)
        for b in (None, 0.05)
    )
    shift = budgeted.training_summary()["cold_shift"]
    assert free.training_summary()["cold_shift"] == 0.0
    for name, value in free.net_.named_parameters():
        expected = value + shift if name == "item_emb.cold.offset" else value
        torch.testing.assert_close(dict(budgeted.net_.named_parameters())[name], expected)
    rows = split.valid.histories if with_valid else free.history_
    scores = free.score(rows)
    absent = free.net_.item_emb.known[1:].numpy() == 0
    assert absent[COLD].all()
    grid = COLD_SHIFTS.tolist()
    assert shift in grid
    assert _expected_cost(scores, rows, absent, shift) <= 0.05 + 1e-6 or shift == grid[0]
    assert shift == grid[-1] or _expected_cost(scores, rows, absent, shift + 0.25) > 0.05
    # The shift is saved with the model, in the offset.
    assert np.allclose(budgeted.score(rows), scores + shift * absent, atol=1e-4)


def test_cold_budget_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'cold_budget' .* must be None or a number in \[0, 1\]"):
        _neural("sasrec", features="text", cold_budget=1.5)


def test_a_fixed_cold_prior_weight_is_kept_and_only_moves_cold_logits(
    cold_data: Dataset, tmp_path: Path
) -> None:
    """``cold_prior_weight`` fixes the prior's weight (the calibration fits around it); the warm
    model and every item with training events score as with the fitted weight."""
    split = leave_one_out(cold_data)
    fitted, fixed = (
        _neural("sasrec", features="text", cold_budget=None, cold_prior_weight=w).fit(
            split.train, valid=split.valid
        )
        for w in (None, 0.75)
    )
    assert fixed.training_summary()["cold_prior_weight"] == 0.75
    assert fitted.training_summary()["cold_prior_weight"] != 0.75
    absent = fixed.net_.item_emb.known[1:].numpy() == 0
    a, b = fitted.score(split.valid.histories), fixed.score(split.valid.histories)
    np.testing.assert_allclose(a[:, ~absent], b[:, ~absent], atol=1e-5)
    assert not np.allclose(a[:, absent], b[:, absent], atol=1e-3)
    # Saved and loaded like every other fitted scalar.
    loaded = models.load(fixed.save(tmp_path / "fixed"))
    np.testing.assert_allclose(loaded.score(split.valid.histories), b, atol=1e-5)


@pytest.mark.parametrize("weight", [float("nan"), float("inf")])
def test_cold_prior_weight_must_be_finite(weight: float) -> None:
    with pytest.raises(ValueError, match=r"'cold_prior_weight' .* must be None or a finite number"):
        _neural("sasrec", features="text", cold_prior_weight=weight)


def test_neighbour_popularity_reads_the_nearest_known_items_never_the_item_itself() -> None:
    # Two content clusters (A: items 0, 1, 4; B: items 2, 3, 5); items 4 and 5 are unknown.
    features = torch.tensor(
        [[1, 0.1], [1, 0.2], [0.1, 1], [0.2, 1], [1, 0.15], [0.15, 1]], dtype=torch.float32
    )
    known = torch.tensor([True, True, True, True, False, False])
    popularity = torch.tensor([4.0, 2.0, 0.0, 1.0, 0.0, 0.0])
    prior = neighbour_popularity(features, popularity, known, k=2)
    # Each item's 2 nearest known items other than itself: item 0 reads items 1 and 3, not its
    # own 4; the unknown items read their own cluster.
    raw = torch.tensor([1.5, 2.5, 1.5, 1.0, 3.0, 0.5])
    expected = (raw - raw[:4].mean()) / raw[:4].std()  # standardised over the known items
    torch.testing.assert_close(prior, expected)
    # An unknown item added later changes nobody's prior.
    grown = neighbour_popularity(
        torch.cat([features, torch.tensor([[1.0, 0.12]])]),
        torch.cat([popularity, torch.zeros(1)]),
        torch.cat([known, torch.tensor([False])]),
        k=2,
    )
    torch.testing.assert_close(grown[:6], prior)
    assert grown[6] == prior[4]  # the same neighbours as item 4


def test_text_models_have_the_retrieval_contract(
    content: ContentBased, sasrec_text: NeuralSequenceModel, cold_data: Dataset, dataset: Dataset
) -> None:
    """With content features the cold items' offset is the per-item bias of the contract."""
    for model, data in ((content, dataset), (sasrec_text, cold_data)):
        assert isinstance(model, Factorised)
        probe = data.histories(np.arange(4))
        bias = model.item_bias()
        inner = model.query_vectors(probe) @ model.item_vectors().T
        inner = inner + (0.0 if bias is None else bias)
        scores = model.score(probe)
        unseen = np.ones_like(scores, bool)
        unseen[probe.event_rows(), probe.items] = False
        np.testing.assert_allclose(inner[unseen], scores[unseen], rtol=1e-4, atol=1e-4)
    assert content.item_bias() is None and sasrec_text.item_bias() is not None


@pytest.mark.parametrize("half_life_days", [None, 3.0])
def test_content_interest_advanced_by_new_events_equals_recomputing_it(
    content: ContentBased, half_life_days: float | None
) -> None:
    model = copy.copy(content)
    model.half_life_days = half_life_days  # answering reads it; fitting does not
    events = model.history_events(str(model.user_ids_[0]))
    assert len(events) > 12
    assert isinstance(model, Incremental)
    cut = len(events) - 12
    state = model.start(events[:cut])
    for n in (5, 1, 6):  # several events at a time, and one
        state = model.advance(state, events[cut : cut + n])
        cut += n
    full = model.query_vectors(model.query_histories(events=[events]))[0]
    np.testing.assert_allclose(model.query_vector(state), full, atol=1e-6)
    with pytest.raises(InputError, match="no older"):
        model.advance(state, events[:1])


def test_text_fusion_init_starts_items_described_alike_close(cold_data: Dataset) -> None:
    """text_fusion="init": the id embeddings start at the text's principal components (at
    small_init's spread), so two items with the same text start at the same point, and a known
    item's vector is its id embedding alone."""
    content = torch.randn(30, 12)
    content[7] = content[3]
    emb = ItemEmbedding(30, 8)
    emb.init_ids_from(content)
    ids = emb.ids.weight.detach()
    torch.testing.assert_close(ids[8], ids[4])  # row 0 is padding
    assert abs(float(ids[1:].std()) - 0.02) < 0.005
    assert torch.all(ids[0] == 0)
    model = _neural("sasrec", features="text", text_fusion="init", epochs=1).fit(cold_data)
    item_emb = model.net_.item_emb
    known = torch.nonzero(item_emb.known).squeeze(1)
    # a known item's vector is its id embedding alone; the cold ones read their text
    torch.testing.assert_close(item_emb.weight[known], item_emb.ids.weight[known])
    recs = model.recommend(sequences=[[str(i) for i in cold_data.item_ids[:3]]], k=5)
    assert recs.item_ids.shape == (1, 5)

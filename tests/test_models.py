"""The shared Recommender interface and the behaviour of every registered model."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tinydata import clustered as clustered_dataset

from driftrec import models
from driftrec.data.dataset import Dataset
from driftrec.data.histories import UNKNOWN_USER, Histories
from driftrec.errors import DataFormatError
from driftrec.models import MODELS, create
from driftrec.models.base import Recommendations, mask_seen, top_k
from driftrec.models.bias import BiasBaseline
from driftrec.models.capabilities import Factorised, Incremental
from driftrec.models.factorization import ALS, BPR
from driftrec.models.itemknn import ItemKNN
from driftrec.models.popularity import Popularity

# Small, fast settings; BPR and ALS with few factors, enough for two taste clusters.
FAST: dict[str, dict] = {
    "bpr": {"factors": 2, "iterations": 300, "learning_rate": 0.05},
    "als": {"factors": 4, "regularization": 1.0},
    # Neural models: tiny and short, enough to check the interface (tests/test_neural.py trains).
    "sasrec": {"hidden": 8, "heads": 1, "layers": 1, "epochs": 3, "progress": False},
    "gru4rec": {"hidden": 8, "epochs": 3, "progress": False},
    "fused": {"hidden": 8, "heads": 1, "layers": 1, "epochs": 3, "progress": False},
}

GROUP_A = ["1", "4", "7", "12", "16"]  # a fresh session of group-A items (external ids)
GROUP_B = ["21", "24", "30", "35", "38"]


@pytest.fixture(scope="module")
def clustered() -> Dataset:
    return clustered_dataset()


@pytest.fixture(scope="module")
def fitted(clustered: Dataset) -> dict[str, models.Recommender]:
    return {name: create(name, **FAST.get(name, {})).fit(clustered) for name in MODELS}


# ---------------------------------------------------------------------- top_k / mask_seen


def test_top_k_orders_by_score_and_breaks_ties_by_lower_index() -> None:
    scores = np.array([[1.0, 3.0, 3.0, 0.0, 3.0], [2.0, 2.0, 2.0, 2.0, 2.0]])
    np.testing.assert_array_equal(top_k(scores, 2), [[1, 2], [0, 1]])
    np.testing.assert_array_equal(top_k(scores, 4), [[1, 2, 4, 0], [0, 1, 2, 3]])
    assert top_k(scores, 2).dtype == np.int64


def test_top_k_matches_stable_full_sort_with_many_ties() -> None:
    rng = np.random.default_rng(7)
    scores = rng.integers(0, 4, size=(50, 12)).astype(np.float32)  # lots of ties
    scores[rng.random(scores.shape) < 0.2] = -np.inf
    reference = np.argsort(-scores, axis=1, kind="stable")
    for k in (1, 3, 7, 12):
        np.testing.assert_array_equal(top_k(scores, k), reference[:, :k])
    # Deterministic: same answer on a copy.
    np.testing.assert_array_equal(top_k(scores.copy(), 5), top_k(scores, 5))


def test_top_k_k_larger_than_catalog_and_zero() -> None:
    scores = np.array([[0.1, 0.3, 0.2]])
    np.testing.assert_array_equal(top_k(scores, 10), [[1, 2, 0]])
    assert top_k(scores, 0).shape == (1, 0)
    assert top_k(np.zeros((0, 3)), 2).shape == (0, 2)


def test_mask_seen_in_place() -> None:
    scores = np.arange(8, dtype=np.float32).reshape(2, 4)
    mask_seen(scores, Histories.from_sequences([[1, 3, 1], []]))
    assert scores[0].tolist() == [0, -np.inf, 2, -np.inf]
    assert scores[1].tolist() == [4, 5, 6, 7]
    # A masked item ranks after every unmasked one.
    np.testing.assert_array_equal(top_k(scores, 4)[0], [2, 0, 1, 3])


# ---------------------------------------------------------------------- Recommendations


def test_recommendations_to_frame() -> None:
    rec = Recommendations(
        item_ids=np.array([["x", "y"], ["z", "x"]], dtype=object),
        scores=np.array([[0.9, 0.5], [0.8, 0.1]], np.float32),
        items=np.array([[0, 1], [2, 0]]),
        users=["u1", "u2"],
    )
    frame = rec.to_frame()
    assert list(frame.columns) == ["query", "user", "rank", "item", "score"]
    assert frame["query"].tolist() == [0, 0, 1, 1]
    assert frame["user"].tolist() == ["u1", "u1", "u2", "u2"]
    assert frame["rank"].tolist() == [1, 2, 1, 2]
    assert frame["item"].tolist() == ["x", "y", "z", "x"]
    np.testing.assert_allclose(frame["score"], [0.9, 0.5, 0.8, 0.1])
    anonymous = Recommendations(rec.item_ids, rec.scores, rec.items).to_frame()
    assert anonymous["user"].tolist() == [None] * 4


# ---------------------------------------------------------------------- recommend()


def test_recommend_known_users_by_external_id(fitted, clustered: Dataset) -> None:
    model = fitted["itemknn"]
    rec = model.recommend(users=["u00", "u20"], k=5)
    assert rec.users == ["u00", "u20"]
    assert rec.items.shape == (2, 5)
    np.testing.assert_array_equal(rec.item_ids, model.item_ids_[rec.items])
    # Nothing from the user's own history, and everything from the user's own group.
    for row, user in enumerate(("u00", "u20")):
        history = set(clustered.histories(clustered.user_index([user])).items.tolist())
        assert not history & set(rec.items[row].tolist())
    assert (rec.items[0] < 20).all() and (rec.items[1] >= 20).all()
    # Scores best first, equal to score() at those items.
    assert (np.diff(rec.scores, axis=1) <= 0).all()
    full = model.score(model.histories_for(["u00"]))[0]
    np.testing.assert_allclose(rec.scores[0], full[rec.items[0]])


def test_recommend_sequences_by_external_item_id(fitted) -> None:
    rec = fitted["itemknn"].recommend(sequences=[GROUP_A, ["25"]], k=3)
    assert rec.users is None
    assert not set(rec.item_ids[0]) & set(GROUP_A)
    assert all(int(i) < 20 for i in rec.item_ids[0])
    assert all(int(i) >= 20 and i != "25" for i in rec.item_ids[1])


def test_recommend_exclude_seen_false_keeps_history(fitted) -> None:
    pop = fitted["pop"]
    best = int(np.argmax(pop.counts_))
    seen = pop.recommend(sequences=[[str(best)]], k=1, exclude_seen=False)
    assert seen.items[0, 0] == best
    unseen = pop.recommend(sequences=[[str(best)]], k=1)
    assert unseen.items[0, 0] != best


def test_recommend_errors(fitted) -> None:
    model = fitted["pop"]
    with pytest.raises(ValueError, match="exactly one"):
        model.recommend(k=3)
    with pytest.raises(ValueError, match="exactly one"):
        model.recommend(users=["u00"], sequences=[["1"]])
    with pytest.raises(KeyError, match="unknown user id 'nobody'"):
        model.recommend(users=["u00", "nobody"])
    with pytest.raises(KeyError, match="unknown item id '999'"):
        model.recommend(sequences=[["1"], ["2", "999"]])


def test_save_before_fit_and_bad_directories(tmp_path: Path, fitted) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        ItemKNN().save(tmp_path / "x")
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        models.load(tmp_path)
    path = fitted["pop"].save(tmp_path / "pop")
    with pytest.raises(ValueError, match="holds a 'pop' model"):
        ALS.load(path)
    with pytest.raises(ValueError, match="unknown model"):
        create("nope")


# ---------------------------------------------------------------------- save / load


def _probe(model) -> Histories:
    """Every training user, a grown history, and two fresh sequences."""
    known = model.history_
    grown = Histories.concat_rows(
        model.history_.take([0]), Histories.from_sequences([[5]], users=[0])
    )
    fresh = Histories.from_sequences([[1, 4, 7], [21, 30]])
    batch = known
    for extra in (grown, fresh):
        batch = Histories(
            indptr=np.concatenate([batch.indptr, extra.indptr[1:] + batch.indptr[-1]]),
            items=np.concatenate([batch.items, extra.items]),
            timestamps=np.concatenate([batch.timestamps, extra.timestamps]),
            events=np.concatenate([batch.events, extra.events]),
            values=np.concatenate([batch.values, extra.values]),
            users=np.concatenate([batch.users, extra.users]),
        )
    return batch


@pytest.mark.parametrize("name", list(MODELS))
def test_save_load_round_trip_gives_identical_scores(name: str, fitted, tmp_path: Path) -> None:
    model = fitted[name]
    path = model.save(tmp_path / name, info={"trained_on": "clustered"})
    assert {p.name for p in path.iterdir()} == {"config.json", "state.safetensors", "ids.json"}
    config = json.loads((path / "config.json").read_text())
    assert config["model"] == model.name
    assert config["params"] == model.get_params()
    assert config["info"] == {"trained_on": "clustered"}
    ids = json.loads((path / "ids.json").read_text())
    assert ids["items"] == [str(j) for j in range(40)]
    assert ids["users"][0] == "u00"

    for back in (models.load(path), type(model).load(path)):
        assert type(back) is type(model)
        assert back.get_params() == model.get_params()
        np.testing.assert_array_equal(back.user_ids_, model.user_ids_)
        np.testing.assert_array_equal(back.item_ids_, model.item_ids_)
        for field in ("indptr", "items", "timestamps", "events", "values", "users"):
            np.testing.assert_array_equal(
                getattr(back.history_, field), getattr(model.history_, field)
            )
        probe = _probe(model)
        np.testing.assert_array_equal(back.score(probe), model.score(probe))
        a = back.recommend(users=["u03", "u17"], k=5)
        b = model.recommend(users=["u03", "u17"], k=5)
        np.testing.assert_array_equal(a.items, b.items)
        np.testing.assert_array_equal(a.scores, b.scores)


@pytest.mark.parametrize("name", list(MODELS))
def test_score_for_unknown_users(name: str, fitted) -> None:
    model = fitted[name]
    fresh = Histories.from_sequences([[1, 4, 7], [], [21, 30]])
    assert (fresh.users == UNKNOWN_USER).all()
    scores = model.score(fresh)
    assert scores.shape == (3, 40)
    assert np.isfinite(scores).all()
    # A raw sequence equal to group-A user u00's history, without the user index.
    known = model.history_.take([0])
    as_unknown = Histories(
        known.indptr,
        known.items,
        known.timestamps,
        known.events,
        known.values,
        np.array([UNKNOWN_USER]),
    )
    unknown_scores = model.score(as_unknown)[0]
    if name in ("itemknn", "pop", "recent-pop", "bias", "content", "sasrec", "gru4rec", "fused"):
        # These ignore the user index: identical to the known user's scores. (The neural models'
        # behaviour after real training is checked in tests/test_neural.py.)
        np.testing.assert_allclose(unknown_scores, model.score(known)[0], rtol=1e-6)
    else:
        # Folded in from the items alone, still on the user's side of the catalog.
        assert unknown_scores[:20].mean() > unknown_scores[20:].mean()
        assert (
            int(np.argmax(np.where(np.isin(np.arange(40), known.items), -np.inf, unknown_scores)))
            < 20
        )


# ---------------------------------------------------------------------- get_params


def test_get_params_and_repr() -> None:
    assert ALS().get_params() == {
        "factors": 64,
        "regularization": 0.05,
        "alpha": 2.0,
        "iterations": 15,
        "seed": 0,
    }
    assert BPR(factors=3, seed=4).get_params() == {
        "factors": 3,
        "learning_rate": 0.01,
        "regularization": 0.01,
        "iterations": 100,
        "fold_in_steps": 500,
        "seed": 4,
    }
    assert ItemKNN(neighbors=5).get_params() == {"neighbors": 5}
    assert Popularity().get_params() == {"window": None}
    assert MODELS["recent-pop"]().get_params() == {"window": 0.1}
    assert BiasBaseline().get_params() == {"reg_user": 5.0, "reg_item": 10.0, "iterations": 10}
    assert repr(Popularity(window=0.5)) == "Popularity(window=0.5)"
    assert create("als", factors=8).factors == 8


# ---------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("name", ["itemknn", "als", "bpr"])
def test_personalised_models_follow_the_sequence_group(name: str, fitted) -> None:
    model = fitted[name]
    rec = model.recommend(sequences=[GROUP_A, GROUP_B], k=5)
    in_a = rec.items[0] < 20
    in_b = rec.items[1] >= 20
    # The best item is from the sequence's own group, and (almost) the whole top 5 too.
    assert in_a[0] and in_b[0]
    minimum = 4 if name == "bpr" else 5  # BPR's SGD is noisier on 360 events
    assert in_a.sum() >= minimum and in_b.sum() >= minimum
    # On average the own group scores higher than the other group.
    scores = model.score(Histories.from_sequences([[int(i) for i in GROUP_A]]))[0]
    assert scores[:20].mean() > scores[20:].mean()


@pytest.mark.parametrize("name", ["itemknn", "als", "bpr"])
def test_personalised_models_for_known_users(name: str, fitted) -> None:
    rec = fitted[name].recommend(users=["u01", "u16"], k=3)
    assert rec.items[0, 0] < 20 and rec.items[1, 0] >= 20


def test_bpr_always_fits_the_user_vector_to_the_history(fitted) -> None:
    model = fitted["bpr"]
    rows = model.history_.take([0, 1, 2])
    vectors = model.user_vectors(rows)
    # Fitted to the items, not looked up: the user index plays no part...
    anonymous = Histories(
        rows.indptr, rows.items, rows.timestamps, rows.events, rows.values, np.full(3, UNKNOWN_USER)
    )
    np.testing.assert_allclose(model.user_vectors(anonymous), vectors)
    # ...nor does the batch a row is scored in, and the item-bias coordinate stays 1.
    np.testing.assert_allclose(model.user_vectors(rows.take([1]))[0], vectors[1], rtol=1e-6)
    assert np.all(vectors[:, -1] == 1.0)
    # A new event moves the vector.
    grown = Histories.concat_rows(rows.take([0]), Histories.from_sequences([[25]], users=[0]))
    assert not np.allclose(model.user_vectors(grown)[0], vectors[0])


@pytest.mark.parametrize("cls", [ALS])
def test_factor_models_fold_in_a_grown_history(cls, fitted) -> None:
    model = fitted[cls.name]
    base = model.history_.take([0])
    # Unchanged history: the learned vector is used.
    np.testing.assert_allclose(model.user_vectors(base)[0], model.user_factors_[0])
    # One more event: folded in, so the vector (and the scores) move.
    grown = Histories.concat_rows(base, Histories.from_sequences([[25]], users=[0]))
    assert not np.allclose(model.user_vectors(grown)[0], model.user_factors_[0])
    # Folded-in vectors do not depend on the user index, only on the items.
    as_unknown = Histories(
        grown.indptr,
        grown.items,
        grown.timestamps,
        grown.events,
        grown.values,
        np.array([UNKNOWN_USER]),
    )
    np.testing.assert_allclose(model.score(grown), model.score(as_unknown), rtol=1e-5)


def test_als_folds_in_a_changed_history_of_the_same_length(fitted, clustered, tmp_path) -> None:
    model = fitted["als"]
    base = model.history_.take([0])
    other = next(i for i in range(model.n_items) if i not in set(base.items.tolist()))
    changed = Histories(
        base.indptr,
        np.concatenate([base.items[:-1], [other]]).astype(np.int32),
        base.timestamps,
        base.events,
        base.values,
        base.users,
    )
    assert not np.allclose(model.user_vectors(changed)[0], model.user_factors_[0])
    np.testing.assert_allclose(
        model.user_vectors(changed)[0], model._fold_in(changed)[0], rtol=1e-6
    )
    # the same items in another order (and repeated) are the same history to ALS
    shuffled = Histories.from_sequences([[*base.items[::-1].tolist(), base.items[0]]], users=[0])
    np.testing.assert_allclose(model.user_vectors(shuffled)[0], model.user_factors_[0])
    # histories replaced after fit (update_histories) are never served the stale vector
    copy = ALS.load(model.save(tmp_path / "als"))
    events = clustered.events[clustered.events["user"] != 0]
    copy.update_histories(clustered.with_events(events))
    assert len(copy.history_.take([0]).items) == 0
    np.testing.assert_allclose(copy.user_vectors(copy.history_.take([0]))[0], 0.0, atol=1e-6)


def test_als_fold_in_matches_implicit_user_solve(fitted) -> None:
    from implicit.cpu.als import AlternatingLeastSquares

    model = fitted["als"]
    sequences = Histories.from_sequences([model.history_.row(i) for i in range(3)])
    reference = AlternatingLeastSquares(
        factors=model.factors, regularization=model.regularization, alpha=model.alpha
    )
    reference.item_factors = model.item_factors_.copy()
    reference.user_factors = model.user_factors_.copy()
    expected = reference.recalculate_user(np.arange(3), sequences.to_csr(model.n_items))
    np.testing.assert_allclose(model.user_vectors(sequences), expected, rtol=1e-3, atol=1e-5)


def test_itemknn_cosine_similarity_by_hand() -> None:
    # a: users {0, 1, 2}, b: {0, 1}, c: {2}
    #   cos(a, b) = 2 / (sqrt 3 * sqrt 2) = 0.816497 ; cos(a, c) = 1 / sqrt 3 ; cos(b, c) = 0
    ds = Dataset.from_frames(
        pd.DataFrame(
            {
                "user": ["u0", "u0", "u1", "u1", "u2", "u2"],
                "item": ["a", "b", "a", "b", "c", "a"],
                "timestamp": [0, 1, 0, 1, 0, 1],
            }
        )
    )
    model = ItemKNN().fit(ds)
    scores = model.score(Histories.from_sequences([[1], [1, 2]]))
    np.testing.assert_allclose(scores[0], [2 / math.sqrt(6), 1, 0], rtol=1e-6)
    # A history scores by summed similarity: b + c -> a: 0.8165 + 0.5774
    np.testing.assert_allclose(scores[1, 0], 2 / math.sqrt(6) + 1 / math.sqrt(3), rtol=1e-6)
    rec = model.recommend(sequences=[["b"]], k=2)
    assert rec.item_ids[0].tolist() == ["a", "c"]


# ---------------------------------------------------------------------- popularity


def _pop_dataset() -> Dataset:
    """Items a, b, c -> 0, 1, 2. Eight events at times 0..7 (rows grouped by user, so row order
    is not time order):
        t0-t3: a, a, a, a       t4: b   t5: b   t6: a   t7: c
    all-time counts a 5, b 2, c 1 ; latest half (t4-t7) a 1, b 2, c 1 ; latest 10% (t7) c 1
    """
    return Dataset.from_frames(
        pd.DataFrame(
            {
                "user": ["u0", "u0", "u1", "u1", "u2", "u2", "u3", "u3"],
                "item": ["a", "b", "a", "b", "a", "a", "a", "c"],
                "timestamp": [0, 4, 1, 5, 2, 6, 3, 7],
            }
        )
    )


def test_popularity_ranks_most_consumed_first(clustered: Dataset) -> None:
    ds = _pop_dataset()
    model = Popularity().fit(ds)
    np.testing.assert_array_equal(model.counts_, [5, 2, 1])
    rec = model.recommend(sequences=[[]], k=3)
    assert rec.item_ids[0].tolist() == ["a", "b", "c"]
    np.testing.assert_array_equal(rec.scores[0], [5, 2, 1])
    # Same for every row, known or not.
    scores = model.score(Histories.from_sequences([[0], []]))
    np.testing.assert_array_equal(scores, [[5, 2, 1], [5, 2, 1]])
    # On the clustered data the most consumed item is first for a fresh user.
    pop = Popularity().fit(clustered)
    events = np.bincount(clustered.events["item"], minlength=40)
    assert pop.recommend(sequences=[[]], k=1).items[0, 0] == int(np.argmax(events))


def test_popularity_window_counts_only_latest_events() -> None:
    ds = _pop_dataset()
    half = Popularity(window=0.5).fit(ds)
    np.testing.assert_array_equal(half.counts_, [1, 2, 1])
    # b first; a and c tie at 1 -> lower index a first.
    assert half.recommend(sequences=[[]], k=3).item_ids[0].tolist() == ["b", "a", "c"]
    recent = MODELS["recent-pop"]().fit(ds)  # window 0.1: int(8 * 0.9) = 7 -> only t7
    np.testing.assert_array_equal(recent.counts_, [0, 0, 1])
    np.testing.assert_array_equal(Popularity(window=1.0).fit(ds).counts_, [5, 2, 1])


@pytest.mark.parametrize("window", [0, -0.1, 1.5])
def test_popularity_rejects_bad_window(window: float) -> None:
    with pytest.raises(ValueError, match="window"):
        create("pop", window=window)


# ---------------------------------------------------------------------- bias baseline


def _ratings() -> Dataset:
    """Items bad, good, mid -> 0, 1, 2. "good" rated 5 by u1, u2, u3; "bad" rated 1 by all three;
    "mid" rated 3 by u1. Mean = (15 + 3 + 3) / 7 = 3.

    With reg_item = 10: b_good = (3 * 2) / (3 + 10) = 6/13, b_bad = -6/13, b_mid = 0 / 11 = 0.
    Every user's residuals then sum to 0, so every user bias is 0 and the fit is stable.
    """
    users = ["u1", "u1", "u1", "u2", "u2", "u3", "u3"]
    items = ["good", "bad", "mid", "good", "bad", "good", "bad"]
    values = [5.0, 1.0, 3.0, 5.0, 1.0, 5.0, 1.0]
    return Dataset.from_frames(
        pd.DataFrame(
            {
                "user": users,
                "item": items,
                "timestamp": range(7),
                "event": "rating",
                "value": values,
            }
        )
    )


def test_bias_baseline_by_hand() -> None:
    model = BiasBaseline().fit(_ratings())
    assert model.mean_ == pytest.approx(3.0)
    np.testing.assert_allclose(model.item_bias_, [-6 / 13, 6 / 13, 0], atol=1e-6)
    # A known user: bias 0 -> 3 + b_i
    history = model.histories_for(["u1", "u1", "u2"])
    predicted = model.predict_ratings(history, np.array([1, 0, 2]))
    np.testing.assert_allclose(predicted, [3 + 6 / 13, 3 - 6 / 13, 3.0], atol=1e-5)
    # The good item outranks the middling one, which outranks the bad one.
    assert model.recommend(sequences=[[]], k=3).item_ids[0].tolist() == ["good", "mid", "bad"]


def test_bias_baseline_without_regularisation_recovers_ratings() -> None:
    model = BiasBaseline(reg_user=0.0, reg_item=0.0).fit(_ratings())
    # b_good = 2, b_bad = -2, b_mid = 0 and user biases 0: predictions equal the ratings.
    history = model.histories_for(["u1", "u2", "u1"])
    np.testing.assert_allclose(
        model.predict_ratings(history, np.array([1, 0, 2])), [5, 1, 3], atol=1e-5
    )


def test_bias_baseline_new_user() -> None:
    model = BiasBaseline().fit(_ratings())
    # A new user who rated "mid" 5: residual 5 - 3 - 0 = 2 -> bias 2 / (1 + reg_user 5) = 1/3.
    fresh = Histories(
        indptr=np.array([0, 1, 1], np.int64),
        items=np.array([2], np.int32),
        timestamps=np.array([0], np.int64),
        events=np.array([5], np.int8),
        values=np.array([5.0], np.float32),
        users=np.array([UNKNOWN_USER, UNKNOWN_USER], np.int64),
    )
    np.testing.assert_allclose(model.user_bias(fresh), [1 / 3, 0], atol=1e-6)
    predicted = model.predict_ratings(fresh, np.array([1, 1]))
    np.testing.assert_allclose(predicted, [3 + 1 / 3 + 6 / 13, 3 + 6 / 13], atol=1e-5)
    # Ranking ignores the user: the item bias for every row.
    np.testing.assert_allclose(model.score(fresh), np.tile(model.item_bias_, (2, 1)))


def test_popularity_window_share_is_exact() -> None:
    # Ten events at times 0..9: item a at t0, t1, item b at t2..t9. The latest 80% is t2..t9,
    # eight b events and no a.
    ds = Dataset.from_frames(
        pd.DataFrame({"user": ["u"] * 10, "item": ["a"] * 2 + ["b"] * 8, "timestamp": range(10)})
    )
    np.testing.assert_array_equal(Popularity(window=0.8).fit(ds).counts_, [0, 8])


def test_factor_models_have_the_retrieval_contract_and_neighbour_models_do_not(fitted) -> None:
    for name in ("als", "bpr"):
        model = fitted[name]
        assert isinstance(model, Factorised) and model.item_bias() is None
        probe = model.history_.take([0, 5])
        inner = model.query_vectors(probe) @ model.item_vectors().T
        np.testing.assert_allclose(inner, model.score(probe), rtol=1e-5, atol=1e-5)
    assert not isinstance(fitted["itemknn"], Factorised)
    assert not isinstance(fitted["pop"], Factorised)


def test_als_saved_before_the_fingerprints_still_loads_and_a_bad_one_is_refused(
    fitted, tmp_path
) -> None:
    from safetensors.numpy import load_file, save_file

    model = fitted["als"]
    path = model.save(tmp_path / "als")
    state = load_file(str(path / "state.safetensors"))
    del state["learned_items"]
    save_file(state, str(path / "state.safetensors"))
    probe = model.history_.take([0, 3])
    np.testing.assert_allclose(models.load(path).score(probe), model.score(probe), rtol=1e-6)
    state["learned_items"] = np.zeros(2, np.uint64)  # not one per user
    save_file(state, str(path / "state.safetensors"))
    with pytest.raises(DataFormatError, match="learned_items"):
        models.load(path)


def test_id_lookups_are_built_once_per_id_array(fitted) -> None:
    """Requests reuse one look-up table of the ids; a new ids array (add_items) gets its own."""
    model = copy.deepcopy(fitted["pop"])
    model.item_indices(["1"])
    table = model._id_indexes["item"][1]
    model.recommend(["u00"], k=3)
    model.recommend(sequences=[["1", "2"]], k=3)
    assert model._id_indexes["item"][1] is table
    model.item_ids_ = np.concatenate([model.item_ids_, ["new"]])
    assert model.item_indices(["new", "1", "nope"]).tolist() == [
        len(model.item_ids_) - 1,
        table["1"],
        -1,
    ]
    assert model._id_indexes["item"][1] is not table


def test_als_fold_in_advanced_by_new_events_equals_solving_it_again(fitted) -> None:
    model = fitted["als"]
    assert isinstance(model, Incremental) and not isinstance(fitted["bpr"], Incremental)
    events = model.history_events(str(model.user_ids_[0]))
    events += events[:2]  # items seen again count once, as in the fold-in
    state = model.start(events[:3])
    for n in range(3, len(events)):
        state = model.advance(state, events[n : n + 1])
    full = model.query_vectors(model.query_histories(events=[events]))[0]
    np.testing.assert_allclose(model.query_vector(state), full, rtol=1e-5, atol=1e-6)

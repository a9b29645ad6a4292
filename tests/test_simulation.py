"""Simulated users (evaluation/simulation.py): the click model by hand, the population's
known future, and a closed loop in which a live tracker beats the same model frozen."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from driftrec.data.synthetic import SyntheticConfig, generate
from driftrec.evaluation.experiment import train_model
from driftrec.evaluation.replay import scratch_tracker
from driftrec.evaluation.simulation import (
    ClickModel,
    Population,
    Simulation,
    TrackerPlatform,
    simulate,
)
from driftrec.evaluation.tracking import Truth
from driftrec.models import create
from driftrec.tracking import Catalog


def test_clicks_follow_position_bias_times_interest_by_hand() -> None:
    model = ClickModel(p_max=0.5)
    # slot r is examined with probability 1 / log2(r + 2): 1, 0.631, 0.5
    probabilities = model.probabilities(np.array([1.0, 1.0, 0.4]))
    assert probabilities == pytest.approx([0.5, 0.5 / np.log2(3), 0.5 * 0.4 / 2])
    assert model.expected_ctr(np.array([1.0, 1.0, 0.4])) == pytest.approx(
        1 - (1 - 0.5) * (1 - 0.5 / np.log2(3)) * (1 - 0.1)
    )
    assert model.expected_ctr(np.zeros(10)) == 0.0
    # the best list for a user 70% into one category: every slot at interest 0.7
    assert model.best_ctr(np.array([0.7, 0.3]), 3) == model.expected_ctr(np.full(3, 0.7))
    rng = np.random.default_rng(0)
    draws = [model.click(np.array([1.0, 1.0]), rng) for _ in range(4_000)]
    assert set(draws) == {0, 1, None}  # the highest slot that drew a click
    assert np.mean([d == 0 for d in draws]) == pytest.approx(0.5, abs=0.03)


@pytest.fixture(scope="module")
def population() -> tuple[Truth, Population, object]:
    truth = Truth.from_synthetic(generate(SyntheticConfig(n_users=80, n_items=300, seed=4)))
    train, population = Population.split(truth, 0.5)
    return truth, population, train


def test_the_population_lives_its_generated_future(population) -> None:  # type: ignore[no-untyped-def]
    truth, people, train = population
    assert train.n_events + sum(len(r) for r in people.rows) <= truth.dataset.n_events
    u = 0
    rows = people.rows[u]
    assert people.interest(u, 0) == pytest.approx(truth.mixtures[rows[0]])
    assert people.interest(u, 10_000) == pytest.approx(truth.mixtures[rows[-1]])  # it holds
    for s in people.shifts().itertuples(index=False):  # each begins at a known session
        user = truth.dataset.user_index([people.users[s.user]])[0]
        firsts = truth.shifts.loc[truth.shifts["user"] == user, "first_row"]
        rows = people.rows[s.user]
        assert any(rows[s.session - 1] < f <= rows[s.session] for f in firsts)
    had = people.had[u]  # what the user had before the split
    index = truth.dataset.user_index([people.users[u]])[0]
    assert had == set(train.events[train.events["user"] == index]["item"].tolist()) - {-1}


def _simulate(truth: Truth, people: Population, model: object, live: bool) -> Simulation:
    """15 sessions a user against the tracker over ``model``, which hears of the users' own
    events and clicks only when ``live`` (else answers from its training state)."""
    with tempfile.TemporaryDirectory() as scratch:
        catalog = Catalog.from_dataset(truth.dataset)
        tracker = scratch_tracker(
            model, catalog, Path(scratch) / "s.db", len(people.users), follow=live
        )

        try:
            return simulate(people, TrackerPlatform(tracker), 15)
        finally:
            tracker.close()
            tracker.store.close()


def test_a_live_tracker_keeps_users_clicking_where_a_frozen_model_does_not(population) -> None:  # type: ignore[no-untyped-def]
    truth, people, train = population
    model = train_model(create("als", factors=16, seed=0), train)
    live, frozen = (_simulate(truth, people, model, live) for live in (True, False))
    assert len(live.clicked) == 15 * len(people.users)
    # the frozen model shows the same items again; users do not click what they already had
    assert live.ctr() > 1.4 * frozen.ctr(), (live.summary(), frozen.summary())
    assert live.summary()["expected_ctr"] > 1.4 * frozen.summary()["expected_ctr"]
    assert set(live.recovery().columns) == {
        "user",
        "kind",
        "level",
        "sessions",
        "events",
        "censored",
    }
    assert (live.best >= live.expected - 1e-12).all()  # nothing beats the best list
    assert live.best == pytest.approx(frozen.best)  # the same users, the same interests

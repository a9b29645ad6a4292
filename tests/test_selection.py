"""Automatic model selection (evaluation/selection.py, `train -m auto`): candidates scored on
validation data only, successive halving of the neural ones within the budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clitools import assert_input_error, cli, ok

from driftrec.data.dataset import Dataset
from driftrec.errors import InputError
from driftrec.evaluation.selection import parse_duration, select_model
from driftrec.models import load


def test_the_winner_is_the_best_on_validation_and_halving_keeps_the_better_half(
    data_dir: Path,
) -> None:
    """Four neural candidates that never converge within the slices (patience and epochs out
    of reach): three rungs, four, then the better two, then the best one training on from
    their checkpoints; the leaderboard is ordered by validation score."""
    dataset = Dataset.load(data_dir)
    slow = {"epochs": 500, "patience": 500}
    tried = [
        ("pop", {}),
        ("itemknn", {"neighbors": 20}),
        ("gru4rec", {**slow, "dropout": 0.2}),
        ("gru4rec", {**slow, "dropout": 0.5}),
        ("sasrec", {**slow, "dropout": 0.2}),
        ("sasrec", {**slow, "dropout": 0.5}),
    ]
    lines: list[str] = []
    selection = select_model(dataset, 6.0, tried=tried, report=lines.append, min_slice=0.5)
    scores = [t.score for t in selection.trials]
    assert scores == sorted(scores, reverse=True)
    neural = sorted((t for t in selection.trials if t.rungs), key=lambda t: t.rungs)
    assert [t.rungs for t in neural] == [1, 1, 2, 3]  # log2(4) + 1 rungs, halved each time
    assert [t.status for t in neural] == ["eliminated", "eliminated", "eliminated", "budget"]
    assert sum(line.startswith("rung 3/3") for line in lines) == 1
    # one epoch each first, which measures what an epoch of each costs
    assert sum(line.startswith("first epoch") for line in lines) == 4
    assert all(t.epoch_seconds > 0 for t in neural)
    assert len(selection.leaderboard()) == len(tried)


def test_a_neural_winner_keeps_its_own_settings_not_the_selections(data_dir: Path) -> None:
    dataset = Dataset.load(data_dir)
    selection = select_model(dataset, 10.0, tried=[("gru4rec", {"epochs": 3})], min_slice=0.5)
    params = selection.winner.get_params()
    assert (params["time_budget"], params["checkpoint_dir"], params["epochs"]) == (None, None, 3)
    assert selection.winner.train_config.time_budget is None  # derived again


def test_a_cheap_winner_is_refitted_on_every_event(data_dir: Path) -> None:
    dataset = Dataset.load(data_dir)
    selection = select_model(dataset, 30.0, tried=[("pop", {}), ("itemknn", {"neighbors": 20})])
    assert selection.trials[0].model == "itemknn"
    assert selection.winner.history_.items.shape[0] == len(dataset.item_events())


def test_durations_and_bad_budgets() -> None:
    assert parse_duration("90") == 90 and parse_duration("30m") == 1800
    assert parse_duration("1.5h") == 5400 and parse_duration(" 45s ") == 45
    for bad in ("soon", "0", "-5m", "m"):
        with pytest.raises(InputError, match="time-budget"):
            parse_duration(bad)


def test_train_auto_saves_the_winner_with_its_leaderboard(data_dir: Path, tmp_path: Path) -> None:
    stdout = ok(cli("train", data_dir, "-m", "auto", "--time-budget", "60s", "-o", tmp_path / "m"))
    assert "leaderboard" in stdout and "chose" in stdout
    info = json.loads((tmp_path / "m" / "config.json").read_text())["info"]
    board = info["auto"]["leaderboard"]
    assert board[0]["valid"]["NDCG@10"] == max(t["valid"].get("NDCG@10", -1) for t in board)
    assert {t["model"] for t in board} >= {"pop", "itemknn", "als", "sasrec", "gru4rec"}
    chosen = load(tmp_path / "m")
    assert chosen.name == board[0]["model"]
    if chosen.stops_early:  # the selection's budget and scratch directory are not kept
        assert chosen.get_params()["time_budget"] is None
        assert chosen.get_params()["checkpoint_dir"] is None


def test_auto_refuses_what_it_chooses_itself(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    assert_input_error(
        cli("train", data_dir, "-m", "auto", "-p", "factors=8", "-o", out), "--param"
    )
    assert_input_error(
        cli("train", data_dir, "-m", "als", "--time-budget", "1m", "-o", out), "-m auto"
    )
    assert_input_error(
        cli("train", data_dir, "-m", "auto", "--time-budget", "later", "-o", out), "later"
    )

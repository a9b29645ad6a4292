"""Bad input to the models is an `InputError` in one line, never a traceback or a silent mess.

Parameter ranges are declared once per model and checked by `create` and `fit`; broken model
directories are `DataFormatError`s naming the file; `save` refuses a regular file in the way;
excluded items never come back in a ranking however large k is; fitting on no item events is
refused. Data is tiny (a clustered 30 x 40 dataset, a 40-user synthetic one for the CLI).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clitools import assert_input_error, cli
from tinydata import clustered as clustered_dataset

from driftrec import models
from driftrec.data.dataset import Dataset
from driftrec.errors import DataFormatError, InputError, UnknownIdError
from driftrec.models import MODELS, create
from driftrec.models.base import Recommendations
from driftrec.models.factorization import ALS
from driftrec.models.neural import NeuralSequenceModel
from driftrec.models.popularity import Popularity
from driftrec.models.sasrec import SASRec
from driftrec.params import choice, integer, number, optional

TINY: dict[str, dict] = {
    "als": {"factors": 8, "iterations": 3},
    "itemknn": {},
    "pop": {},
    "sasrec": {"hidden": 8, "heads": 1, "layers": 1, "epochs": 2, "progress": False},
}


@pytest.fixture(scope="module")
def clustered() -> Dataset:
    return clustered_dataset()


@pytest.fixture(scope="module")
def saved(clustered: Dataset, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A saved directory of each tiny model, never modified (tests corrupt copies)."""
    root = tmp_path_factory.mktemp("saved")
    return {name: create(name, **p).fit(clustered).save(root / name) for name, p in TINY.items()}


def _copy(source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source, tmp_path / source.name))


@pytest.fixture(scope="module")
def als_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ALS as `train` saves it (trained here: these tests are about `recommend`)."""
    model = create("als", **TINY["als"]).fit(Dataset.load(data_dir))
    return model.save(tmp_path_factory.mktemp("models") / "als", info={"dataset": str(data_dir)})


# ---------------------------------------------------------------------- 1. parameter ranges
@pytest.mark.parametrize("name", list(MODELS))
def test_every_parameter_has_exactly_one_rule_and_the_defaults_pass(name: str) -> None:
    model = MODELS[name]()
    assert set(type(model).param_rules) == set(model.get_params()), name
    model._validate_params()


def test_neural_models_share_the_training_rules_declared_once() -> None:
    for name in ("sasrec", "gru4rec", "fused"):
        rules = type(MODELS[name]()).param_rules
        for key, rule in NeuralSequenceModel.param_rules.items():
            assert rules[key] is rule, (name, key)


def test_create_names_model_parameter_range_and_value() -> None:
    with pytest.raises(InputError) as err:
        create("als", factors=0)
    assert (
        str(err.value)
        == "parameter 'factors' of model 'als' must be an integer in [1, 65536], got 0"
    )


@pytest.mark.parametrize(
    ("name", "params", "needle"),
    [
        ("als", {"alpha": 0}, "'alpha' of model 'als' must be a number > 0, got 0"),
        ("als", {"seed": -1}, "'seed' of model 'als' must be an integer in [0, "),
        ("bpr", {"learning_rate": -0.1}, "'learning_rate' of model 'bpr' must be a number > 0"),
        ("bpr", {"fold_in_steps": 0}, "'fold_in_steps' of model 'bpr' must be an integer >= 1"),
        (
            "itemknn",
            {"neighbors": 0},
            "'neighbors' of model 'itemknn' must be an integer in [1, 1048576]",
        ),
        ("pop", {"window": 0}, "'window' of model 'pop' must be None or a number in (0, 1]"),
        ("recent-pop", {"window": 1.5}, "'window' of model 'pop' must be None or a number in"),
        ("bias", {"reg_item": -1.0}, "'reg_item' of model 'bias' must be a number >= 0"),
        ("bias", {"iterations": 0}, "'iterations' of model 'bias' must be an integer >= 1"),
        ("content", {"half_life": 0}, "'half_life' of model 'content' must be a number > 0"),
        ("content", {"text_model": ""}, "'text_model' of model 'content' must be a non-empty"),
        (
            "sasrec",
            {"dropout": 1.0},
            "'dropout' of model 'sasrec' must be 'auto' or a number in [0, 1)",
        ),
        ("sasrec", {"loss": "bpr"}, "must be one of 'auto', 'ce', 'sampled', 'gbce', got 'bpr'"),
        (
            "sasrec",
            {"threads": 0},
            "'threads' of model 'sasrec' must be None or an integer in [1, 4096]",
        ),
        ("sasrec", {"learning_rate": float("nan")}, "'learning_rate' of model 'sasrec'"),
        ("gru4rec", {"batch_size": 0}, "'batch_size' of model 'gru4rec' must be an integer in"),
        ("gru4rec", {"warmup_steps": -1}, "'warmup_steps' of model 'gru4rec' must be an integer"),
        ("fused", {"long_len": 0}, "'long_len' of model 'fused' must be an integer in [1, 65536]"),
        ("fused", {"gate_balance": -1}, "'gate_balance' of model 'fused' must be a number >= 0"),
        ("sasrec", {"hidden": 10, "heads": 3}, "hidden must be divisible by heads, got hidden=10"),
        ("als", {"factors": 2.5}, "'factors' of model 'als' must be an integer in [1, 65536]"),
    ],
)
def test_out_of_range_parameters_are_input_errors(name: str, params: dict, needle: str) -> None:
    with pytest.raises(InputError) as err:
        create(name, **params)
    assert needle in str(err.value)


def test_unknown_model_or_parameter_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown model 'nope'"):
        create("nope")
    with pytest.raises(InputError, match="unknown parameter 'bogus' for model 'als'"):
        create("als", bogus=1)


def test_fit_validates_the_same_rules(clustered: Dataset) -> None:
    model = ALS(factors=0, iterations=3)  # the constructor only stores, like scikit-learn
    with pytest.raises(
        InputError, match=r"'factors' of model 'als' must be an integer in \[1, 65536\]"
    ):
        model.fit(clustered)
    assert not model.is_fitted
    with pytest.raises(InputError, match="divisible"):
        SASRec(hidden=10, heads=3, epochs=1, progress=False).fit(clustered)


def test_rule_descriptions() -> None:
    assert number(0, 1, high_open=True).description == "a number in [0, 1)"
    assert number(0, low_open=True).description == "a number > 0"
    assert number().description == "a finite number"
    assert optional(integer(1)).description == "None or an integer >= 1"
    assert choice("a", "b").description == "one of 'a', 'b'"
    assert not integer(0).allows(True) and not integer(0).allows(1.0)
    assert not number().allows(float("inf")) and not number().allows(False)
    assert optional(number(0, 1)).allows(None) and number(0, 1).allows(1)


def test_cli_train_with_a_parameter_out_of_range_exits_2_before_reading_data(
    tmp_path: Path,
) -> None:
    out = tmp_path / "m"
    result = cli("train", tmp_path / "no-data", "-m", "als", "-o", out, "-p", "factors=0")
    assert_input_error(result, "'factors'", "'als'", "integer in [1, 65536]", "got 0")
    assert not out.exists()


# ---------------------------------------------------------------------- 2. broken directories
@pytest.mark.parametrize("name", list(TINY))
@pytest.mark.parametrize("damage", ["half", "random", "empty", "missing"])
def test_a_broken_state_file_is_a_data_format_error(
    name: str, damage: str, saved: dict[str, Path], tmp_path: Path
) -> None:
    path = _copy(saved[name], tmp_path)
    state = path / "state.safetensors"
    raw = state.read_bytes()
    if damage == "missing":
        state.unlink()
    else:
        cut = {"half": raw[: len(raw) // 2], "empty": b""}
        state.write_bytes(cut.get(damage, np.random.default_rng(0).bytes(len(raw))))
    with pytest.raises(DataFormatError, match=r"state\.safetensors"):
        models.load(path)


@pytest.mark.parametrize("name", list(TINY))
def test_ids_json_that_does_not_match_the_state_is_a_data_format_error(
    name: str, saved: dict[str, Path], tmp_path: Path
) -> None:
    path = _copy(saved[name], tmp_path)
    ids = json.loads((path / "ids.json").read_text())
    (path / "ids.json").write_text(json.dumps({**ids, "items": ids["items"][:-5]}))
    with pytest.raises(DataFormatError) as err:
        models.load(path)
    message = str(err.value)
    assert "ids.json: lists 35 items but" in message and "state.safetensors holds 40" in message
    (path / "ids.json").write_text(json.dumps({**ids, "users": ids["users"][1:]}))
    with pytest.raises(DataFormatError, match=r"lists 29 users but .*state\.safetensors holds 30"):
        models.load(path)


@pytest.mark.parametrize(
    ("file", "text", "needle"),
    [
        ("config.json", '{"model": "als",', "config.json: not valid JSON"),
        ("ids.json", '{"users": [1, 2]]', "ids.json: not valid JSON"),
        ("config.json", '{"params": {}}', "config.json: not a driftrec model config"),
        ("config.json", '{"model": "als"}', "config.json: not a driftrec model config"),
        ("config.json", '{"model": "nope", "params": {}}', "unknown model type 'nope'"),
        ("ids.json", '{"items": []}', "ids.json: has no 'users' list"),
    ],
)
def test_malformed_json_files_are_data_format_errors(
    file: str, text: str, needle: str, saved: dict[str, Path], tmp_path: Path
) -> None:
    path = _copy(saved["als"], tmp_path)
    (path / file).write_text(text)
    with pytest.raises(DataFormatError) as err:
        models.load(path)
    assert needle in str(err.value)
    if "valid JSON" in needle:
        assert "at line 1, column" in str(err.value)


def test_a_missing_ids_file_is_a_data_format_error(saved: dict[str, Path], tmp_path: Path) -> None:
    path = _copy(saved["pop"], tmp_path)
    (path / "ids.json").unlink()
    with pytest.raises(DataFormatError, match=r"ids\.json: missing"):
        models.load(path)


@pytest.mark.parametrize(
    ("name", "params", "needle"),
    [
        ("als", {"factors": 0}, "'factors' of model 'als' must be an integer in [1, 65536], got 0"),
        ("als", {"bogus": 1}, "unknown parameter 'bogus' for model 'als'"),
        ("sasrec", {"hidden": 16}, "weights 'item_emb.ids.weight' are (41, 8), but"),
    ],
)
def test_config_params_the_model_rejects_are_data_format_errors(
    name: str, params: dict, needle: str, saved: dict[str, Path], tmp_path: Path
) -> None:
    path = _copy(saved[name], tmp_path)
    config = json.loads((path / "config.json").read_text())
    config["params"].update(params)
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataFormatError) as err:
        models.load(path)
    assert needle in str(err.value)
    assert "config.json" in str(err.value)


def test_loading_into_the_wrong_class_is_a_data_format_error(saved: dict[str, Path]) -> None:
    with pytest.raises(DataFormatError, match="holds a 'pop' model, not 'als'"):
        ALS.load(saved["pop"])


def test_cli_recommend_from_a_corrupted_model_exits_2(als_dir: Path, tmp_path: Path) -> None:
    path = _copy(als_dir, tmp_path)
    raw = (path / "state.safetensors").read_bytes()
    (path / "state.safetensors").write_bytes(raw[: len(raw) // 2])
    assert_input_error(cli("recommend", path, "--user", "u1"), "state.safetensors")


# ---------------------------------------------------------------------- 3. save onto a file
def test_save_onto_a_regular_file_is_an_input_error(clustered: Dataset, tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("not a directory")
    model = Popularity().fit(clustered)
    for target in (blocker, blocker / "below"):
        with pytest.raises(InputError, match="exists and is not a directory"):
            model.save(target)
    assert blocker.read_text() == "not a directory"


def test_cli_train_onto_a_regular_file_exits_2(data_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("")
    result = cli("train", data_dir, "-m", "pop", "-o", blocker, "--protocol", "all")
    assert_input_error(result, "taken", "not a directory")


# ---------------------------------------------------------------------- 4. seen items stay out
def test_seen_items_never_come_back_however_large_k(clustered: Dataset) -> None:
    model = ALS(factors=8, iterations=3).fit(clustered)
    users = ["u00", "u20"]
    recs = model.recommend(users, k=100_000)
    seen = [set(model.histories_for([u]).items.tolist()) for u in users]
    assert recs.lengths.tolist() == [40 - len(s) for s in seen]
    assert recs.items.shape == (2, max(recs.lengths))
    for row, user_seen in enumerate(seen):
        real = recs.items[row, : recs.lengths[row]]
        assert len(set(real.tolist())) == len(real) and not set(real.tolist()) & user_seen
        assert np.isfinite(recs.scores[row, : recs.lengths[row]]).all()
    frame = recs.to_frame()
    assert len(frame) == sum(recs.lengths) and frame["item"].notna().all()
    per_user = frame.groupby("user")["rank"].max().to_dict()
    assert per_user == dict(zip(users, recs.lengths, strict=True))
    everything = model.recommend(users, k=100_000, exclude_seen=False)
    assert everything.lengths.tolist() == [40, 40]
    assert sorted(everything.items[0].tolist()) == list(range(40))


def test_short_rows_are_padded_past_their_length() -> None:
    scores = np.array([[0.5, -np.inf, 0.9], [-np.inf, -np.inf, -np.inf], [1, 2, 3]], np.float32)
    recs = Recommendations.best(scores, 5, np.array(["a", "b", "c"], object), ["x", "y", "z"])
    assert recs.lengths.tolist() == [2, 0, 3]
    np.testing.assert_array_equal(recs.items, [[2, 0, -1], [-1, -1, -1], [2, 1, 0]])
    assert recs.item_ids.tolist() == [["c", "a", None], [None] * 3, ["c", "b", "a"]]
    assert np.isnan(recs.scores[0, 2]) and np.isnan(recs.scores[1]).all()
    frame = recs.to_frame()
    assert frame["user"].tolist() == ["x", "x", "z", "z", "z"]
    assert frame["rank"].tolist() == [1, 2, 1, 2, 3]
    assert frame["item"].tolist() == ["c", "a", "c", "b", "a"]
    nothing = Recommendations.best(scores[1:2], 5, np.array(["a", "b", "c"], object))
    assert nothing.items.shape == (1, 0) and nothing.to_frame().empty


def test_cli_recommend_with_k_beyond_the_catalog_lists_only_unseen_items(
    als_dir: Path,
) -> None:
    model = models.load(als_dir)
    user = str(model.user_ids_[0])
    seen = {str(model.item_ids_[i]) for i in model.histories_for([user]).items}
    result = cli("recommend", als_dir, "--user", user, "-k", "1000")
    assert result.exit_code == 0, (result.output, result.exception)
    items = [
        line.strip().strip("│").split("│")[2].strip()
        for line in result.stdout.splitlines()
        if line.lstrip().startswith("│")
    ]
    assert len(items) == model.n_items - len(seen) and not set(items) & seen


# ---------------------------------------------------------------------- 5. nothing to learn
def test_fitting_on_no_item_events_is_an_input_error() -> None:
    text_only = Dataset.from_frames(
        pd.DataFrame({"user": ["u1"], "item": [None], "timestamp": [1], "text": ["jazz"]}),
        items=pd.DataFrame({"item": ["i1", "i2"]}),
        name="searches",
    )
    empty = text_only.with_events(text_only.events.iloc[:0])
    for dataset in (text_only, empty):
        for name in ("pop", "als", "sasrec"):
            with pytest.raises(InputError, match="'searches' has no item events to learn from"):
                create(name, **TINY.get(name, {})).fit(dataset)


# ---------------------------------------------------------------------- 6. user-facing errors
def test_user_facing_errors_are_input_errors(clustered: Dataset) -> None:
    pop = Popularity().fit(clustered)
    with pytest.raises(InputError, match="k must be an integer >= 1, got 0"):
        pop.recommend(["u00"], k=0)
    with pytest.raises(InputError, match=r"text_weight must be a number in \[0, 1\]"):
        pop.recommend(["u00"], text="jazz", text_weight=2.0)
    with pytest.raises(InputError, match="exactly one"):
        pop.recommend(k=3)
    with pytest.raises(InputError, match="does not read text"):
        pop.text_scores(["jazz"])
    with pytest.raises(UnknownIdError, match="unknown user id 'nobody'") as err:
        pop.recommend(["nobody"])
    assert isinstance(err.value, KeyError) and str(err.value).startswith("unknown user id")
    with pytest.raises(UnknownIdError, match="unknown item id '999'"):
        pop.recommend(sequences=[["1", "999"]])
    with pytest.raises(InputError, match="already in the catalog"):
        pop._new_item_ids(["1"], ["text"])
    with pytest.raises(InputError, match="2 item ids but 1 texts"):
        pop._new_item_ids(["x", "y"], ["text"])


def test_neural_add_items_without_text_features_is_an_input_error(clustered: Dataset) -> None:
    model = create("sasrec", **TINY["sasrec"]).fit(clustered)
    with pytest.raises(InputError, match="features='text'"):
        model.add_items(["new"], ["a new item"])


def test_a_recent_window_without_timestamps_is_an_input_error(clustered: Dataset) -> None:
    untimed = clustered.with_events(clustered.events, has_timestamps=False)
    with pytest.raises(InputError, match="no timestamps"):
        Popularity(window=0.5).fit(untimed)


def test_not_fitted_stays_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        Popularity().save(tmp_path / "x")

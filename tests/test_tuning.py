"""Grid search picks by validation only and records every trial."""

import pytest

from driftrec.data.split import leave_one_out
from driftrec.data.synthetic import SyntheticConfig, generate
from driftrec.evaluation.evaluator import evaluate
from driftrec.evaluation.tuning import DEFAULT_GRIDS, grid_search
from driftrec.models import MODELS, create


@pytest.fixture(scope="module")
def split():
    return leave_one_out(generate(SyntheticConfig(n_users=60, n_items=80, seed=3)).dataset)


def test_grid_search_tries_every_combination_and_keeps_the_best_on_validation(split) -> None:
    result = grid_search(split, "itemknn", {"neighbors": [2, 10, 40]})
    assert [t["params"] for t in result.trials] == [{"neighbors": n} for n in (2, 10, 40)]
    scores = [t["valid_metrics"]["NDCG@10"] for t in result.trials]
    assert result.best_score == max(scores)
    assert result.best_params == result.trials[scores.index(max(scores))]["params"]
    assert result.best_model.get_params() == result.best_params
    # The score it reports is the validation score of a model refitted with those parameters.
    model = create("itemknn", **result.best_params).fit(split.train)
    assert evaluate(model, split.valid, split.train).metrics["NDCG@10"] == pytest.approx(
        result.best_score
    )


def test_base_params_are_kept_and_default_grids_name_real_parameters(split) -> None:
    result = grid_search(split, "als", {"factors": [4]}, base_params={"iterations": 3})
    assert result.best_params == {"iterations": 3, "factors": 4}
    for name, grid in DEFAULT_GRIDS.items():
        assert set(grid) <= set(MODELS[name]().get_params()), name


def test_an_empty_grid_is_an_error(split) -> None:
    with pytest.raises(ValueError, match="empty grid"):
        grid_search(split, "pop", {"window": []})

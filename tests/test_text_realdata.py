"""End to end on real data: cold-start items on ml-100k, ranked from their titles and genres."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftrec.data.loaders import load_dataset
from driftrec.evaluation.coldstart import cold_item_split, evaluate_cold_start
from driftrec.models import create

ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not ML100K.is_dir(), reason="../shared/data/ml-100k not present"),
]


def test_content_model_ranks_items_nobody_touched_in_training(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DRIFTREC_CACHE", str(tmp_path))
    cold = cold_item_split(load_dataset(ML100K, name="ml-100k"), share=0.1, seed=0)
    model = create("content", progress=False).fit(cold.split.train)
    result = evaluate_cold_start(model, cold, ks=(10,))
    assert result["rows"]["cold"] == cold.info["test_rows_cold"] > 50
    # Id-only models cannot reach these items at all; the text alone gets well above chance.
    assert result["cold_hr_over_random@k"][10] > 2.0
    assert result["warm"]["HR@10"] > 0
    # A sentence finds the genre it names.
    top = model.recommend(text="a funny animated film for children", k=10).items[0]
    genres = cold.split.train.items["categories"]
    assert sum("Animation" in genres[i] or "Children's" in genres[i] for i in top) >= 6

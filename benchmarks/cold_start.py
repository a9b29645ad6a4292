"""Cold-start items: can a model rank an item nobody touched in training?

Protocol: a random share of the items (``--share``, 10% by default) is held out of training
entirely (their events removed from training and from every input history; validation rows whose
target is cold dropped), then leave-one-out, full ranking over the whole catalog, seen items
excluded. Test rows are reported twice: those whose target is a cold item, and the rest (warm).
For the cold rows the expected HR@10 of a uniformly random ranking is given, and each model's
ratio to it. Warm HR@10 is also given as a ratio to the id-only SASRec of the same run.

Variants: pop and id-only SASRec (they cannot know an unseen item: that is the point), SASRec
with language-model item features (``sasrec+text``), with multi-hot genre/tag features instead
(``sasrec+multihot``: does the language model earn its place?), and the content model.

Run from the repository root, e.g.:
  .venv/bin/python benchmarks/cold_start.py --datasets ml-100k ml-latest-small synthetic
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from common import DATA, markdown_table, update_markdown, write_results

from driftrec.data.dataset import Dataset
from driftrec.data.loaders import load_dataset
from driftrec.data.synthetic import SyntheticConfig, generate
from driftrec.evaluation.coldstart import cold_item_split, evaluate_cold_start
from driftrec.models import create

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "pop": ("pop", {}),
    "sasrec": ("sasrec", {}),
    "sasrec+text": ("sasrec", {"features": "text"}),
    "sasrec+multihot": ("sasrec", {"features": "multihot"}),
    "fused+text": ("fused", {"features": "text"}),
    "content": ("content", {}),
}
NEURAL = {"sasrec", "gru4rec", "fused"}


def dataset(name: str) -> Dataset:
    if name == "synthetic":
        return generate(SyntheticConfig(seed=0)).dataset
    paths = {"ml-100k": DATA / "ml-100k", "ml-latest-small": DATA / "ml-latest-small"}
    return load_dataset(paths[name], name=name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--datasets", nargs="+", default=["ml-100k", "ml-latest-small", "synthetic"]
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=["pop", "sasrec", "sasrec+text", "sasrec+multihot", "content"],
    )
    parser.add_argument("--share", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--params", default="{}", help="JSON parameters for the neural models")
    parser.add_argument("--name", default="cold_start", help="results / section name")
    args = parser.parse_args()
    neural_params = json.loads(args.params)
    records = []
    for data_name in args.datasets:
        cold = cold_item_split(dataset(data_name), share=args.share, seed=args.seed)
        split = cold.split
        print(f"{data_name}: {cold.info}", flush=True)
        for variant in args.models:
            model_name, params = VARIANTS[variant]
            if model_name in NEURAL:
                params = {**neural_params, **params, "seed": args.seed}
            start = time.perf_counter()
            model = create(model_name, **params).fit(split.train, valid=split.valid)
            fit_seconds = time.perf_counter() - start
            result = evaluate_cold_start(model, cold, ks=(10,))
            record = {
                "dataset": data_name,
                "model": variant,
                "params": model.get_params(),
                "protocol": split.protocol,
                "cold_start": cold.info,
                "metrics_cold": result["cold"],
                "metrics_warm": result["warm"],
                "rows": result["rows"],
                "random_hr@10": result["random_hr@k"].get(10),
                "cold_hr_over_random@10": result["cold_hr_over_random@k"].get(10),
                "timings": {"fit_seconds": fit_seconds},
            }
            if model_name in NEURAL:
                record["training"] = model.training_summary()
            records.append(record)
            print(
                f"{data_name} {variant}: cold HR@10 {result['cold'].get('HR@10', 0):.4f}"
                f" ({record['cold_hr_over_random@10'] or 0:.1f}x random), warm HR@10"
                f" {result['warm'].get('HR@10', 0):.4f}, {fit_seconds:.0f}s",
                flush=True,
            )
    write_results(args.name, records)
    rows = []
    for r in records:
        id_only = next(
            (x for x in records if x["dataset"] == r["dataset"] and x["model"] == "sasrec"), None
        )
        warm_ratio = (
            f"{r['metrics_warm']['HR@10'] / id_only['metrics_warm']['HR@10']:.3f}"
            if id_only and id_only["metrics_warm"].get("HR@10")
            else "–"
        )
        rows.append(
            [
                r["dataset"],
                r["model"],
                f"{r['metrics_cold'].get('HR@10', 0):.4f}",
                f"{r['metrics_cold'].get('NDCG@10', 0):.4f}",
                f"{r['random_hr@10']:.4f}",
                f"{r['cold_hr_over_random@10']:.1f}x",
                f"{r['metrics_warm'].get('HR@10', 0):.4f}",
                f"{r['metrics_warm'].get('NDCG@10', 0):.4f}",
                warm_ratio,
                f"{r['timings']['fit_seconds']:.0f}",
            ]
        )
    body = (
        f"## Cold-start items ({args.name})\n\n{int(args.share * 100)}% of the items held out of "
        f"training entirely (seed {args.seed}), leave-one-out, full ranking over the whole "
        "catalog, seen items excluded. Cold rows: test events whose target is a held-out item. "
        "`× random`: cold HR@10 over the expected HR@10 of a uniformly random ranking. "
        "`warm / id-only`: warm HR@10 over the id-only SASRec's. Neural parameters: "
        f"`{args.params}` over the defaults.\n\n"
        + markdown_table(
            [
                "dataset",
                "model",
                "cold HR@10",
                "cold NDCG@10",
                "random HR@10",
                "× random",
                "warm HR@10",
                "warm NDCG@10",
                "warm / id-only",
                "fit s",
            ],
            rows,
        )
    )
    update_markdown(args.name, body)


if __name__ == "__main__":
    main()

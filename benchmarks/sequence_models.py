"""Neural sequence models (SASRec, GRU4Rec, long+short fusion) against the best baselines.

Protocol: leave-one-out, full ranking, early stopping on validation NDCG@10 (seen items excluded),
test metrics once at the best validation epoch, reported with seen items excluded (driftrec's
default) and not excluded (how some libraries rank sequence models). Default hyper-parameters
unless --params is given; every run's parameters are in the results JSON.

Run from the repository root, e.g.:
  .venv/bin/python benchmarks/sequence_models.py --datasets ml-100k --models sasrec --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from common import DATA, markdown_table, update_markdown, write_results

from driftrec.data.loaders import load_dataset
from driftrec.data.split import make_split
from driftrec.evaluation.evaluator import evaluate
from driftrec.evaluation.tuning import grid_search
from driftrec.models import create

DATASETS = {
    "ml-100k": DATA / "ml-100k",
    "ml-latest-small": DATA / "ml-latest-small",
    "amazon-beauty": DATA / "amazon-beauty" / "Beauty.txt",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=["ml-100k", "amazon-beauty"])
    parser.add_argument("--models", nargs="+", default=["sasrec", "gru4rec", "fused"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--params", default="{}", help="JSON hyper-parameters for every model")
    parser.add_argument("--name", default="sequence_models", help="results / section name")
    parser.add_argument(
        "--tune",
        action="store_true",
        help="pick parameters from the model's default grid by validation NDCG@10 first",
    )
    args = parser.parse_args()
    params = json.loads(args.params)
    records = []
    for name in args.datasets:
        split = make_split(load_dataset(DATASETS[name], name=name), "loo")
        for model_name in args.models:
            for seed in args.seeds:
                start = time.perf_counter()
                tuning = None
                if args.tune:
                    result = grid_search(split, model_name, base_params={**params, "seed": seed})
                    model, tuning = result.best_model, result.trials
                else:
                    model = create(model_name, **{**params, "seed": seed})
                    model.fit(split.train, valid=split.valid)
                fit_seconds = time.perf_counter() - start
                masked = evaluate(model, split.test, split.train, ks=(10, 20))
                unmasked = evaluate(model, split.test, split.train, ks=(10, 20), exclude_seen=False)
                records.append(
                    {
                        "dataset": name,
                        "model": model_name,
                        "seed": seed,
                        "params": model.get_params(),
                        "protocol": "leave-one-out",
                        "metrics": masked.metrics,
                        "metrics_seen_not_excluded": unmasked.metrics,
                        "training": model.training_summary(),
                        "tuning_trials": tuning,
                        "timings": {
                            "fit_seconds": fit_seconds,
                            "train_seconds": model.training_summary()["train_seconds"],
                        },
                    }
                )
                print(
                    f"{name} {model_name} seed {seed}: NDCG@10 {masked.metrics['NDCG@10']:.4f}"
                    f" (unmasked {unmasked.metrics['NDCG@10']:.4f}) HR@10"
                    f" {masked.metrics['HR@10']:.4f}, best epoch"
                    f" {model.training_summary()['best_epoch']}, {fit_seconds:.0f}s",
                    flush=True,
                )
    write_results(args.name, records)
    rows = []
    for name in args.datasets:
        for model_name in args.models:
            runs = [r for r in records if r["dataset"] == name and r["model"] == model_name]

            def cell(key: str, metric: str, runs: list = runs) -> str:
                values = [r[key][metric] for r in runs]
                spread = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
                return f"{statistics.mean(values):.4f}{spread}"

            rows.append(
                [
                    name,
                    model_name,
                    str(len(runs)),
                    cell("metrics", "HR@10"),
                    cell("metrics", "NDCG@10"),
                    cell("metrics_seen_not_excluded", "HR@10"),
                    cell("metrics_seen_not_excluded", "NDCG@10"),
                    f"{statistics.mean(r['training']['best_epoch'] for r in runs):.0f}",
                    f"{statistics.mean(r['timings']['train_seconds'] for r in runs):.0f}",
                ]
            )
    body = (
        f"## Sequence models ({args.name})\n\nLeave-one-out, full ranking, early stopping on "
        "validation NDCG@10; mean ± standard deviation over seeds. Parameters: "
        f"`{args.params}` over the defaults"
        + (", then the default grid searched on validation data (`--tune`)" if args.tune else "")
        + ". `train s` is the training time of the model reported (per run).\n\n"
        + markdown_table(
            [
                "dataset",
                "model",
                "seeds",
                "HR@10",
                "NDCG@10",
                "HR@10 (seen kept)",
                "NDCG@10 (seen kept)",
                "best epoch",
                "train s",
            ],
            rows,
        )
    )
    update_markdown(args.name, body)


if __name__ == "__main__":
    main()

"""What the defaults give on every shared dataset: accuracy, training time and time to quality.

The protocol of `sequence_models.py` (leave-one-out, full ranking, seen items excluded, early
stopping on validation NDCG@10, test metrics once at the best epoch), on every shared dataset
including Amazon Office (its timestamped events joined to the rich product text by the project's
importer). A model name with ``+text`` reads the item text (``features="text"``), so text and
id-only runs of the same seed sit side by side. Beside the test metrics each run records how long
training took to reach 90% of its final validation NDCG@10 (the validation curve: the test set is
scored once, at the end). The model ``auto`` is `driftrec train -m auto` with the
protocol of the others (`--auto-budget` seconds): the model it chose, its leaderboard, and the
chosen model's test metrics.

Run from the repository root, e.g.:
  .venv/bin/python benchmarks/defaults.py --datasets ml-100k --models sasrec sasrec+text --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from common import DATA, markdown_table, update_markdown, write_results

from driftrec.data.dataset import Dataset
from driftrec.data.loaders import load_dataset
from driftrec.data.split import make_split
from driftrec.evaluation.evaluator import evaluate
from driftrec.evaluation.selection import NEURAL, TEXT, candidates, select_model
from driftrec.models import create
from driftrec.models.neural import NeuralSequenceModel

OFFICE = DATA / "amazon-office-2014"


def dataset(name: str) -> Dataset:
    """One shared dataset, imported as a user would import it."""
    if name == "amazon-office":
        return load_dataset(OFFICE / "timestamped", items=OFFICE / "rich-text", name=name)
    if name == "amazon-beauty":
        return load_dataset(DATA / name / "Beauty.txt", name=name)
    return load_dataset(DATA / name, name=name)


def time_to_share(epochs: list[dict[str, Any]], share: float = 0.9) -> float | None:
    """Training seconds until the validation NDCG@10 first reached ``share`` of its best."""
    scores = [e["valid"] for e in epochs if e["valid"] is not None]
    if not scores:
        return None
    best, elapsed = max(scores), 0.0
    for epoch in epochs:
        elapsed += epoch["seconds"]
        if epoch["valid"] is not None and epoch["valid"] >= share * best:
            return elapsed
    return None


def run(
    data: Dataset, split: Any, spec: str, seed: int, params: dict[str, Any], budget: float
) -> dict[str, Any]:
    """One model (``auto``: `select_model` within ``budget`` seconds, on the same split's
    validation part) trained on ``split`` and scored once on its test part."""
    name = data.name
    model_name, _, extra = spec.partition("+")
    settings = {**params, "seed": seed, **({"features": extra} if extra else {})}
    start = time.perf_counter()
    selection = None
    if spec == "auto":  # the neural candidates get --params (threads) and the seed
        neural_names = {n for n, _ in NEURAL + TEXT}
        tried = [(n, {**p, **settings} if n in neural_names else p) for n, p in candidates(data)]
        selection = select_model(data, budget, protocol="loo", tried=tried, report=print)
        model = selection.winner
    else:
        model = create(model_name, **settings).fit(split.train, valid=split.valid)
    fit_seconds = time.perf_counter() - start
    result = evaluate(model, split.test, split.train, ks=(10, 20))
    neural = isinstance(model, NeuralSequenceModel)
    summary = model.training_summary() if neural else {}
    epochs = [dict(e) for e in model.log_.epochs] if neural else []
    record = {
        "dataset": name,
        "model": spec,
        "chosen": None if selection is None else selection.trials[0].label(),
        "leaderboard": None if selection is None else selection.leaderboard(),
        "seed": seed,
        "params": model.get_params(),
        "protocol": "leave-one-out",
        "metrics": result.metrics,
        "stderr": result.stderr,
        "training": summary,
        "epochs": epochs,
        "timings": {
            "fit_seconds": fit_seconds,
            "train_seconds": summary.get("train_seconds"),
            "seconds_to_90pct_valid": time_to_share(epochs),
        },
    }
    print(
        f"{name} {spec} seed {seed}: NDCG@10 {result.metrics['NDCG@10']:.4f} HR@10"
        f" {result.metrics['HR@10']:.4f}, best epoch {summary.get('best_epoch')} of"
        f" {summary.get('epochs_run')}, {fit_seconds:.0f}s",
        flush=True,
    )
    return record


def table(records: list[dict[str, Any]]) -> str:
    rows = []
    keys = dict.fromkeys((r["dataset"], r["model"]) for r in records)
    for name, spec in keys:
        runs = [r for r in records if r["dataset"] == name and r["model"] == spec]

        def cell(metric: str, runs: list = runs) -> str:
            values = [r["metrics"][metric] for r in runs]
            spread = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
            return f"{statistics.median(values):.4f}{spread}"

        def stderr(runs: list = runs) -> str:  # the user sample's noise, one run's worth
            values = [r["stderr"]["NDCG@10"] for r in runs if "NDCG@10" in r.get("stderr", {})]
            return f"{statistics.median(values):.4f}" if values else "–"

        def seconds(key: str, runs: list = runs) -> str:
            values = [r["timings"][key] for r in runs if r["timings"][key] is not None]
            return f"{statistics.median(values):.0f}" if values else "–"

        epochs = [r["training"].get("epochs_run") for r in runs]
        stopped = [r["training"].get("stopped_early") for r in runs]
        chosen = {r["chosen"] for r in runs if r["chosen"]}
        rows.append(
            [
                name,
                spec + (f" → {', '.join(sorted(chosen))}" if chosen else ""),
                str(len(runs)),
                cell("NDCG@10"),
                stderr(),
                cell("HR@10"),
                " ".join(str(e) for e in epochs),
                " ".join("early" if s else "all" for s in stopped),
                seconds("train_seconds"),
                seconds("seconds_to_90pct_valid"),
            ]
        )
    return markdown_table(
        [
            "dataset",
            "model",
            "seeds",
            "NDCG@10 (median ± sd)",
            "its standard error",
            "HR@10",
            "epochs",
            "stopped",
            "train s",
            "s to 90% valid",
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["ml-100k", "ml-latest-small", "amazon-office", "amazon-beauty"],
    )
    parser.add_argument("--models", nargs="+", default=["sasrec"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--params", default="{}", help="JSON parameters over the defaults")
    parser.add_argument("--name", default="defaults", help="results / section name")
    parser.add_argument("--note", default="", help="text after the table")
    parser.add_argument(
        "--auto-budget", type=float, default=600.0, help="seconds for the model 'auto'"
    )
    args = parser.parse_args()
    params = json.loads(args.params)
    records = []
    for name in args.datasets:
        data = dataset(name)
        split = make_split(data, "loo")
        for spec in args.models:
            for seed in args.seeds:
                records.append(run(data, split, spec, seed, params, args.auto_budget))
                write_results(args.name, records)  # a long run keeps what it has
    body = (
        f"## Defaults ({args.name})\n\nLeave-one-out, full ranking, seen items excluded, early "
        f"stopping on validation NDCG@10. Parameters: `{args.params}` over the defaults. "
        "`its standard error`: of the test NDCG@10 over the users (median over seeds), the "
        "noise of one run's user sample; `epochs`: per seed; `stopped`: early (patience or "
        "time budget) or all epochs; "
        "`s to 90% valid`: training seconds until validation NDCG@10 first reached 90% of its "
        "best (median over seeds).\n\n" + table(records) + (f"\n\n{args.note}" if args.note else "")
    )
    update_markdown(args.name, body)


if __name__ == "__main__":
    main()

"""Every baseline on ml-100k, ml-latest-small and Amazon Beauty: leave-one-out, full ranking.

Run from the repository root:  .venv/bin/python benchmarks/baselines.py
Writes benchmarks/results/baselines.json and the "baselines" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time

from common import DATA, markdown_table, update_markdown, write_results
from rich.console import Console

from driftrec.data.loaders import load_dataset
from driftrec.data.split import make_split
from driftrec.evaluation.experiment import fit_and_evaluate

DATASETS = {
    "ml-100k": DATA / "ml-100k",
    "ml-latest-small": DATA / "ml-latest-small",
    "amazon-beauty": DATA / "amazon-beauty" / "Beauty.txt",
}
MODELS = ("pop", "recent-pop", "itemknn", "bpr", "als", "bias")
SHOWN = ("HR@10", "NDCG@10", "MRR@10", "Recall@20", "NDCG@20", "Coverage@10", "Novelty@10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    console = Console()
    records = []
    for name in args.datasets:
        start = time.perf_counter()
        dataset = load_dataset(DATASETS[name], name=name)
        split = make_split(dataset, "loo")
        prep_seconds = time.perf_counter() - start
        console.print(
            f"[bold]{name}[/bold]: {dataset.n_users} users, {dataset.n_items} items,"
            f" {dataset.n_events} events; import + split {prep_seconds:.1f}s"
        )
        for model in args.models:
            if model == "recent-pop" and not dataset.info.get("has_timestamps", True):
                console.print(f"  {model:<11} skipped: {name} has no timestamps")
                continue
            if model == "bias" and "rating" not in dataset.summary()["event_types"]:
                console.print(f"  {model:<11} skipped: {name} has no ratings")
                continue
            _, record = fit_and_evaluate(split, model, ks=(10, 20), progress=True)
            record["dataset"] = name
            record["model"] = model
            record["timings"]["import_and_split_seconds"] = prep_seconds
            records.append(record)
            shown = "  ".join(f"{m} {record['metrics'][m]:.4f}" for m in SHOWN[:2])
            console.print(f"  {model:<11} {shown}  fit {record['timings']['fit_seconds']:.1f}s")
    write_results("baselines", records)
    rows = [
        [
            r["dataset"],
            r["model"],
            *[f"{r['metrics'].get(m, float('nan')):.4f}" for m in SHOWN],
            f"{r['timings']['fit_seconds']:.1f}",
            f"{r['timings']['evaluate_seconds']:.1f}",
        ]
        for r in records
    ]
    body = (
        "## Baselines (leave-one-out, full ranking, seen items excluded)\n\n"
        "Test metrics of the last event per user; the model is fitted on all but the last two "
        "events of each user with default hyper-parameters. Times in seconds.\n\n"
        + markdown_table(["dataset", "model", *SHOWN, "fit s", "eval s"], rows)
    )
    update_markdown("baselines", body)


if __name__ == "__main__":
    main()

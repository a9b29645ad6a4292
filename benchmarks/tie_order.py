"""How much the order of same-second events moves leave-one-out scores on ml-100k.

75,772 of ml-100k's 100,000 ratings share their second with another rating of the same user, so
"the last event" is partly decided by the tie-break. driftrec keeps source order (stable sort); this
benchmark re-draws the order inside ties at random and re-evaluates, to show the spread that a
different tie-break alone causes for each baseline.

Run from the repository root:  .venv/bin/python benchmarks/tie_order.py
"""

from __future__ import annotations

import argparse

import numpy as np
from common import DATA, markdown_table, update_markdown, write_results

from driftrec.data.loaders import load_dataset
from driftrec.data.split import make_split
from driftrec.evaluation.experiment import fit_and_evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=10, help="random tie orders to draw")
    parser.add_argument("--models", nargs="+", default=["pop", "itemknn", "als"])
    args = parser.parse_args()
    dataset = load_dataset(DATA / "ml-100k", name="ml-100k")
    events = dataset.events
    records = []
    for order in range(args.orders + 1):
        if order == 0:
            shuffled, label = events, "source order"
        else:
            # A random permutation, then a stable sort by (user, time): random order within ties.
            perm = np.random.default_rng(order).permutation(len(events))
            p = events.iloc[perm]
            shuffled = p.iloc[np.lexsort((p["timestamp"].to_numpy(), p["user"].to_numpy()))]
            label = f"random ties #{order}"
        split = make_split(dataset.with_events(shuffled), "loo")
        for model in args.models:
            _, record = fit_and_evaluate(split, model)
            records.append({**record, "dataset": "ml-100k", "model": model, "tie_order": label})
    write_results("tie_order", records)
    rows = []
    for model in args.models:
        mine = [r for r in records if r["model"] == model]
        source = mine[0]["metrics"]
        for metric in ("HR@10", "NDCG@10"):
            rand = np.array([r["metrics"][metric] for r in mine[1:]])
            rows.append(
                [
                    model,
                    metric,
                    f"{source[metric]:.4f}",
                    f"{np.median(rand):.4f}",
                    f"{rand.min():.4f}",
                    f"{rand.max():.4f}",
                ]
            )
    body = (
        "## Tie order on ml-100k (leave-one-out, full ranking, seen excluded)\n\n"
        f"Source order (driftrec's stable sort) against {args.orders} random orders of events that "
        "share a user and a second.\n\n"
        + markdown_table(["model", "metric", "source order", "random: median", "min", "max"], rows)
    )
    update_markdown("tie_order", body)


if __name__ == "__main__":
    main()

"""The chunked full-softmax cross-entropy against the plain autograd version, and what an epoch
of SASRec costs with each loss.

Part 1 times one loss + backward pass at Amazon Beauty's sizes (750 next-item targets, a batch's
worth, 12,102 catalog rows, d = 64, the repeat bias at 0.05% of the pairs), the plain version
being the one driftrec used before (dense logits, a dense seen mask, `F.cross_entropy`). Part 2
trains SASRec one epoch on Amazon Beauty with each loss ("ce" is the chunked full softmax).

Run from the repository root:
  .venv/bin/python benchmarks/softmax.py --repeats 20
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from common import DATA, markdown_table, update_markdown, write_results

from driftrec.data.loaders import load_dataset
from driftrec.data.split import make_split
from driftrec.models import create
from driftrec.models.softmax import softmax_cross_entropy


def _plain(h, table, bias, beta, targets, seen):  # the loss as driftrec computed it before
    logits = h @ table.T + bias + beta * seen
    logits[:, 0] = -torch.inf
    return F.cross_entropy(logits, targets)


def time_losses(repeats: int) -> list[dict]:
    torch.manual_seed(0)
    n, items, d = 750, 12_102, 64
    h = torch.randn(n, d, requires_grad=True)
    table = (0.1 * torch.randn(items, d)).requires_grad_()
    bias = torch.zeros(items)
    beta = torch.tensor(-1.0, requires_grad=True)
    targets = torch.randint(1, items, (n,))
    seen = torch.rand(n, items) < 0.0005
    pair_rows, pair_cols = seen.nonzero(as_tuple=True)
    left_out = torch.zeros(items)
    left_out[0] = -torch.inf
    runs = {
        "plain": lambda: _plain(h, table, bias, beta, targets, seen),
        "chunked": lambda: softmax_cross_entropy(
            h, table, bias + left_out, beta, targets, pair_rows, pair_cols
        ),
    }
    records = []
    for name, loss in runs.items():
        for _ in range(3):  # warm-up
            loss().backward()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            loss().backward()
            times.append(time.perf_counter() - start)
        records.append({"part": "loss", "variant": name, "seconds": times})
    return records


def time_epochs() -> list[dict]:
    split = make_split(load_dataset(DATA / "amazon-beauty" / "Beauty.txt"), "loo")
    records = []
    for loss in ("ce", "sampled"):
        model = create("sasrec", loss=loss, epochs=1, progress=False).fit(split.train)
        records.append({"part": "epoch", "variant": loss, "seconds": [model.log_.seconds]})
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--name", default="softmax")
    args = parser.parse_args()
    records = time_losses(args.repeats) + time_epochs()
    write_results(args.name, records)
    plain = statistics.median(records[0]["seconds"])
    rows = [
        [
            r["part"],
            r["variant"],
            f"{1000 * statistics.median(r['seconds']):.1f}",
            f"{1000 * max(r['seconds']):.1f}",
            f"{plain / statistics.median(r['seconds']):.2f}" if r["part"] == "loss" else "–",
        ]
        for r in records
    ]
    for row in rows:
        print("  ".join(row))
    body = (
        f"## Full softmax, chunked ({args.name})\n\nOne loss + backward pass at Amazon Beauty's "
        "sizes (750 targets, 12,102 catalog rows, d = 64; median and max of "
        f"{args.repeats}), then one SASRec training epoch on Amazon Beauty with each loss "
        "(no validation). `ce` is the chunked full softmax.\n\n"
        + markdown_table(["part", "variant", "median ms", "max ms", "speed-up vs plain"], rows)
    )
    update_markdown(args.name, body)


if __name__ == "__main__":
    main()

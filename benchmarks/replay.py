"""Streaming replay on real data (issue 15's targets): does the best sequence model beat ALS
with fold-in in every window of the replay, and how fast does the replay run?

Each model learns from the older events (as `driftrec train` does) and meets the newest
`--fraction` of them through the live tracker, fixed during the replay; HR@10 and NDCG@10 per
window of equal numbers of events (`evaluation/replay.py`). Events per second count the whole
replay (asking before each event, ingesting it), not the training.

Run from the repository root:
  .venv/bin/python benchmarks/replay.py                                  # about 20 minutes
  .venv/bin/python benchmarks/replay.py --datasets ml-100k --models als sasrec
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from common import DATA, markdown_table, update_markdown, write_results

from driftrec.data.loaders import load_dataset
from driftrec.evaluation.experiment import train_model
from driftrec.evaluation.replay import replay, replay_split
from driftrec.models import create

DATASETS = {"ml-100k": DATA / "ml-100k", "amazon-beauty": DATA / "amazon-beauty" / "Beauty.txt"}
SEQUENCE_MODELS = {"sasrec", "gru4rec", "fused"}
MIN_WINDOW = 500  # the target counts windows holding at least this many events


def run(name: str, models: list[str], fraction: float, windows: int) -> list[dict[str, Any]]:
    dataset = load_dataset(DATASETS[name], name=name)
    train, start = replay_split(dataset, fraction)
    records = []
    for model_name in models:
        began = time.perf_counter()
        params = {"seed": 0} if model_name in SEQUENCE_MODELS | {"als"} else {}
        model = train_model(create(model_name, **params), train)
        fit_seconds = time.perf_counter() - began
        result = replay(model, dataset, start, k=10, name=model_name)
        record = {"dataset": name, "fraction": fraction, "fit_seconds": fit_seconds,
                  **result.to_dict(windows)}  # fmt: skip
        records.append(record)
        print(
            f"{name} {model_name}: HR@10 {record['overall']['hr@10']:.4f},"
            f" {record['events_per_s']:,.0f} events/s",
            flush=True,
        )
    return records


def section(records: list[dict[str, Any]]) -> str:
    name = records[0]["dataset"]
    overall = markdown_table(
        ["model", "HR@10", "NDCG@10", "events", "events/s", "fit (s)"],
        [
            [
                r["model"],
                f"{r['overall']['hr@10']:.4f}",
                f"{r['overall']['ndcg@10']:.4f}",
                f"{r['overall']['events']:,}",
                f"{r['events_per_s']:,.0f}",
                f"{r['fit_seconds']:.0f}",
            ]
            for r in records
        ],
    )
    models = [r["model"] for r in records]
    rows = []
    als = next((r for r in records if r["model"] == "als"), None)
    sequence = [r for r in records if r["model"] in SEQUENCE_MODELS]
    best = max(sequence, key=lambda r: r["overall"]["hr@10"]) if sequence else None
    beaten = counted = 0
    for n, window in enumerate(records[0]["windows"]):
        cells = [f"{r['windows'][n]['hr@10']:.4f}" for r in records]
        if als and best and window["events"] >= MIN_WINDOW:
            counted += 1
            beaten += best["windows"][n]["hr@10"] > als["windows"][n]["hr@10"]
        rows.append([str(window["window"]), f"{window['events']:,}", *cells])
    per_window = markdown_table(["window", "events", *[f"{m} HR@10" for m in models]], rows)
    verdict = (
        f"The best sequence model overall ({best['model']}) beats ALS with fold-in in"
        f" {beaten} of the {counted} windows holding at least {MIN_WINDOW} events."
        if als and best
        else ""
    )
    return (
        f"### {name}: the newest {records[0]['fraction']:.0%} replayed"
        f" ({records[0]['overall']['events']:,} item events), models fixed\n\n"
        f"{overall}\n\n{per_window}\n\n{verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=["itemknn", "als", "sasrec", "gru4rec"])
    parser.add_argument("--fraction", type=float, default=0.2)
    parser.add_argument("--windows", type=int, default=10)
    args = parser.parse_args()
    records, bodies = [], []
    for name in args.datasets:
        found = run(name, args.models, args.fraction, args.windows)
        records += found
        bodies.append(section(found))
    write_results("replay", records)
    update_markdown("replay", "## Streaming replay on real data\n\n" + "\n\n".join(bodies))


if __name__ == "__main__":
    main()

"""Cold-start items: can a model rank an item nobody touched in training?

Protocol: a random share of the items (``--share``, 10% by default) is held out of training
entirely (their events removed from training and from every input history; validation rows whose
target is cold dropped), then leave-one-out, full ranking over the whole catalog, seen items
excluded. Test rows are reported twice: those whose target is a cold item, and the rest (warm).
For the cold rows the expected HR@10 of a uniformly random ranking is given, and each model's
ratio to it. Warm HR@10 is also given as a ratio to the id-only SASRec of the same run.
Models with item features are reported at the cold offset their ``cold_budget`` chose (the
expected share of the validation rows' warm top-10 hits new items may take) and, from the same
fit, at the calibrated offset alone (``... calibrated``) and with cold items ranked last
(``... cold off``, the warm model alone).

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

import numpy as np
from common import DATA, markdown_table, update_markdown, write_results

from driftrec.data.dataset import Dataset
from driftrec.data.loaders import load_dataset
from driftrec.data.synthetic import SyntheticConfig, generate
from driftrec.evaluation.coldstart import ColdStartSplit, cold_item_split, evaluate_cold_start
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
COLD_OFF = 1e9  # a cold boost of minus this ranks every cold item last: the warm model alone


def dataset(name: str) -> Dataset:
    if name == "synthetic":
        return generate(SyntheticConfig(seed=0)).dataset
    paths = {"ml-100k": DATA / "ml-100k", "ml-latest-small": DATA / "ml-latest-small"}
    return load_dataset(paths[name], name=name)


def run(
    data_name: str,
    variant: str,
    cold: ColdStartSplit,
    seed: int,
    neural_params: dict[str, Any],
    shifts: list[float],
) -> list[dict[str, Any]]:
    """Fit one variant on the cold split's training data and evaluate cold and warm rows.

    A model with item features is evaluated several times from the one fit: with the cold offset
    shifted as its ``cold_budget`` chose, with the calibrated offset alone (``<variant>
    calibrated``: the shift undone through ``cold_boost``), with every cold item ranked last
    (``<variant> cold off``: the warm model alone, against which the budget's cost is measured),
    and at each of ``shifts`` over the calibrated offset (``<variant> shift +0.50``): the
    cold/warm frontier."""
    model_name, params = VARIANTS[variant]
    if model_name in NEURAL:
        params = {**neural_params, **params, "seed": seed}
    start = time.perf_counter()
    model = create(model_name, **params).fit(cold.split.train, valid=cold.split.valid)
    fit_seconds = time.perf_counter() - start
    shift = getattr(model, "cold_shift_", None)
    evaluations = [(variant, 0.0)]
    if params.get("features", "none") != "none":
        evaluations.append((f"{variant} calibrated", -shift))
        evaluations.append((f"{variant} cold off", -COLD_OFF))
        evaluations += [(f"{variant} shift {x:+.2f}", x - shift) for x in shifts]
    records = []
    for name, boost in evaluations:
        if model_name in NEURAL:
            model.cold_boost = boost
        records.append(_record(data_name, name, model, cold, seed, fit_seconds))
    return records


def _record(
    data_name: str, variant: str, model: Any, cold: ColdStartSplit, seed: int, fit_seconds: float
) -> dict[str, Any]:
    result = evaluate_cold_start(model, cold, ks=(10,))
    record = {
        "dataset": data_name,
        "model": variant,
        "seed": seed,
        "params": model.get_params(),
        "protocol": cold.split.protocol,
        "cold_start": cold.info,
        "metrics_cold": result["cold"],
        "metrics_warm": result["warm"],
        "rows": result["rows"],
        "rows_skipped": result["rows_skipped"],
        "random_hr@10": result["random_hr@k"].get(10),
        "cold_hr_over_random@10": result["cold_hr_over_random@k"].get(10),
        "timings": {"fit_seconds": fit_seconds},
    }
    if hasattr(model, "training_summary"):
        record["training"] = model.training_summary()
    print(
        f"{data_name} seed {seed} {variant}: cold HR@10 {result['cold'].get('HR@10', 0):.4f}"
        f" ({record['cold_hr_over_random@10'] or 0:.1f}x random), warm HR@10"
        f" {result['warm'].get('HR@10', 0):.4f}, {fit_seconds:.0f}s",
        flush=True,
    )
    return record


def pooled(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One variant's figures over hold-out seeds: cold HR@10 over all cold rows pooled (hits /
    rows), its ratio to random pooled the same way, warm HR@10 as the mean over seeds."""
    cold_rows = sum(r["rows"]["cold"] for r in records)
    hits = [round(r["metrics_cold"].get("HR@10", 0) * r["rows"]["cold"]) for r in records]
    random_hits = sum((r["random_hr@10"] or 0) * r["rows"]["cold"] for r in records)
    warm = [r["metrics_warm"].get("HR@10", 0) for r in records]
    # The shift of the cold offset each seed ranked with (chosen on validation, less any undoing).
    shifts = [
        r["training"]["cold_shift"] + r["params"]["cold_boost"]
        for r in records
        if r["params"].get("features", "none") != "none"
    ]
    return {
        "cold_rows": cold_rows,
        "cold_hits": hits,
        "cold_hr": sum(hits) / cold_rows if cold_rows else 0.0,
        "random_hr": random_hits / cold_rows if cold_rows else 0.0,
        "over_random": sum(hits) / random_hits if random_hits else 0.0,
        "warm_hr": float(np.mean(warm)),
        "warm_per_seed": warm,
        "cold_shifts": shifts,
        "fit_seconds": float(np.median([r["timings"]["fit_seconds"] for r in records])),
    }


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
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0],
        help="hold-out seeds (each also seeds training); cold rows are pooled over them",
    )
    parser.add_argument(
        "--shifts",
        nargs="*",
        type=float,
        default=[],
        help="also rank feature models with the cold offset shifted by these over the calibrated",
    )
    parser.add_argument("--params", default="{}", help="JSON parameters for the neural models")
    parser.add_argument("--name", default="cold_start", help="results / section name")
    args = parser.parse_args()
    neural_params = json.loads(args.params)
    records = []
    for data_name in args.datasets:
        data = dataset(data_name)
        for seed in args.seeds:
            cold = cold_item_split(data, share=args.share, seed=seed)
            print(f"{data_name} seed {seed}: {cold.info}", flush=True)
            for variant in args.models:
                records.extend(run(data_name, variant, cold, seed, neural_params, args.shifts))
    write_results(args.name, records)
    variants = list(dict.fromkeys(r["model"] for r in records))  # in order of appearance
    summary = {
        (d, v): pooled(part)
        for d in args.datasets
        for v in variants
        if (part := [r for r in records if r["dataset"] == d and r["model"] == v])
    }
    rows = []
    for (data_name, variant), p in summary.items():
        id_only = summary.get((data_name, "sasrec"))
        warm_ratio = (
            f"{p['warm_hr'] / id_only['warm_hr']:.3f}" if id_only and id_only["warm_hr"] else "–"
        )
        rows.append(
            [
                data_name,
                variant,
                f"{p['cold_hr']:.4f} ({sum(p['cold_hits'])}/{p['cold_rows']})",
                " ".join(str(h) for h in p["cold_hits"]),
                f"{p['random_hr']:.4f}",
                f"{p['over_random']:.1f}x",
                f"{p['warm_hr']:.4f}",
                warm_ratio,
                " ".join("off" if x < -COLD_OFF / 2 else f"{x:+.2f}" for x in p["cold_shifts"])
                or "–",
                f"{p['fit_seconds']:.0f}",
            ]
        )
    body = (
        f"## Cold-start items ({args.name})\n\n{int(args.share * 100)}% of the items held out of "
        f"training entirely, hold-out seeds {' '.join(map(str, args.seeds))} (each also seeds "
        "training), leave-one-out, full ranking over the whole catalog, seen items excluded. "
        "Cold rows: test events whose target is a held-out item, pooled over the seeds "
        "(hits / rows; `hits per seed` in seed order). `× random`: pooled cold hits over the "
        "hits a uniformly random ranking would expect. Warm HR@10: mean over seeds; "
        "`warm / id-only`: that over the id-only SASRec's. `cold shift`: what was added to the "
        "calibrated cold offset by `cold_budget` (models with item features; `... calibrated` "
        "rows rank the same fit with the shift undone, `... cold off` rows with every cold item "
        "ranked last, i.e. the warm model alone, `... shift x` rows with the calibrated offset "
        "shifted by x). Fit seconds: median. Neural "
        "parameters: "
        f"`{args.params}` over the defaults.\n\n"
        + markdown_table(
            [
                "dataset",
                "model",
                "cold HR@10 (hits/rows)",
                "hits per seed",
                "random HR@10",
                "× random",
                "warm HR@10",
                "warm / id-only",
                "cold shift per seed",
                "fit s",
            ],
            rows,
        )
    )
    update_markdown(args.name, body)


if __name__ == "__main__":
    main()

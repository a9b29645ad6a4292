"""Incremental training against a full retrain (issue 16, part 4): does a model trained further
on the events that arrived since reach >= 0.95x the full retrain's NDCG@10 in <= 0.3x its
training time?

Temporal split of the dataset's events by time: the first 80% (before t1), the next 10% (t1 to
t2), the last 10% (after t2). The base model learns from the events before t1 with only the users
and items seen by then, as `driftrec train` does. Then (a) incremental: the base model trained
further on every event before t2 (`continue_training`, what `driftrec train --from` runs: new
users and items added, the windows newer than the base's newest event plus a replayed sample of
older ones, early stopping on the users' held-out second-to-last events that are new); (b) full
retrain: a fresh model of the same seed trained on every event before t2, as `driftrec train`
does. Both answer from every user's history before t2 and are scored on the same held-out events
after t2 (full ranking over the catalog known at t2, seen items excluded; targets that are items
first seen after t2 are dropped, since no model knows them). Training time is the wall time of
the training call, from the same data in memory; the CPU seconds and the next-item targets
trained are reported beside it, since the machine is shared.

Run from the repository root, one seed per run (each under 20 minutes on 2 cores; --cache keeps
the base and full models, so other --options of the incremental run cost only that run), then
merge them into one section of BENCHMARKS.md:
  for m in sasrec gru4rec; do for s in 0 1 2; do
    .venv/bin/python benchmarks/incremental.py --models $m --seeds $s \\
        --name incremental_${m}_s$s --results-only --cache /tmp/incremental-cache; done; done
  .venv/bin/python benchmarks/incremental.py --name incremental --merge incremental_sasrec_s0 \\
      incremental_sasrec_s1 incremental_sasrec_s2 incremental_gru4rec_s0 incremental_gru4rec_s1 \\
      incremental_gru4rec_s2
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import DATA, RESULTS, markdown_table, update_markdown, write_results

from driftrec import models
from driftrec.data.dataset import Dataset
from driftrec.data.loaders import load_dataset
from driftrec.data.split import EvalSet, temporal_split
from driftrec.evaluation.evaluator import evaluate
from driftrec.evaluation.experiment import continue_training, train_model
from driftrec.models import Recommender, create
from driftrec.models.capabilities import ReportsTraining

# Datasets with timestamps (Amazon Beauty's sequence file has only an order: no cut in time).
DATASETS = {"ml-100k": DATA / "ml-100k", "ml-latest-small": DATA / "ml-latest-small"}
KS = (10,)


def stages(full: Dataset, share: float) -> tuple[Dataset, Dataset, EvalSet, dict[str, Any]]:
    """The base data (before t1, its own users and items only), the data at t2 (the base's ids
    first, new ones after) and the test rows after t2 in the t2 data's indices."""
    split = temporal_split(full, valid_fraction=share, test_fraction=share)
    t1, t2 = split.info["valid_start"], split.info["test_start"]
    events, items, users = full.to_frames()
    time = events["timestamp"].to_numpy()
    before, after = events[time < t1], events[time >= t2]
    middle = events[(t1 <= time) & (time < t2)]

    def catalog(part: Any) -> Any:
        return items[items["item"].isin(set(part["item"].dropna()))]

    base = Dataset.from_frames(before, catalog(before), name=full.name, info=full.info, users=users)
    at_t2 = base.appended(middle, catalog(middle))
    everything = at_t2.appended(after, catalog(after))
    test = temporal_split(everything, valid_fraction=share, test_fraction=share).test
    known = test.target_items < at_t2.n_items  # items first seen after t2: nobody can rank them
    rows = test.target_rows()[known]
    indptr = np.zeros(len(test) + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=len(test)), out=indptr[1:])
    test = EvalSet(test.histories, indptr, test.target_items[known], test.target_values[known])
    test = test.take(np.flatnonzero(np.diff(indptr) > 0))
    facts = {
        "t1": int(t1),
        "t2": int(t2),
        "base": {"users": base.n_users, "items": base.n_items, "events": base.n_events},
        "at_t2": {"users": at_t2.n_users, "items": at_t2.n_items, "events": at_t2.n_events},
        "new": {
            "users": at_t2.n_users - base.n_users,
            "items": at_t2.n_items - base.n_items,
            "events": len(middle),
        },
        "test_users": len(test),
        "test_targets_dropped_unknown_items": int((~known).sum()),
    }
    return base, at_t2, test, facts


def timed(train: Any) -> tuple[Any, float, float]:
    """What ``train()`` returns, its wall seconds and the CPU seconds of this process (every
    thread's): the machine is shared, so the CPU time is the steadier measure."""
    start, cpu = time.perf_counter(), time.process_time()
    model = train()
    return model, time.perf_counter() - start, time.process_time() - cpu


def trained(cache: Path | None, key: str, train: Any) -> tuple[Recommender, float, float, bool]:
    """``timed(train)``, or the model and times saved in ``cache`` under ``key`` by an earlier
    run (so that options of the incremental run can be compared on the same base and full
    models); the last value says whether it came from the cache."""
    if cache is not None and (cache / key / "seconds.json").is_file():
        times = json.loads((cache / key / "seconds.json").read_text())
        return models.load(cache / key / "model"), times["wall"], times["cpu"], True
    model, wall, cpu = timed(train)
    if cache is not None:
        model.save(cache / key / "model")
        (cache / key / "seconds.json").write_text(json.dumps({"wall": wall, "cpu": cpu}))
    return model, wall, cpu, False


def keyword_defaults(function: Any) -> dict[str, Any]:
    """The keyword-only parameters of ``function`` and their defaults: the options a run used
    when it gave none, written out (defaults may change later)."""
    parameters = inspect.signature(function).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY}


def run(
    name: str,
    model_name: str,
    seed: int,
    params: dict[str, Any],
    options: dict[str, Any],
    cache: Path | None = None,
) -> dict[str, Any]:
    full = load_dataset(DATASETS[name], name=name)
    base_data, at_t2, test, facts = stages(full, 0.1)
    config = {**params, "seed": seed, "progress": False}
    key = f"{name}-{model_name}-{seed}-{json.dumps(params, sort_keys=True)}"
    base, base_seconds, _, cached = trained(
        cache, f"{key}-base", lambda: train_model(create(model_name, **config), base_data)
    )
    incremental, inc_seconds, inc_cpu = timed(lambda: continue_training(base, at_t2, **options))
    full_model, full_seconds, full_cpu, cached_full = trained(
        cache, f"{key}-full", lambda: train_model(create(model_name, **config), at_t2)
    )
    record: dict[str, Any] = {
        "dataset": name,
        "model": model_name,
        "seed": seed,
        "params": config,
        "incremental_options": {**keyword_defaults(base.partial_fit), **options},
        **facts,
        "from_cache": {"base": cached, "full": cached_full},
        "timings": {
            "base_seconds": base_seconds,
            "incremental_seconds": inc_seconds,
            "full_seconds": full_seconds,
            "incremental_cpu_seconds": inc_cpu,
            "full_cpu_seconds": full_cpu,
        },
    }
    for label, model in (("incremental", incremental), ("full", full_model)):
        result = evaluate(model, test, at_t2, ks=KS)
        record[label] = {"metrics": result.metrics, "n_users": result.n_users}
        if isinstance(model, ReportsTraining):
            record[label]["training"] = model.training_summary()
    inc, full_ = record["incremental"]["metrics"], record["full"]["metrics"]
    record["ndcg_ratio"] = inc["NDCG@10"] / full_["NDCG@10"]
    record["time_ratio"] = inc_seconds / full_seconds
    record["cpu_ratio"] = inc_cpu / full_cpu
    if isinstance(full_model, ReportsTraining):  # the work, which no other load changes
        work = [record[k]["training"]["trained_positions"] for k in ("incremental", "full")]
        record["work_ratio"] = work[0] / work[1]
    print(
        f"{name} {model_name} seed {seed}: NDCG@10 incremental {inc['NDCG@10']:.4f}"
        f" ({inc_seconds:.0f} s) vs full {full_['NDCG@10']:.4f} ({full_seconds:.0f} s):"
        f" ratio {record['ndcg_ratio']:.3f}, time {record['time_ratio']:.3f}",
        flush=True,
    )
    return record


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _options(record: dict[str, Any]) -> str:
    """The incremental run's options as written in the tables."""
    return json.dumps(record["incremental_options"])


def section(title: str, records: list[dict[str, Any]]) -> str:
    """The BENCHMARKS.md section: one row per run, then medians over seeds per model and
    incremental options, against the target."""
    rows = []
    for r in records:
        inc, full = r["incremental"], r["full"]
        rows.append(
            [
                r["model"],
                f"`{_options(r)}`",
                str(r["seed"]),
                f"{inc['metrics']['NDCG@10']:.4f}",
                f"{full['metrics']['NDCG@10']:.4f}",
                f"{inc['metrics']['HR@10']:.4f}",
                f"{full['metrics']['HR@10']:.4f}",
                f"{r['timings']['incremental_seconds']:.0f}",
                f"{r['timings']['full_seconds']:.0f}",
                _ratio(r["ndcg_ratio"]),
                _ratio(r["time_ratio"]),
                _ratio(r["cpu_ratio"]),
                _ratio(r.get("work_ratio")),
                f"{inc['training']['best_epoch']} / {inc['training']['epochs_run']}",
                f"{full['training']['best_epoch']} / {full['training']['epochs_run']}",
            ]
        )
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["dataset"], r["model"], _options(r)), []).append(r)
    verdicts = []
    for (dataset, model, options), group in groups.items():
        median = {
            key: statistics.median(r[key] for r in group) if all(key in r for r in group) else None
            for key in ("ndcg_ratio", "time_ratio", "cpu_ratio", "work_ratio")
        }
        met = median["ndcg_ratio"] >= 0.95 and median["time_ratio"] <= 0.3
        verdicts.append(
            [
                dataset,
                model,
                f"`{options}`",
                str(len(group)),
                *(_ratio(v) for v in median.values()),
                "met" if met else "missed",
            ]
        )
    first = records[0]
    params = {k: v for k, v in first["params"].items() if k != "seed"}
    body = (
        f"## {title}\n\n"
        f"{first['dataset']}, cut in time: the base model learns from the first 80% of the"
        f" events ({first['base']['users']:,} users, {first['base']['items']:,} items), then"
        f" {first['new']['events']:,} new events up to t2 bring {first['new']['users']:,}"
        f" new users and {first['new']['items']:,} new items; test: the events after t2 of"
        f" {first['test_users']:,} users ({first['test_targets_dropped_unknown_items']:,}"
        " targets naming items first seen after t2 dropped). Incremental (inc): the base"
        " trained further on every event up to t2 (`continue_training`, as `driftrec train"
        " --from` runs it); full: a fresh model of the same seed trained on the same events."
        " Full ranking, seen items excluded. Times are wall seconds of the training call; the"
        " CPU ratio compares this process's CPU seconds; the work ratio compares next-item"
        " targets trained (per epoch, times epochs run), which no other load on the machine"
        " changes. Best epoch / epochs run: 0 is the starting weights. Model parameters:"
        f" `{json.dumps(params)}`.\n\n"
        + markdown_table(
            [
                "model",
                "incremental options",
                "seed",
                "NDCG@10 inc",
                "NDCG@10 full",
                "HR@10 inc",
                "HR@10 full",
                "train s inc",
                "train s full",
                "NDCG ratio",
                "time ratio",
                "CPU ratio",
                "work ratio",
                "best epoch inc",
                "best epoch full",
            ],
            rows,
        )
        + "\n\nTarget: NDCG ratio >= 0.95 in time ratio <= 0.3 (medians over seeds).\n\n"
        + markdown_table(
            [
                "dataset",
                "model",
                "incremental options",
                "seeds",
                "NDCG ratio",
                "time ratio",
                "CPU ratio",
                "work ratio",
                "target",
            ],
            verdicts,
        )
    )
    runs = sorted({r["run_command"] for r in records if "run_command" in r})
    if runs:
        body += "\n\nRuns merged here:\n\n" + "\n".join(f"- `{c}`" for c in runs)
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=["ml-100k"])
    parser.add_argument("--models", nargs="+", default=["sasrec", "gru4rec"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--params", default="{}", help="JSON model parameters (both runs)")
    parser.add_argument("--options", default="{}", help="JSON options of partial_fit")
    parser.add_argument("--name", default="incremental", help="results / section name")
    parser.add_argument(
        "--cache",
        type=Path,
        help="keep the base and full models (and their training times) here and reuse them:"
        " other incremental options then cost only the incremental run",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="NAME",
        help="run nothing: one section (and results file --name) from these earlier results,"
        " e.g. one run per seed, each kept under 20 minutes",
    )
    parser.add_argument("--note", default="", help="a paragraph added under the tables")
    parser.add_argument(
        "--results-only",
        action="store_true",
        help="write the results JSON but no BENCHMARKS.md section (a part to --merge later)",
    )
    args = parser.parse_args()
    params, options = json.loads(args.params), json.loads(args.options)
    if args.merge:
        records = [
            r for name in args.merge for r in json.loads((RESULTS / f"{name}.json").read_text())
        ]
        records = [
            {**{k: v for k, v in r.items() if k not in ("command", "machine")},
             "run_command": r.get("run_command", r["command"])}
            for r in records
        ]  # fmt: skip
    else:
        records = [
            run(dataset, model, seed, params, options, args.cache)
            for dataset in args.datasets
            for model in args.models
            for seed in args.seeds
        ]
    write_results(args.name, records)
    if not args.results_only:
        body = section(f"Incremental training ({args.name})", records)
        update_markdown(args.name, body + (f"\n\n{args.note}" if args.note else ""))


if __name__ == "__main__":
    main()

"""Data-parallel training (issue 17, part 3): does `driftrec train --nproc 2` reach an NDCG@10
within the spread of single-process seeds, and at what wall time and samples/s per process?

Protocol: leave-one-out, full ranking, early stopping on validation NDCG@10, seen items excluded,
test metrics at the best validation epoch: as benchmarks/sequence_models.py. A single-process run
is `model.fit(split.train, valid=split.valid)` in this process (all cores as torch threads); a
data-parallel run is the real command, `driftrec train DATA -m MODEL --protocol loo --nproc N`, in
a subprocess (N processes, cores/N threads each, the same global batch and learning rate), whose
saved model is loaded and evaluated on the same split. Wall time is the whole training call (for
the data-parallel run: starting the processes, importing torch and reading the data in each
included); `train s` is the training loop's own time (epochs and validation) from the training
log. Samples are the next-item targets trained (the training log's positions x epochs);
samples/s per process divides by the processes. The machine is shared, so two steadier
figures go beside them: the median epoch's seconds (samples/s per process at that epoch), and
the CPU seconds of the whole training call (this process's for a single-process run; the
subprocess and the processes it spawned for a data-parallel one).

Each run is added to benchmarks/results/<name>.json as it finishes, so a long run can be stopped
and continued (--skip-done); the BENCHMARKS.md section is rewritten from that file each time.
Run from the repository root:
  nohup .venv/bin/python benchmarks/ddp.py --single-seeds 0 1 2 --ddp-seeds 0 1 2 > ddp.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import DATA, RESULTS, markdown_table, update_markdown, write_results

from driftrec import models
from driftrec.data.loaders import load_dataset
from driftrec.data.split import Split, make_split
from driftrec.evaluation.evaluator import evaluate
from driftrec.models import Recommender, create

DATASETS = {"ml-100k": DATA / "ml-100k", "ml-latest-small": DATA / "ml-latest-small"}
CLI = "from driftrec.cli.main import main; main()"


def record(
    model: Recommender,
    split: Split,
    mode: str,
    seed: int,
    processes: int,
    wall: float,
    cpu: float,
) -> dict[str, Any]:
    metrics = evaluate(model, split.test, split.train, ks=(10, 20)).metrics
    training = model.training_summary()
    samples = training["trained_positions"]
    median_epoch = statistics.median(e["seconds"] for e in model.log_.epochs)
    per_epoch = model.log_.positions
    return {
        "mode": mode,
        "seed": seed,
        "processes": processes,
        "params": model.get_params(),
        "protocol": "leave-one-out",
        "metrics": metrics,
        "training": training,
        "timings": {
            "wall_seconds": wall,
            "train_seconds": training["train_seconds"],
            "samples": samples,
            "samples_per_second": samples / training["train_seconds"],
            "samples_per_second_per_process": samples / training["train_seconds"] / processes,
            "median_epoch_seconds": median_epoch,
            "median_epoch_samples_per_second_per_process": per_epoch / median_epoch / processes,
            "cpu_seconds": cpu,
            "samples_per_cpu_second": samples / cpu,
        },
    }


def children_cpu() -> float:
    """CPU seconds of this process's finished children (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def single(split: Split, model_name: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    model = create(model_name, **{**params, "seed": seed})
    start, cpu = time.perf_counter(), time.process_time()
    model.fit(split.train, valid=split.valid)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return record(model, split, "single", seed, 1, wall, cpu)


def data_parallel(
    data: Path, model_name: str, params: dict[str, Any], seed: int, nproc: int, split: Split
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model"
        values = {**params, "seed": seed}
        pairs = [a for k, v in values.items() for a in ("-p", f"{k}={json.dumps(v)}")]
        args = [sys.executable, "-c", CLI, "train", str(data), "-m", model_name, *pairs]
        args += ["--protocol", "loo", "--nproc", str(nproc), "-o", str(out)]
        start, cpu = time.perf_counter(), children_cpu()
        subprocess.run(args, check=True)
        wall, cpu = time.perf_counter() - start, children_cpu() - cpu
        run = record(models.load(out), split, "ddp", seed, nproc, wall, cpu)
        return {**run, "train_command": args[3:]}


def report(
    name: str, records: list[dict[str, Any]], dataset: str, model_name: str, note: str = ""
) -> None:
    rows = []
    for mode in ("single", "ddp"):
        for r in (r for r in records if r["mode"] == mode):
            t = r["timings"]
            ddp = r["training"].get("distributed") or {}
            rows.append(
                [
                    mode,
                    str(r["seed"]),
                    str(r["processes"]),
                    str(
                        ddp.get("threads_per_process")
                        or r["params"].get("threads")
                        or r["machine"]["cores"]
                    ),
                    f"{r['metrics']['NDCG@10']:.4f}",
                    f"{r['metrics']['HR@10']:.4f}",
                    f"{r['training']['best_epoch']} / {r['training']['epochs_run']}",
                    f"{t['wall_seconds']:.0f}",
                    f"{t['train_seconds']:.0f}",
                    f"{t['samples_per_second']:,.0f}",
                    f"{t['samples_per_second_per_process']:,.0f}",
                    f"{t['median_epoch_seconds']:.1f}",
                    f"{t['median_epoch_samples_per_second_per_process']:,.0f}",
                    f"{t['cpu_seconds']:.0f}",
                    f"{t['samples_per_cpu_second']:,.0f}",
                ]
            )
    singles = [r["metrics"]["NDCG@10"] for r in records if r["mode"] == "single"]
    ddps = [r["metrics"]["NDCG@10"] for r in records if r["mode"] == "ddp"]
    verdict = ""
    if len(singles) >= 2 and ddps:
        low, high = min(singles), max(singles)
        inside = sum(low <= v <= high for v in ddps)
        verdict = (
            "\n\nTarget: data-parallel NDCG@10 within the spread of the single-process seeds."
            f" Single process, {len(singles)} seeds: {statistics.mean(singles):.4f}"
            f" (min {low:.4f}, max {high:.4f}, sd {statistics.stdev(singles):.4f}); data-parallel,"
            f" {len(ddps)} seed(s): {statistics.mean(ddps):.4f}"
            f" ({', '.join(f'{v:.4f}' for v in ddps)}); {inside} of {len(ddps)} within the"
            " single-process range (min to max)."
        )
    per_process = {
        mode: statistics.mean(
            r["timings"]["median_epoch_samples_per_second_per_process"]
            for r in records
            if r["mode"] == mode
        )
        for mode in ("single", "ddp")
        if any(r["mode"] == mode for r in records)
    }
    per_cpu = {
        mode: statistics.mean(
            r["timings"]["samples_per_cpu_second"] for r in records if r["mode"] == mode
        )
        for mode in per_process
    }
    if len(per_process) == 2:
        verdict += (
            "\n\nMeans over the runs: samples/s per process at the median epoch"
            f" {per_process['ddp']:,.0f} with 2 processes against {per_process['single']:,.0f}"
            f" for the single process ({2 * per_process['ddp'] / per_process['single']:.2f}x its"
            f" throughput in all); samples per CPU second {per_cpu['ddp']:,.0f} against"
            f" {per_cpu['single']:,.0f}."
        )
    if note:
        verdict += f"\n\n{note}"
    body = (
        f"## Distributed training (issue 17)\n\n{dataset}, {model_name} (default parameters),"
        " leave-one-out, full ranking, early stopping on validation NDCG@10, seen items"
        " excluded. `single`: one process, every core as a torch thread; `ddp`: `driftrec train"
        " --nproc 2` (DistributedDataParallel, gloo, each process half of every batch of 128 with"
        " cores/2 threads, the same learning rate). `wall s`: the whole training call (for ddp:"
        " spawning the processes, importing torch, reading the data in each); `train s`: the"
        " training loop (epochs with validation); samples: next-item targets trained."
        + verdict
        + "\n\n"
        + markdown_table(
            [
                "mode",
                "seed",
                "processes",
                "threads each",
                "NDCG@10",
                "HR@10",
                "best / run epochs",
                "wall s",
                "train s",
                "samples/s",
                "samples/s per process",
                "median epoch s",
                "samples/s per process (median epoch)",
                "CPU s",
                "samples per CPU s",
            ],
            rows,
        )
    )
    update_markdown(name, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="ml-100k", choices=sorted(DATASETS))
    parser.add_argument("--model", default="sasrec")
    parser.add_argument("--params", default="{}", help="JSON hyper-parameters over the defaults")
    parser.add_argument("--single-seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--ddp-seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--name", default="ddp", help="results / section name")
    parser.add_argument(
        "--skip-done", action="store_true", help="keep the runs already in the results file"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the BENCHMARKS.md section, run nothing"
    )
    parser.add_argument("--note", default="", help="a paragraph for the BENCHMARKS.md section")
    parser.add_argument(
        "--results-only", action="store_true", help="write the results JSON, not BENCHMARKS.md"
    )
    args = parser.parse_args()
    path = RESULTS / f"{args.name}.json"
    if args.report_only:
        records = json.loads(path.read_text())
        sys.argv = shlex.split(records[-1]["command"])[1:]  # the section names the runs' command
        report(args.name, records, args.dataset, args.model, args.note)
        return
    params = json.loads(args.params)
    data = DATASETS[args.dataset]
    split = make_split(load_dataset(data, name=args.dataset), "loo")
    records = json.loads(path.read_text()) if args.skip_done and path.is_file() else []
    done = {(r["mode"], r["seed"]) for r in records}
    # alternating, so that a run cut short has both kinds and both meet the same load
    plan = []
    for i in range(max(len(args.ddp_seeds), len(args.single_seeds))):
        plan += [("ddp", s) for s in args.ddp_seeds[i : i + 1]]
        plan += [("single", s) for s in args.single_seeds[i : i + 1]]
    for mode, seed in plan:
        if (mode, seed) in done:
            continue
        if mode == "single":
            run = single(split, args.model, params, seed)
        else:
            run = data_parallel(data, args.model, params, seed, args.nproc, split)
        run = {"dataset": args.dataset, "model": args.model, **run}
        t = run["timings"]
        print(
            f"{mode} seed {seed}: NDCG@10 {run['metrics']['NDCG@10']:.4f}, best epoch"
            f" {run['training']['best_epoch']} of {run['training']['epochs_run']},"
            f" wall {t['wall_seconds']:.0f} s, train {t['train_seconds']:.0f} s,"
            f" {t['samples_per_second_per_process']:,.0f} samples/s per process",
            flush=True,
        )
        kept = [{k: v for k, v in r.items() if k not in ("command", "machine")} for r in records]
        records = json.loads(write_results(args.name, [*kept, run]).read_text())
        if not args.results_only:
            report(args.name, records, args.dataset, args.model, args.note)


if __name__ == "__main__":
    main()

"""A/B tests on simulated users (issue 16): does the bootstrap over users hold its level, and
does it find a real difference?

- A/A: the same model in both arms (ALS by default, `--aa-model`: the test's level does not
  depend on the model, and ALS's sessions are the cheapest), users split by the service's
  stable hash with a new salt per run, 20 runs (each its own click draws): the share of runs in
  which the comparison declares a difference at alpha 0.05 (target: at most 10%).
- A/B: SASRec in one arm (the service's default model: reading item text), popularity in the
  other: the verdict, the CTR difference and its 95% interval, over a few runs.

Users are the synthetic generator's, in closed loop with the service's tracker in this process
(`evaluation.simulation.TrackerPlatform`, the same tracker `driftrec serve` runs); the
comparison is `driftrec.feedback.compare`, the one GET /metrics/online?by=variant uses.

Run from the repository root:
  .venv/bin/python benchmarks/abtest.py              # about 15 minutes on 2 cores
  .venv/bin/python benchmarks/abtest.py --runs 5     # a quicker look
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from common import markdown_table, update_markdown, write_results

from driftrec.data.synthetic import SyntheticConfig, generate
from driftrec.evaluation.experiment import train_model
from driftrec.evaluation.replay import scratch_tracker
from driftrec.evaluation.simulation import Population, TrackerPlatform, simulate
from driftrec.evaluation.tracking import Truth
from driftrec.feedback import Variant, assign, compare
from driftrec.models import create
from driftrec.models.base import Recommender
from driftrec.progress import track
from driftrec.tracking import Catalog

SESSIONS = 20  # five days of four sessions


class Split:
    """Platforms per arm, each user sent to the arm the service's hash gives them."""

    def __init__(self, arms: list[TrackerPlatform], variants: list[Variant], salt: str) -> None:
        self.arms, self.variants, self.salt = arms, variants, salt

    def _arm(self, user: str) -> TrackerPlatform:
        return self.arms[assign(user, self.variants, self.salt)]

    def recommend(self, user: str, k: int) -> list[str]:
        return self._arm(user).recommend(user, k)

    def act(self, user: str, item: str, timestamp: int, event: str) -> None:
        self._arm(user).act(user, item, timestamp, event)

    def shown(self, user: str, items: list[str], timestamp: int) -> None:
        self._arm(user).shown(user, items, timestamp)

    def clicked(self, user: str, item: str, timestamp: int) -> None:
        self._arm(user).clicked(user, item, timestamp)


def one_run(
    models: list[Recommender], truth: Truth, people: Population, salt: str, seed: int
) -> pd.DataFrame:
    """Impressions (user, variant, clicked) of one simulation split between ``models``."""
    variants = [Variant(f"arm{n}", Path("."), 1 / len(models)) for n in range(len(models))]
    catalog = Catalog.from_dataset(truth.dataset)
    with tempfile.TemporaryDirectory() as scratch:
        trackers = [
            scratch_tracker(m, catalog, Path(scratch) / f"{n}.db", len(people.users))
            for n, m in enumerate(models)
        ]
        try:
            split = Split([TrackerPlatform(t) for t in trackers], variants, salt)
            result = simulate(people, split, SESSIONS, seed=seed)
        finally:
            for t in trackers:
                t.close()
                t.store.close()
    arm = {u: variants[assign(u, variants, salt)].name for u in people.users}
    rows = []
    for u, clicked in zip(result.users, result.clicked, strict=True):
        user = people.users[u]
        shown = np.zeros(result.k, bool)
        if clicked >= 0:
            shown[clicked] = True
        rows += [{"user": user, "variant": arm[user], "clicked": c} for c in shown]
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--ab-runs", type=int, default=3)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--aa-model", default="als")
    args = parser.parse_args()
    truth = Truth.from_synthetic(generate(SyntheticConfig(n_users=args.users, seed=0)))
    train, people = Population.split(truth, 0.5)
    began = time.perf_counter()
    sasrec = train_model(create("sasrec", features="text", seed=0), train)
    pop = train_model(create("pop"), train)
    same = sasrec if args.aa_model == "sasrec" else train_model(create(args.aa_model), train)
    trained = time.perf_counter() - began
    records: list[dict[str, Any]] = []
    for run in track(range(args.runs), args.runs, "A/A runs"):
        impressions = one_run([same, same], truth, people, f"aa{run}", seed=run)
        result = compare(impressions, "arm0", "arm1", seed=run).to_dict()
        arms = f"{args.aa_model} vs {args.aa_model}"
        records.append({"test": "A/A", "run": run, "arms": arms, **result})
    for run in track(range(args.ab_runs), args.ab_runs, "A/B runs"):
        impressions = one_run([sasrec, pop], truth, people, f"ab{run}", seed=run)
        result = compare(impressions, "arm1", "arm0", seed=run).to_dict()  # SASRec vs pop
        records.append({"test": "A/B", "run": run, "arms": "pop (control) vs sasrec", **result})
    seconds = time.perf_counter() - began - trained
    aa = [r for r in records if r["test"] == "A/A"]
    ab = [r for r in records if r["test"] == "A/B"]
    false = sum(r["p_value"] is not None and r["p_value"] < 0.05 for r in aa)
    found = sum(r["verdict"] == "better" for r in ab)
    summary = {
        "users": len(people.users),
        "sessions": SESSIONS,
        "aa_runs": len(aa),
        "aa_false_positives": false,
        "aa_false_positive_rate": false / len(aa) if aa else None,
        "ab_runs": len(ab),
        "ab_found": found,
        "seconds": seconds,
    }
    print(summary)
    rows = [
        [
            r["test"],
            str(r["run"]),
            r["arms"],
            f"{r['control_ctr']:.4f}",
            f"{r['treatment_ctr']:.4f}",
            "-" if r["difference"] is None else f"{r['difference']:+.4f}",
            "-" if r["low"] is None else f"[{r['low']:+.4f}, {r['high']:+.4f}]",
            "-" if r["p_value"] is None else f"{r['p_value']:.3f}",
            r["verdict"],
        ]
        for r in records
    ]
    table = markdown_table(
        ["test", "run", "arms", "control CTR", "treatment CTR", "difference", "95% interval",
         "p", "verdict"],
        rows,
    )  # fmt: skip
    write_results("abtest", [{"summary": summary}, *records])
    update_markdown(
        "abtest",
        f"A/A: {false} of {len(aa)} runs declared a difference at alpha 0.05 (target: at most"
        f" 10%); A/B SASRec against popularity: found in {found} of {len(ab)} runs."
        f" {len(people.users)} simulated users, {SESSIONS} sessions each, CTR per impression"
        f" (10 slots a session), bootstrap over users (2,000 resamples).\n\n{table}",
    )


if __name__ == "__main__":
    main()

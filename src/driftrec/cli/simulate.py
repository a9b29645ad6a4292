"""`driftrec simulate`: simulated users with known drifting interests against real `driftrec
serve` processes over HTTP (docs/feedback.md, "Simulated users").

Each run trains (or loads) a model on the synthetic events before the split, serves it (live, or
``--frozen``, with the run's exploration share), and lets every user have their sessions: their
own next event, a recommendation request, the impressions and at most one click, posted with
the answer's request_id. Reported per run: CTR (the simulator's and the service's own online
metrics), expected CTR as a share of the best list's, recovery after abrupt shifts, coverage,
CTR per day, and how the items withheld from training ("new items") fared.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from driftrec.cli.output import console, labelled_table
from driftrec.cli.process import ServiceProcess
from driftrec.cli.replay import model_for_replay
from driftrec.client import Client
from driftrec.data.dataset import Dataset
from driftrec.data.synthetic import SyntheticConfig, generate
from driftrec.errors import InputError
from driftrec.evaluation.experiment import train_model
from driftrec.evaluation.simulation import CLICK, Population, Simulation, simulate
from driftrec.evaluation.tracking import Truth
from driftrec.models import create
from driftrec.progress import track


class HttpPlatform:
    """A running service as simulated users see it (`evaluation.simulation.Platform`)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._answer: dict[str, str] = {}  # each user's last request_id

    def recommend(self, user: str, k: int) -> list[str]:
        answer = self.client.recommend(user, k=k)
        self._answer[user] = answer["request_id"]
        return [i["item"] for i in answer["items"]]

    def act(self, user: str, item: str, timestamp: int, event: str) -> None:
        self.client.post_events(
            {"user": user, "item": item, "timestamp": timestamp, "event": event}
        )

    def shown(self, user: str, items: list[str], timestamp: int) -> None:
        if items:
            self.client.post_impressions(self._answer[user], user, items, timestamp)

    def clicked(self, user: str, item: str, timestamp: int) -> None:
        self.client.post_events(
            {
                "user": user,
                "item": item,
                "timestamp": timestamp,
                "event": CLICK,
                "request_id": self._answer[user],
            }
        )


@dataclass(frozen=True)
class Run:
    """One served configuration: a model, live or frozen, an exploration share."""

    model: str
    frozen: bool = False
    explore: float = 0.0
    demote_ignored: float = 0.0

    @property
    def label(self) -> str:
        parts = [self.model, "frozen" if self.frozen else "live"]
        if self.explore:
            parts.append(f"explore {self.explore:g}")
        if self.demote_ignored:
            parts.append(f"demote {self.demote_ignored:g}")
        return " · ".join(parts)


def _withhold(train: Dataset, share: float, seed: int) -> tuple[Dataset, np.ndarray]:
    """The training events without any of a random ``share`` of the items ("new items":
    in the catalog, never interacted with before the simulation), and those items."""
    if not 0 <= share < 1:
        raise InputError(f"--new-items must be in [0, 1), not {share}")
    rng = np.random.default_rng(seed)
    n = round(share * train.n_items)
    new = np.sort(rng.choice(train.n_items, size=n, replace=False)) if n else np.empty(0, int)
    keep = ~np.isin(train.events["item"].to_numpy(), new)
    return train.with_events(train.events[keep]), new


def run_simulation(
    names: list[str],
    users: int,
    days: int,
    sessions_per_day: int,
    frozen: bool,
    explore: list[float],
    demote_ignored: float,
    new_items: float,
    seed: int,
    k: int,
    home: Path,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Every run over HTTP; prints the tables and returns the JSON record."""
    for option, value in (
        ("--users", users),
        ("--days", days),
        ("--sessions-per-day", sessions_per_day),
        ("-k", k),
    ):
        if value < 1:
            raise InputError(f"{option} must be a positive integer, not {value}")
    for value in explore:
        if not 0 <= value <= 1:
            raise InputError(f"--explore must be between 0 and 1, not {value}")
    synthetic = generate(SyntheticConfig(n_users=users, seed=seed))
    truth = Truth.from_synthetic(synthetic)
    train, population = Population.split(truth, 0.5)
    train, withheld = _withhold(train, new_items, seed)
    data_dir = synthetic.save(home / "data")
    sessions = days * sessions_per_day
    gap = max(1, 86_400 // (sessions_per_day * len(population.users)))
    runs = [
        Run(name, mode, share, demote_ignored)
        for name in names
        for mode in ([False, True] if frozen else [False])
        for share in (explore if not mode else [0.0])
    ]
    models: dict[str, Path] = {}
    live: dict[str, Simulation] = {}  # each model's live run: the level a frozen one must reach
    records = []
    for run in runs:
        if run.model not in models:
            models[run.model] = _trained(run.model, train, population, data_dir, home, params)
        with tempfile.TemporaryDirectory(prefix="driftrec-simulate-") as scratch:
            args = [
                "--model", str(models[run.model]), "--db", f"sqlite:///{scratch}/events.db",
                "--explore", str(run.explore), "--demote-ignored", str(run.demote_ignored),
                "--live-users", str(max(len(population.users), 1)),
            ] + (["--frozen"] if run.frozen else [])  # fmt: skip
            service = ServiceProcess.start(args, home / "logs" / f"{len(records)}.log")
            began = time.perf_counter()
            try:
                with service.client() as client:
                    rounds = track(range(sessions), sessions, run.label)
                    step = iter(rounds)
                    result = simulate(
                        population,
                        HttpPlatform(client),
                        sessions,
                        k=k,
                        seed=seed,
                        gap=gap,
                        progress=lambda _, bar=step: next(bar, None),
                    )
                    online = client.online_metrics()
            finally:
                service.stop()
        if not run.frozen and not run.explore:
            live[run.model] = result
        reference = live.get(run.model) if run.frozen else None
        records.append(
            _record(
                run,
                result,
                reference,
                online,
                withheld,
                sessions_per_day,
                time.perf_counter() - began,
            )
        )
    console.print(_summary_table(records))
    console.print(_daily_table(records))
    if len(withheld):
        console.print(_new_items_table(records))
    return {
        "users": len(population.users),
        "days": days,
        "sessions_per_day": sessions_per_day,
        "k": k,
        "seed": seed,
        "new_items": len(withheld),
        "catalog": truth.dataset.n_items,
        "runs": records,
    }


def _trained(
    name: str,
    train: Dataset,
    population: Population,
    data_dir: Path,
    home: Path,
    params: dict[str, Any],
) -> Path:
    """The model ``name`` (a registry name, trained here on the events before the split, or
    a model directory trained on them), saved where the service can load it."""
    label, loaded = model_for_replay(name, train, population.start_time, params)
    if loaded is not None:
        return Path(label)
    model = create(name, **params)
    console.print(f"training {name} on {train.n_events:,} events before the simulation")
    train_model(model, train, "all")
    return model.save(home / "models" / name, info={"dataset": str(data_dir.resolve())})


def _record(
    run: Run,
    result: Simulation,
    reference: Simulation | None,
    online: dict[str, Any],
    withheld: np.ndarray,
    sessions_per_day: int,
    seconds: float,
) -> dict[str, Any]:
    service = online["groups"][0] if online["groups"] else {}
    return {
        "run": run.label,
        "model": run.model,
        "frozen": run.frozen,
        "explore": run.explore,
        "demote_ignored": run.demote_ignored,
        **(summary := result.summary(reference)),
        "median_recovery_hours": None
        if summary["median_recovery_sessions"] is None
        else summary["median_recovery_sessions"] * 24 / sessions_per_day,
        "recovery_reference": "the live run's pre-shift level" if reference else "its own",
        "service_ctr_per_impression": service.get("ctr"),
        "service_impressions": online["impressions"],
        "service_unlinked_outcomes": online["unlinked_outcomes"],
        "recovery": result.recovery(reference).to_dict("records"),
        "daily": result.daily(sessions_per_day).to_dict("records"),
        "new_items": result.new_items(withheld, sessions_per_day) if len(withheld) else None,
        "seconds": seconds,
        "sessions_per_second": len(result.clicked) / seconds,
    }


def _summary_table(records: list[dict[str, Any]]) -> Table:
    table = labelled_table(
        "simulated users: every session",
        ["run", "CTR", "expected / best", "median recovery: sessions / events / hours",
         "censored", "coverage", "service CTR/impression", "sessions/s"],
    )  # fmt: skip
    for r in records:
        recovery = r["median_recovery_sessions"]
        table.add_row(
            r["run"],
            f"{r['ctr']:.3f}",
            f"{r['expected_ctr'] / r['best_ctr']:.3f}",
            "-"
            if recovery is None
            else f"{recovery:g} / {r['median_recovery_events']:g} / {r['median_recovery_hours']:g}",
            f"{r['censored']}/{r['abrupt_shifts']}",
            f"{r['coverage']:.3f}",
            _maybe(r["service_ctr_per_impression"], ".4f"),
            f"{r['sessions_per_second']:.0f}",
        )
    return table


def _daily_table(records: list[dict[str, Any]]) -> Table:
    table = labelled_table("CTR per simulated day", ["day", *(r["run"] for r in records)])
    for n, day in enumerate(records[0]["daily"]):
        table.add_row(str(day["day"]), *(f"{r['daily'][n]['ctr']:.3f}" for r in records))
    return table


def _new_items_table(records: list[dict[str, Any]]) -> Table:
    table = labelled_table(
        "new items (no training events)",
        ["run", "shown on day 1", "impressions day 1", "impressions", "clicks", "CTR"],
    )
    for r in records:
        n = r["new_items"]
        table.add_row(
            r["run"],
            f"{n['shown_on_first_day']}/{n['new_items']}",
            f"{n['first_day_impressions']:,}",
            f"{n['impressions']:,}",
            f"{n['clicks']:,}",
            _maybe(n["ctr"], ".3f"),
        )
    return table


def _maybe(value: float | None, form: str) -> str:
    return "-" if value is None else format(value, form)


__all__ = ["HttpPlatform", "Run", "run_simulation"]

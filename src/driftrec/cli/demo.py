"""`driftrec demo`: the whole pipeline on built-in synthetic data whose true interests are known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from rich.table import Table

from driftrec.cli.output import console, metrics_table, print_report
from driftrec.data.split import make_split
from driftrec.data.synthetic import SyntheticConfig, SyntheticData, generate
from driftrec.evaluation.experiment import fit_and_evaluate
from driftrec.evaluation.tracking import Truth
from driftrec.models.base import Recommender
from driftrec.models.fused import FusedInterest
from driftrec.reports import Report, user_story

# Baselines, the language-model content model, then the long + short interest model (capped at
# 40 epochs to keep the demo short).
DEMO_MODELS: dict[str, dict[str, object]] = {
    "pop": {},
    "recent-pop": {},
    "itemknn": {},
    "bpr": {},
    "als": {},
    "content": {},
    "fused": {"epochs": 40},
}
TEXT_QUERY = "I am looking for something about {}"  # free-text interest, one per shown category


def run_demo(out: Path, n_users: int = 500, seed: int = 0) -> dict[str, Recommender]:
    """Generate, import, split, train, evaluate and recommend; write everything under ``out``."""
    with console.status("generating synthetic users with drifting interests"):
        data = generate(SyntheticConfig(n_users=n_users, seed=seed))
    data.save(out / "data")
    print_report(data.dataset)
    console.print(
        f"  {len(data.drifts):,} known interest changes across {data.drifts['user'].nunique():,}"
        f" users ({', '.join(f'{n} {k}' for k, n in data.drifts['kind'].value_counts().items())})"
    )

    split = make_split(data.dataset, "loo")
    fitted, records = {}, []
    for name, params in DEMO_MODELS.items():
        with console.status(f"training and evaluating {name}"):
            model, record = fit_and_evaluate(split, name, params, ks=(10, 20))
        model.save(
            out / "models" / name,
            info={"dataset": str((out / "data").resolve()), "protocol": "loo"},
        )
        fitted[name] = model
        records.append(record)
    console.print(metrics_table(records, "synthetic · leave-one-out · full ranking, seen excluded"))
    (out / "results.json").write_text(json.dumps(records, indent=2, default=str))
    user = _show_drifting_user(
        data, fitted["als"], fitted["itemknn"], fitted["content"], fitted["fused"]
    )
    if user is not None:
        _write_report(out / "report.html", data, fitted["fused"], user)
    _show_gate(data, fitted["fused"])
    queries = _show_text_queries(data, fitted["content"])
    (out / "text_queries.json").write_text(json.dumps(queries, indent=2))
    console.print(f"\ndataset, models and results.json written under [bold]{out}[/bold]")
    return fitted


def _write_report(path: Path, data: SyntheticData, model: Recommender, user: str) -> None:
    """The HTML report of the shown user: their interest as the service tracks it, beside the
    truth (`driftrec report` for any user)."""
    with console.status(f"writing the interest report of user {user}"):
        story = user_story(model, data.dataset, user, Truth.from_synthetic(data))
        report = Report(f"driftrec demo: user {user}")
        report.add_user(story)
        report.write(path)
    console.print(f"interest report of user {user} (opens offline): [bold]{path}[/bold]")


def _show_drifting_user(data: SyntheticData, *models: Recommender) -> str | None:
    """Recommendations for a user whose taste switched abruptly, next to their true interest;
    the user shown."""
    abrupt = data.drifts[data.drifts["kind"] == "abrupt"]
    if abrupt.empty:
        return None
    user = str(abrupt.iloc[-1]["user"])
    dataset = data.dataset
    history = dataset.histories(dataset.user_index([user]))
    now = int(history.timestamps[-1])
    truth = data.true_interest(user, now)
    top_truth = np.array([c for c in np.argsort(-truth)[:3] if truth[c] > 0.01])
    console.print(
        f"\n[bold]user {user}[/bold]: true interest now: "
        + ", ".join(f"{data.categories[c]} {truth[c]:.0%}" for c in top_truth)
    )
    for _, change in data.drifts[data.drifts["user"] == user].iterrows():
        console.print(
            f"  {change['kind']} change from {change['from_category']} to {change['to_category']}"
        )
    recent = history.items[-5:]
    console.print(
        "  last items: "
        + "; ".join(
            f"{dataset.items.at[int(i), 'title']} ({data.categories[data.item_category[i]]})"
            for i in recent
        )
    )
    table = Table(title=f"top 5 for {user}", title_justify="left")
    table.add_column("model", style="bold")
    table.add_column("recommended categories")
    table.add_column("share in current interests", justify="right")
    for model in models:
        recs = model.recommend([user], k=5)
        items = recs.items[0, : recs.lengths[0]]
        cats = data.item_category[items]
        table.add_row(
            model.name,
            ", ".join(data.categories[c] for c in cats),
            f"{np.isin(cats, top_truth).mean():.0%}",
        )
    console.print(table)
    return user


def _show_text_queries(
    data: SyntheticData, content: Recommender, n: int = 3
) -> list[dict[str, object]]:
    """Free-text interest with no history: a sentence naming a category, against the category
    each recommended item really has. Returns one record per sentence."""
    records: list[dict[str, object]] = []
    table = Table(title="free-text interest (content model, no history)", title_justify="left")
    table.add_column("sentence", style="bold")
    table.add_column("top 5 items (true categories)")
    table.add_column("in the named category", justify="right")
    for category in data.categories[:n]:
        sentence = TEXT_QUERY.format(category)
        recs = content.recommend(text=sentence, k=5)
        items = recs.items[0, : recs.lengths[0]]
        item_categories = [list(data.dataset.items["categories"][i]) for i in items]
        listed = "; ".join(
            f"{data.dataset.items.at[int(i), 'title']} ({', '.join(c)})"
            for i, c in zip(items, item_categories, strict=True)
        )
        share = float(np.mean([category in c for c in item_categories]))
        table.add_row(sentence, listed, f"{share:.0%}")
        records.append(
            {
                "text": sentence,
                "category": category,
                "items": [str(data.dataset.item_ids[i]) for i in items],
                "item_categories": item_categories,
                "precision@5": share,
            }
        )
    console.print(table)
    return records


def _show_gate(data: SyntheticData, fused: FusedInterest) -> None:
    """The fused model's short-term weight for users whose taste changed against stable users."""
    dataset = data.dataset
    gates = fused.gate(dataset.histories())
    drifted = dataset.user_index(data.drifts["user"].unique())
    stable = np.setdiff1d(np.arange(dataset.n_users), drifted)
    console.print(
        f"fused model, weight of the short-term side at the newest event (median): users whose"
        f" interest changed {np.median(gates[drifted]):.2f}, stable users"
        f" {np.median(gates[stable]) if len(stable) else float('nan'):.2f}"
    )

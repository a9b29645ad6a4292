"""The `driftrec` command: import, train, evaluate, tune, recommend, replay, report, serve, demo.

Every command reports bad input as one line on stderr naming the file, row or field, and exits with
code 2; no traceback reaches the user.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer

from driftrec import distributed
from driftrec.cli.output import (
    console,
    guarded,
    labelled_table,
    metrics_table,
    no_test_users_note,
    print_error,
    print_report,
)
from driftrec.data.dataset import DATASET_MARK, Dataset
from driftrec.data.pseudonyms import pseudonymise_ids, secret_from_env
from driftrec.data.split import PROTOCOLS, check_protocol, make_split
from driftrec.errors import InputError, UnknownIdError
from driftrec.evaluation.experiment import TRAIN_PROTOCOLS, fit_and_evaluate, train_model
from driftrec.models.base import MODEL_MARK, Recommender, read_config, trained_on
from driftrec.models.capabilities import HasDriftGate, ReportsTraining
from driftrec.params import PROBABILITY
from driftrec.paths import check_output_directory, check_output_file, read_json

app = typer.Typer(
    help="driftrec: recommendations that follow each user's drifting interests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _parse_pairs(pairs: list[str], what: str) -> dict[str, Any]:
    """``key=value`` flags into a dict; values are read as JSON when they parse (numbers, null)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"{what} {pair!r} is not of the form key=value")
        if key in out:
            raise InputError(f"{what} {key!r} is given twice")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


# Which source options each format takes (the CLI flag is the name with "-" for "_").
_SOURCE_OPTIONS = {
    "events": {"columns", "event_type", "timestamp_unit", "sep", "encoding", "items"},
    "sequences": {"encoding", "items"},
    "rechorus": {"items"},
    "json-sequences": {"items"},
}
_SEPARATOR_NAMES = {"tab": "\t", "\\t": "\t", "space": " "}


def _flag(option: str) -> str:
    """The CLI flag of a library option: columns -> --column, secret -> --secret-env."""
    names = {"columns": "column", "secret": "secret-env"}
    return "--" + names.get(option, option).replace("_", "-")


def _open_dataset(
    source: Path,
    data_format: str = "auto",
    source_options: dict[str, Any] | None = None,
    **prepare_options: Any,
) -> Dataset:
    """Load any importable source; ``source_options`` apply to the formats that read them
    (an event file takes all, a sequence file the encoding and an item catalog); anything else
    is an error."""
    from driftrec.data.loaders import FORMATS, detect_format, load_dataset

    if data_format not in FORMATS:
        raise InputError(f"unknown format {data_format!r}; choose one of: {', '.join(FORMATS)}")
    fmt = detect_format(source) if data_format == "auto" else data_format
    options = {k: v for k, v in prepare_options.items() if v is not None and v is not False}
    source_options = source_options or {}
    unused = sorted(source_options.keys() - _SOURCE_OPTIONS.get(fmt, set()))
    if unused:
        verb = "does" if len(unused) == 1 else "do"
        raise InputError(
            f"{source}: {', '.join(_flag(o) for o in unused)} {verb} not apply to format {fmt!r}"
        )
    options.update(source_options)
    if fmt == "dataset" and options.keys() - {"name"}:
        flags = ", ".join(_flag(k) for k in options if k != "name")
        raise InputError(f"{source}: already a prepared dataset; {flags} apply to raw sources")
    if fmt == "dataset":
        options = {}
    with console.status(f"reading {source}"):
        return load_dataset(source, format=fmt, **options)


@app.command("import")
@guarded
def import_(
    source: Annotated[Path, typer.Argument(help="File or directory to import.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset directory to write.")],
    data_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="auto|dataset|movielens-100k|movielens-latest|rechorus|json-sequences|sequences"
            "|events",
        ),
    ] = "auto",
    items: Annotated[
        Path | None, typer.Option(help="Item catalog (CSV/Parquet) for an event file.")
    ] = None,
    column: Annotated[
        list[str], typer.Option("--column", "-c", help="Column mapping, e.g. user=visitorid.")
    ] = [],  # noqa: B006 - typer reads the default, it is never mutated
    event_type: Annotated[
        str | None, typer.Option(help="Event type when the file has none (interaction).")
    ] = None,
    timestamp_unit: Annotated[
        str | None, typer.Option(help="s|ms|us|ns|auto (auto: from the magnitude).")
    ] = None,
    sep: Annotated[
        str | None,
        typer.Option(help="Field separator of an event file: a character, 'tab' or 'space'."),
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="Text encoding of an event or sequence file (utf-8).")
    ] = None,
    min_user: Annotated[
        int | None, typer.Option(help="k-core: min item events per user (default 1).")
    ] = None,
    min_item: Annotated[
        int | None, typer.Option(help="k-core: min item events per item (default 1).")
    ] = None,
    secret_env: Annotated[
        str | None,
        typer.Option(help="Pseudonymise user ids with HMAC keyed by this environment variable."),
    ] = None,
    keep_user_attributes: Annotated[
        bool,
        typer.Option(help="With --secret-env, keep user attributes (age, zip...); dropped else."),
    ] = False,
    name: Annotated[str | None, typer.Option(help="Dataset name (default: source name).")] = None,
) -> None:
    """Import events (and an item catalog) into a prepared dataset directory."""
    check_output_directory(out, DATASET_MARK)
    if sep == "" or (name is not None and not name.strip()):
        raise InputError(f"{'--sep' if sep == '' else '--name'} is empty")
    secret = None if secret_env is None else secret_from_env(secret_env)
    if keep_user_attributes and secret is None:
        raise InputError("--keep-user-attributes only applies with --secret-env")
    given = {
        "columns": _parse_pairs(column, "--column") if column else None,
        "event_type": event_type,
        "timestamp_unit": timestamp_unit,
        "sep": None if sep is None else _SEPARATOR_NAMES.get(sep, sep),
        "encoding": encoding,
        "items": items,
    }
    dataset = _open_dataset(
        source,
        data_format,
        {k: v for k, v in given.items() if v is not None},
        min_user=min_user,
        min_item=min_item,
        secret=secret,
        keep_user_attributes=keep_user_attributes,
        name=name,
    )
    dataset.save(out)
    print_report(dataset)
    console.print(f"wrote [bold]{out}[/bold]")


def _grid_values(pairs: list[str]) -> dict[str, list[Any]] | None:
    """``key=v1,v2`` flags into {key: [v1, v2]}, values read as JSON when they parse."""
    if not pairs:
        return None
    grid: dict[str, list[Any]] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key or not raw:
            raise InputError(f"--grid {pair!r} is not of the form key=value1,value2")
        if key in grid:
            raise InputError(f"--grid {key!r} is given twice; list every value in one --grid")
        grid[key] = [_parse_pairs([f"{key}={v}"], "--grid")[key] for v in raw.split(",")]
    return grid


def _model_params(params: list[str], config: Path | None) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    if config is not None:
        if not config.is_file():
            raise InputError(f"{config}: {'not a file' if config.exists() else 'not found'}")
        merged.update(read_json(config))
    merged.update(_parse_pairs(params, "--param"))
    return merged


@app.command()
@guarded
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write.")],
    data: Annotated[
        Path | None,
        typer.Argument(
            help="Dataset directory (or any importable source); with --from, every event: those"
            " the model learned from and newer ones."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model name, see `models`; auto: try the candidates on validation data within"
            " --time-budget and keep the best.",
        ),
    ] = None,
    param: Annotated[
        list[str], typer.Option("--param", "-p", help="Hyper-parameter, e.g. factors=128.")
    ] = [],  # noqa: B006
    config: Annotated[Path | None, typer.Option(help="JSON file of hyper-parameters.")] = None,
    time_budget: Annotated[
        str | None,
        typer.Option(help="With -m auto: the time to spend, e.g. 30m, 2h, 900 (default 30m)."),
    ] = None,
    protocol: Annotated[
        str,
        typer.Option(
            help="all: learn from every event (neural models stop early on each user's"
            " second-to-last event); loo|temporal: learn from that split's training part only,"
            " to `evaluate` the model on held-out events."
        ),
    ] = "all",
    from_: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="A model directory to train further on the events that arrived since it was"
            " trained (new users and items added) instead of from scratch: SASRec, GRU4Rec,"
            " fused, ALS.",
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            help="With --from: the service's event store (sqlite:///file.db or"
            " postgresql+psycopg://...), whose events join the model's training dataset"
            " (or DATA)."
        ),
    ] = None,
    nproc: Annotated[
        int,
        typer.Option(
            "--nproc",
            min=1,
            help="Train in this many processes on this machine, data-parallel (torch"
            " DistributedDataParallel; the neural models: SASRec, GRU4Rec, fused), each on its"
            " share of every batch with cores/N threads; the same global batch and learning"
            " rate as one process. See docs/training-distributed.md.",
        ),
    ] = 1,
) -> None:
    """Train a model on a dataset and save it for `recommend` (or, with --protocol loo|temporal,
    for `evaluate`); with --from, train a saved model further on the newer events."""
    from driftrec.models import create
    from driftrec.models.neural import NeuralSequenceModel

    if nproc > 1 and distributed.world_size() > 1:
        raise InputError(
            f"--nproc {nproc}: this is already one of {distributed.world_size()} processes"
            " (torchrun); leave --nproc out"
        )
    if from_ is not None:
        if nproc > 1 or distributed.world_size() > 1:
            raise InputError(
                "--from trains in one process; data-parallel training (--nproc, torchrun) is for"
                " training from scratch"
            )
        given = [f for f, v in (("--model", model), ("--param", param), ("--config", config)) if v]
        if given or protocol != "all":
            flag = given[0] if given else "--protocol"
            raise InputError(
                f"{flag} does not apply with --from: the saved model's own configuration is"
                " trained further, on every event"
            )
        _train_further(from_, data, db, out)
        return
    if db is not None:
        raise InputError("--db only applies with --from (training a saved model further)")
    if data is None or model is None:
        raise InputError(
            "give a dataset and --model, or --from MODEL_DIR to train a saved model further"
        )
    check_protocol(protocol, TRAIN_PROTOCOLS)
    check_output_directory(out, MODEL_MARK)
    if model == "auto":
        if param or config or nproc > 1:
            flag = "--param" if param else "--config" if config else "--nproc"
            raise InputError(f"{flag} does not apply with -m auto: it chooses the settings")
        _train_auto(data, time_budget or "30m", protocol, out)
        return
    if time_budget is not None:
        raise InputError("--time-budget only applies with -m auto (else: -p time_budget=SECONDS)")
    params = _model_params(param, config)
    recommender = create(model, **params)
    processes = max(nproc, distributed.world_size())
    if processes > 1 and not isinstance(recommender, NeuralSequenceModel):
        raise InputError(
            f"{model} trains in one process; data-parallel training (--nproc, torchrun) is for"
            " the neural models (sasrec, gru4rec, fused)"
        )
    dataset = _open_dataset(data)
    if nproc == 1:
        if distributed.rank() == 0:
            console.print(f"training {model} on {dataset.n_events:,} events ({protocol})")
        _train_and_save(recommender, dataset, data, protocol, out, quiet=distributed.rank() > 0)
        return
    console.print(
        f"training {model} on {dataset.n_events:,} events ({protocol}) in {nproc} processes,"
        f" {distributed.threads_per_process(nproc)} threads each"
    )
    distributed.launch(nproc, _train_process, data, model, params, protocol, out)
    from driftrec.models import load

    trained = load(out)
    if isinstance(trained, ReportsTraining):
        _training_line(trained)
    console.print(f"trained [bold]{trained!r}[/bold] -> {out}")


def _train_auto(data: Path, budget_text: str, protocol: str, out: Path) -> None:
    """`train -m auto`: the candidates on validation data within the budget; the best saved,
    with the leaderboard in its info."""
    from driftrec.evaluation.selection import parse_duration, select_model

    budget = parse_duration(budget_text)
    dataset = _open_dataset(data)
    console.print(
        f"choosing a model for {dataset.n_events:,} events ({protocol}) within {budget:.0f} s"
    )
    selection = select_model(dataset, budget, protocol, report=console.print)
    table = labelled_table(
        f"leaderboard (validation, {selection.seconds:.0f} s of {budget:.0f})",
        ["model", "NDCG@10", "HR@10", "seconds", "rungs", "status"],
    )
    for trial in selection.trials:
        table.add_row(
            trial.label(),
            f"{trial.valid.get('NDCG@10', float('nan')):.4f}",
            f"{trial.valid.get('HR@10', float('nan')):.4f}",
            f"{trial.seconds:.1f}",
            str(trial.rungs),
            trial.status,
        )
    console.print(table)
    winner = selection.winner
    preprocessing = dataset.info.get("preprocessing", {})
    info: dict[str, Any] = {
        "dataset": str(data.resolve()),
        "protocol": protocol,
        "pseudonymised": bool(preprocessing.get("pseudonymised")),
        "auto": {"budget_seconds": budget, "leaderboard": selection.leaderboard()},
    }
    if isinstance(winner, ReportsTraining):
        info["training"] = winner.training_summary()
    winner.save(out, info=info)
    console.print(f"chose [bold]{selection.trials[0].label()}[/bold] -> {out}")


def _train_process(
    data: Path, model: str, params: dict[str, Any], protocol: str, out: Path
) -> None:
    """One of `train --nproc`'s processes: train with the others, rank 0 saves; none prints."""
    from driftrec.models import create

    with console.capture():  # the launching process reports
        dataset = _open_dataset(data)
        _train_and_save(create(model, **params), dataset, data, protocol, out, quiet=True)


def _train_and_save(
    recommender: Recommender, dataset: Dataset, data: Path, protocol: str, out: Path, quiet: bool
) -> None:
    """Train and save the model (in a data-parallel run, only rank 0 saves)."""
    train_model(recommender, dataset, protocol)
    if distributed.rank() > 0:
        return
    preprocessing = dataset.info.get("preprocessing", {})
    info: dict[str, Any] = {
        "dataset": str(data.resolve()),
        "protocol": protocol,
        "pseudonymised": bool(preprocessing.get("pseudonymised")),
    }
    if isinstance(recommender, ReportsTraining):
        info["training"] = recommender.training_summary() if quiet else _training_line(recommender)
    recommender.save(out, info=info)
    if not quiet:
        console.print(f"trained [bold]{recommender!r}[/bold] -> {out}")


def _training_line(recommender: ReportsTraining) -> dict[str, Any]:
    """Print how training went (best epoch, validation score, seconds); returns the summary."""
    training = recommender.training_summary()
    best = training["best_valid_ndcg@10"]
    start = training.get("start_valid_ndcg@10")
    console.print(
        f"  best epoch {training['best_epoch']} of {training['epochs_run']},"
        + (f" validation NDCG@10 {best:.4f}," if best is not None else " no validation,")
        + (f" {start:.4f} before," if start is not None else "")
        + f" {training['train_seconds']:.0f} s"
    )
    return training


def _train_further(source: Path, data: Path | None, db: str | None, out: Path) -> None:
    """`train --from`: the saved model trained further on DATA, or on its training dataset
    joined with the event store's events (`--db`), and saved to ``out``."""
    from driftrec import models
    from driftrec.evaluation.experiment import continue_training, moment
    from driftrec.models.capabilities import ContinuesTraining

    check_output_directory(out, MODEL_MARK)
    recorded = read_config(source).get("info", {})
    recommender = models.load(source)
    if not isinstance(recommender, ContinuesTraining):
        raise InputError(
            f"{source}: a {recommender.name!r} model cannot be trained further; train it from"
            f" scratch with --model {recommender.name}"
        )
    if data is None and db is None:
        raise InputError(
            "--from needs the newer events: give DATA (every event) or --db URL (the service's"
            " event store)"
        )
    base = data if data is not None else trained_on(source)
    if base is None:
        raise InputError(
            f"{source}: the dataset it was trained on ({recorded.get('dataset') or 'not recorded'})"
            " is not there any more; give it as DATA"
        )
    dataset = _open_dataset(base)
    info: dict[str, Any] = {}
    if db is not None:
        events, items, shown = _store_frames(db)
        dataset = dataset.appended(events, items)
        info["store"] = {"url": shown, "events": len(events)}
    since = recommender.trained_until_
    newer = int((dataset.item_events()["timestamp"].to_numpy() > since).sum())
    users, items_before = len(recommender.user_ids_), recommender.n_items
    console.print(
        f"training {recommender.name} from {source} further: {newer:,} item events after"
        f" {moment(since, dataset)} (the newest it learned from), {dataset.n_events:,} in all"
    )
    start = time.perf_counter()
    continue_training(recommender, dataset)
    seconds = time.perf_counter() - start
    added = {
        "users": len(recommender.user_ids_) - users,
        "items": recommender.n_items - items_before,
        "events": newer,
    }
    console.print(
        f"  added {added['users']:,} new users, {added['items']:,} new items and {newer:,} new"
        f" item events in {seconds:.1f} s"
    )
    preprocessing = dataset.info.get("preprocessing", {})
    info = {
        "dataset": str(base.resolve()),
        "protocol": "all",
        "pseudonymised": bool(preprocessing.get("pseudonymised")),
        "continued_from": str(source.resolve()),
        "added": added,
        "seconds": seconds,
        **info,
    }
    if isinstance(recommender, ReportsTraining):
        info["training"] = _training_line(recommender)
    recommender.save(out, info=info)
    console.print(f"trained [bold]{recommender!r}[/bold] further -> {out}")


def _store_frames(url: str) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Every event and catalog item of the event store at ``url`` as raw frames (external ids),
    and the URL as it may be shown (no password). A one-line error when it is not a store."""
    import sqlalchemy as sa

    from driftrec.store import EventStore

    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise InputError(f"--db {url!r} is not a database URL") from None
    shown = parsed.render_as_string(hide_password=True)
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file not in (None, "", ":memory:") and not Path(file).is_file():
        # opening it would create an empty store
        raise InputError(f"--db {shown}: no such SQLite file {file}")
    try:
        store = EventStore(url)
        try:
            stored, catalog = store.all_events(), store.items()
        finally:
            store.close()
    except sa.exc.SQLAlchemyError as err:
        reason = str(getattr(err, "orig", None) or err).splitlines()[0]
        raise InputError(f"--db {shown}: cannot read the event store ({reason})") from None
    if not stored:
        raise InputError(f"--db {shown}: the event store holds no events")
    events = pd.DataFrame(
        {
            "user": [e.user for e in stored],
            "item": [e.event.item for e in stored],
            "timestamp": np.array([e.event.timestamp for e in stored], np.int64),
            "event": [e.event.event for e in stored],
            "value": np.array([e.event.value for e in stored], np.float64),
            "text": [e.event.text for e in stored],
        }
    )
    items = pd.DataFrame(
        {
            "item": [i.item for i in catalog],
            "title": [i.title for i in catalog],
            "text": [i.text for i in catalog],
            "categories": [list(i.categories) for i in catalog],
        }
    )
    return events, items, shown


@app.command("evaluate")
@guarded
def evaluate_(
    data: Annotated[Path, typer.Argument(help="Dataset directory (or any importable source).")],
    model: Annotated[
        list[str],
        typer.Option("--model", "-m", help="Model name(s) to fit and evaluate, or a model dir."),
    ] = ["pop", "itemknn", "als"],  # noqa: B006
    protocol: Annotated[str, typer.Option(help="|".join(PROTOCOLS))] = "loo",
    k: Annotated[list[int], typer.Option("--k", "-k", help="Cut-offs.")] = [10],  # noqa: B006
    include_seen: Annotated[
        bool, typer.Option(help="Rank already-seen items too (default: excluded).")
    ] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results here.")] = None,
) -> None:
    """Evaluate models by full ranking over the catalog and print a metrics table."""
    check_protocol(protocol)
    if json_out is not None:
        check_output_file(json_out)
    candidates = [_model_to_evaluate(name, protocol) for name in model]  # before any work
    dataset = _open_dataset(data)
    split = make_split(dataset, protocol)
    ks = tuple(sorted(set(k)))
    records = []
    for name, recommender in candidates:
        if not isinstance(recommender, str) and not recommender.has_ids_of(dataset):
            raise InputError(
                f"{name}: the model's user and item ids ({recommender.n_items} items) are not"
                f" those of {data} ({dataset.n_items} items); evaluate it on the dataset it"
                " was trained on"
            )
        _, record = fit_and_evaluate(
            split,
            recommender,
            ks=ks,
            exclude_seen=not include_seen,
            progress=True,
            refit=isinstance(recommender, str),
        )
        record["model"] = name
        records.append(record)
    console.print(metrics_table(records, f"{dataset.name} · {split.protocol} · full ranking"))
    note = no_test_users_note(records)
    if note:
        console.print(f"[yellow]{note}[/yellow]")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(records, indent=2, default=str))
        console.print(f"results -> {json_out}")


def _model_to_evaluate(name: str, protocol: str) -> tuple[str, Recommender | str]:
    """A registry name to fit, or a saved model directory loaded, checked that it did not learn
    from what ``protocol`` holds out."""
    from driftrec import models

    path = Path(name)
    if not path.is_dir():
        if name not in models.MODELS:
            raise InputError(f"unknown model {name!r}; choose one of: {', '.join(models.MODELS)}")
        return name, name
    trained_on = read_config(path).get("info", {}).get("protocol")
    if trained_on not in (None, protocol):
        raise InputError(
            f"{path}: trained with --protocol {trained_on}, so it learned from events"
            f" that --protocol {protocol} holds out; train it with --protocol {protocol}"
            " to evaluate it"
        )
    return str(path), models.load(path)


@app.command()
@guarded
def tune(
    data: Annotated[Path, typer.Argument(help="Dataset directory (or any importable source).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model name.")],
    grid: Annotated[
        list[str], typer.Option("--grid", "-g", help="Values to try, e.g. factors=32,64,128.")
    ] = [],  # noqa: B006
    param: Annotated[
        list[str], typer.Option("--param", "-p", help="Fixed hyper-parameter, e.g. epochs=50.")
    ] = [],  # noqa: B006
    protocol: Annotated[str, typer.Option(help="|".join(PROTOCOLS))] = "loo",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the best parameters (JSON) here.")
    ] = None,
) -> None:
    """Grid search on validation data only; the best parameters feed `train --config`."""
    from rich.table import Table

    from driftrec.evaluation.tuning import grid_search

    check_protocol(protocol)
    if out is not None:
        check_output_file(out)
    values, fixed = _grid_values(grid), _parse_pairs(param, "--param")
    both = sorted(set(values or {}) & set(fixed))
    if both:
        raise InputError(f"{both[0]!r} is both a --grid and a --param; give it once")
    split = make_split(_open_dataset(data), protocol)
    result = grid_search(split, model, values, fixed)
    table = Table(title=f"{model}: validation {result.metric}", title_justify="left")
    for column in ("params", result.metric, "seconds"):
        table.add_column(column)
    for trial in result.trials:
        table.add_row(
            json.dumps(trial["params"]),
            f"{trial['valid_metrics'][result.metric]:.4f}",
            f"{trial['seconds']:.1f}",
        )
    console.print(table)
    console.print(f"best: {json.dumps(result.best_params)}")
    if out is not None:
        out.write_text(json.dumps(result.best_params, indent=2))
        console.print(f"best parameters -> {out}")


@app.command()
@guarded
def recommend(
    model_dir: Annotated[Path, typer.Argument(help="Model directory written by `train`.")],
    user: Annotated[list[str], typer.Option("--user", "-u", help="Known user id(s).")] = [],  # noqa: B006
    items: Annotated[
        str | None, typer.Option(help="Comma-separated item ids of a new user's history.")
    ] = None,
    text: Annotated[
        str | None,
        typer.Option(
            help="Free-text interest, e.g. 'I love jazz'; mixed with --user/--items when given"
            " (models that read text: content, or sequence models trained with features=text)."
        ),
    ] = None,
    text_weight: Annotated[
        float | None,
        typer.Option(help="Weight of --text against the history, 0 to 1 (default 0.5)."),
    ] = None,
    k: Annotated[int, typer.Option("--k", "-k")] = 10,
    include_seen: Annotated[bool, typer.Option(help="Allow already-seen items.")] = False,
    secret_env: Annotated[
        str | None,
        typer.Option(
            help="For a model trained on pseudonymised data: --user is the raw id, hashed with"
            " the secret in this environment variable (the one given to import)."
        ),
    ] = None,
) -> None:
    """Print top-k recommendations for users, for a raw item sequence, or for a sentence (--text),
    alone or mixed with a history."""
    from driftrec import models
    from driftrec.cli.output import recommendations_table

    if text is None:
        if bool(user) == (items is not None):
            raise InputError(
                "give --user (one or more) or --items, not both or neither (or a sentence: --text)"
            )
        if text_weight is not None:
            raise InputError("--text-weight only applies with --text")
    else:
        if not text.strip():
            raise InputError("--text is empty")
        if user and items is not None:
            raise InputError("with --text, give --user or --items (or neither), not both")
        if text_weight is not None:
            PROBABILITY.check(text_weight, "--text-weight")  # the rule `recommend` applies
    sequence = None if items is None else [i.strip() for i in items.split(",") if i.strip()]
    if items is not None and not sequence:
        raise InputError("--items is empty: give comma-separated item ids, e.g. --items 50,172")
    if secret_env is not None and not user:
        raise InputError("--secret-env only applies with --user")
    secret = None if secret_env is None else secret_from_env(secret_env)
    pseudonymised = bool(read_config(model_dir).get("info", {}).get("pseudonymised"))
    if secret is not None and not pseudonymised:
        raise InputError(
            f"{model_dir}: --secret-env given, but this model's user ids are not pseudonymised;"
            " give the id as it is"
        )
    recommender = models.load(model_dir)
    query: dict[str, Any] = {}
    if sequence is not None:
        query["sequences"] = [sequence]
    elif user:
        query["users"] = user if secret is None else list(pseudonymise_ids(user, secret))
    if text is not None:
        query["text"] = text
        query["text_weight"] = 0.5 if text_weight is None else text_weight
    try:
        recs = recommender.recommend(**query, k=k, exclude_seen=not include_seen)
    except UnknownIdError as err:
        if user and secret is None and pseudonymised:
            raise InputError(
                f"{err}; this model's user ids are pseudonymised: give the raw id with"
                " --secret-env VARIABLE (the variable import used), or the pseudonym"
            ) from None
        raise
    if secret is not None:
        recs = replace(recs, users=list(user))  # show the ids the user typed, not pseudonyms
    catalog = _catalog_of(model_dir)
    console.print(recommendations_table(recs, catalog))
    names = recs.users or ["the given items" if sequence is not None else "the text"]
    for name, length in zip(names, recs.lengths, strict=True):
        if length < k:
            why = "" if include_seen else " (seen items excluded)"
            console.print(f"{name}: only {length} item(s) to recommend{why}")
    if isinstance(recommender, HasDriftGate) and (user or items is not None):
        # the long + short model says how much the recent window decided (there is a history)
        weights = recommender.gate(
            recommender.query_histories(query.get("users"), query.get("sequences"))
        )
        names = user or ["the given items"]
        for name, weight in zip(names, weights, strict=True):
            console.print(f"{name}: short-term weight {weight:.2f} (near 1: interest has moved)")


def _catalog_of(model_dir: Path) -> Dataset | None:
    """The dataset a model was trained on, for item titles, when it is still where it was."""
    source = trained_on(model_dir)
    return None if source is None else Dataset.load(source)


@app.command("replay")
@guarded
def replay_(
    data: Annotated[Path, typer.Argument(help="Dataset directory (or any importable source).")],
    model: Annotated[
        list[str],
        typer.Option(
            "--model",
            "-m",
            help="Model name(s), trained here on the events before the replay, or a model"
            " directory trained on them.",
        ),
    ] = ["als", "sasrec"],  # noqa: B006
    fraction: Annotated[
        float, typer.Option(help="The newest share of the events to replay.")
    ] = 0.2,
    k: Annotated[int, typer.Option("--k", "-k", help="Cut-off.")] = 10,
    windows: Annotated[
        int, typer.Option(help="Report this many windows of equal numbers of events.")
    ] = 10,
    window: Annotated[
        str | None, typer.Option(help="Or windows of this length of time: 7d, 12h, 2w.")
    ] = None,
    refit_every: Annotated[
        int | None,
        typer.Option(help="Update policy: refit on every event so far, every N replayed events."),
    ] = None,
    calibrate: Annotated[
        float,
        typer.Option(help="0..1: answers re-ranked as `driftrec serve --calibrate` does."),
    ] = 0.0,
    include_seen: Annotated[
        bool, typer.Option(help="Rank already-seen items too (default: excluded).")
    ] = False,
    param: Annotated[
        list[str], typer.Option("--param", "-p", help="Hyper-parameter of the models trained here.")
    ] = [],  # noqa: B006
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results here.")] = None,
) -> None:
    """Streaming replay: before each of the newest events, ask the live tracker for that user's
    top k, then ingest the event; HR and NDCG overall and per window of the replay."""
    from driftrec.cli.replay import run_replay

    if json_out is not None:
        check_output_file(json_out)
    if refit_every is not None and refit_every < 1:
        raise InputError(f"--refit-every must be a positive integer, not {refit_every}")
    if not 0 <= calibrate <= 1:
        raise InputError(f"--calibrate must be between 0 and 1, not {calibrate}")
    params = _parse_pairs(param, "--param")
    dataset = _open_dataset(data)
    records = run_replay(
        dataset, model, params, fraction, k, not include_seen, windows, window, refit_every,
        calibrate,
    )  # fmt: skip
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(records, indent=2, default=str))
        console.print(f"results -> {json_out}")


@app.command("simulate")
@guarded
def simulate_(
    model: Annotated[
        list[str],
        typer.Option(
            "--model",
            "-m",
            help="Model name(s), trained here on the events before the simulation, or a model"
            " directory trained on them.",
        ),
    ] = ["gru4rec", "als", "pop"],  # noqa: B006
    users: Annotated[int, typer.Option(help="Synthetic users with drifting interests.")] = 200,
    days: Annotated[int, typer.Option(help="Simulated days.")] = 10,
    sessions_per_day: Annotated[int, typer.Option(help="Sessions of each user a day.")] = 4,
    frozen: Annotated[
        bool, typer.Option(help="Also serve each model frozen at its training state.")
    ] = False,
    explore: Annotated[
        list[float], typer.Option(help="Exploration share(s) of the slots; one run each.")
    ] = [0.0],  # noqa: B006
    demote_ignored: Annotated[
        float, typer.Option(help="As `driftrec serve --demote-ignored`.")
    ] = 0.0,
    new_items: Annotated[
        float, typer.Option(help="Share of the items withheld from training (new items).")
    ] = 0.0,
    k: Annotated[int, typer.Option("--k", "-k", help="Items shown per session.")] = 10,
    seed: Annotated[int, typer.Option(help="Synthetic data and clicks.")] = 0,
    home: Annotated[Path, typer.Option(help="Where the data, models and service logs go.")] = Path(
        "runs/simulate"
    ),
    param: Annotated[
        list[str], typer.Option("--param", "-p", help="Hyper-parameter of the models trained here.")
    ] = [],  # noqa: B006
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results here.")] = None,
) -> None:
    """Simulated users whose true interests drift at known times, against real `driftrec
    serve` processes over HTTP: CTR over time, recovery after shifts, coverage, new items."""
    from driftrec.cli.simulate import run_simulation

    if json_out is not None:
        check_output_file(json_out)
    result = run_simulation(
        model, users, days, sessions_per_day, frozen, explore, demote_ignored, new_items, seed, k,
        home, _parse_pairs(param, "--param"),
    )  # fmt: skip
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2, default=str))
        console.print(f"results -> {json_out}")


@app.command("report")
@guarded
def report_(
    data: Annotated[Path, typer.Argument(help="Dataset directory (or any importable source).")],
    model: Annotated[
        Path | None,
        typer.Option("--model", "-m", help="A model directory trained on DATA, for --user."),
    ] = None,
    user: Annotated[
        list[str], typer.Option("--user", "-u", help="A user to report on (repeatable).")
    ] = [],  # noqa: B006
    results: Annotated[
        list[Path],
        typer.Option(help="A results JSON to add (driftrec replay/evaluate --json, benchmarks)."),
    ] = [],  # noqa: B006
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    png: Annotated[
        Path | None, typer.Option(help="Also write every chart as a PNG into this folder.")
    ] = None,
    k: Annotated[int, typer.Option("--k", "-k", help="Recommendations shown per user.")] = 10,
) -> None:
    """A self-contained HTML report that opens offline: each user's interest shares over time
    (true beside estimated on synthetic data), drift score with detected and true shifts, and
    current recommendations with explanations; tables and charts of results files."""
    from driftrec.cli.report import build_report

    check_output_file(out)
    if k < 1:
        raise InputError(f"-k must be a positive integer, not {k}")
    if png is not None and png.exists() and not png.is_dir():
        raise InputError(f"--png {png}: is a file; give a folder for the PNG charts")
    report = build_report(_open_dataset(data), data, model, user, results, k)
    for path in report.write(out, png):
        console.print(f"wrote {path}")


@app.command("serve")
@guarded
def serve_(
    model: Annotated[
        Path | None,
        typer.Option(help="Model directory to serve (default: train one on synthetic data)."),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            help="Event store URL: sqlite:///file.db or postgresql+psycopg://..."
            " (default: a SQLite file next to the model)."
        ),
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Dataset whose catalog names items (default: the model's).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    secret_env: Annotated[
        str | None,
        typer.Option(
            help="Environment variable holding the secret that pseudonymises user ids"
            " at the API boundary (the one `import --secret-env` used)."
        ),
    ] = None,
    max_batch: Annotated[int, typer.Option(help="Events or items per request.")] = 1_000,
    max_body: Annotated[int, typer.Option(help="Request body bytes.")] = 5 * 2**20,
    max_text: Annotated[int, typer.Option(help="Characters of a text.")] = 2_000,
    max_k: Annotated[int, typer.Option(help="Items per recommendation request.")] = 1_000,
    exact_max_items: Annotated[
        int, typer.Option(help="Larger catalogs are served from an approximate index.")
    ] = 50_000,
    live_users: Annotated[int, typer.Option(help="Users whose state stays in memory.")] = 100_000,
    window: Annotated[
        int,
        typer.Option(
            help="A user's newest events kept live (in memory, or in Redis with --state): what"
            " models, profiles and drift read."
        ),
    ] = 1_000,
    short_half_life: Annotated[float, typer.Option(help="Short-term profile, in events.")] = 5.0,
    long_half_life: Annotated[float, typer.Option(help="Long-term profile, in events.")] = 100.0,
    calibrate: Annotated[
        float,
        typer.Option(
            help="0..1: re-rank answers towards the topic mix of the user's short-term interest"
            " (since the newest detected shift); 0: the model's ranking."
        ),
    ] = 0.0,
    threads: Annotated[int, typer.Option(help="Torch threads per request.")] = 1,
    variant: Annotated[
        list[str],
        typer.Option(
            help="A/B test: NAME=MODEL_DIR:SHARE, repeated (shares add up to 1); replaces"
            " --model. Users are split by a stable hash of their id."
        ),
    ] = [],  # noqa: B006
    salt: Annotated[
        str, typer.Option(help="The A/B split's salt: a new one reshuffles users.")
    ] = "",
    frozen: Annotated[
        bool,
        typer.Option(
            help="Answer from the model's training state only: events are stored, never"
            " followed (the comparison that shows what live tracking is worth)."
        ),
    ] = False,
    demote_ignored: Annotated[
        float,
        typer.Option(
            help="0..1: lower items a user was shown and did not act on, by this share of the"
            " score range at most (0: off)."
        ),
    ] = 0.0,
    explore: Annotated[
        float,
        typer.Option(
            help="0..1: share of the slots given to items with little exposure (new items"
            " first); 0: off."
        ),
    ] = 0.0,
    explore_below: Annotated[
        int, typer.Option(help="Items with fewer interactions + impressions are explored.")
    ] = 50,
    state: Annotated[
        str | None,
        typer.Option(
            help="Where users' live events are kept: in this process (default) or in Redis"
            " (redis://host:6379/0), shared by every replica serving the same --db."
        ),
    ] = None,
    state_prefix: Annotated[
        str, typer.Option(help="Prefix of the Redis keys (deployments sharing a Redis differ).")
    ] = "driftrec",
    state_ttl: Annotated[
        float,
        typer.Option(
            help="Days a user's events stay in Redis after their last event (then rebuilt from"
            " the store when they come back): the other lever on Redis memory."
        ),
    ] = 30.0,
    ingest: Annotated[
        str,
        typer.Option(
            help="direct: events are stored before they are acknowledged; stream: they are"
            " put in the Redis stream (with --state), and `driftrec consume` stores them."
        ),
    ] = "direct",
    partitions: Annotated[
        int, typer.Option(help="The stream's partitions, fixed when it is first created.")
    ] = 16,
) -> None:
    """Serve recommendations over HTTP; every posted event counts on the next request. The API
    key, when wanted, comes from DRIFTREC_API_KEY."""
    from driftrec.cli.serve import default_db, default_model, serve
    from driftrec.feedback.variants import check_variants, parse_variant
    from driftrec.serving import Settings

    for name, value in (
        ("--max-batch", max_batch),
        ("--max-body", max_body),
        ("--max-text", max_text),
        ("--exact-max-items", exact_max_items),
        ("--live-users", live_users),
        ("--window", window),
        ("--port", port),
        ("--threads", threads),
        ("--max-k", max_k),
        ("--explore-below", explore_below),
        ("--partitions", partitions),
    ):
        if value < 1:
            raise InputError(f"{name} must be a positive integer, not {value}")
    for name, value in (
        ("--short-half-life", short_half_life),
        ("--long-half-life", long_half_life),
    ):
        if not value > 0:
            raise InputError(f"{name} must be positive, not {value}")
    for name, value in (
        ("--calibrate", calibrate),
        ("--demote-ignored", demote_ignored),
        ("--explore", explore),
    ):
        if not 0 <= value <= 1:
            raise InputError(f"{name} must be between 0 and 1, not {value}")
    if not state_ttl > 0:
        raise InputError(f"--state-ttl must be positive, not {state_ttl}")
    if ingest not in ("direct", "stream"):
        raise InputError(f"--ingest must be direct or stream, not {ingest!r}")
    if ingest == "stream" and state is None:
        raise InputError("--ingest stream needs --state redis://...: the stream lives there")
    variants = tuple(parse_variant(v) for v in variant)
    if variants:
        if model is not None:
            raise InputError("--variant replaces --model: give the model of each variant")
        check_variants(variants)
    model_dir = (
        variants[0].model_dir if variants else model if model is not None else default_model()
    )
    for directory in [model_dir, *(v.model_dir for v in variants)]:
        read_config(directory)  # a one-line error now rather than from inside the server
    settings = Settings(
        model_dir=model_dir,
        db_url=db or default_db(model_dir),
        data_dir=data,
        api_key=Settings.api_key_from_env(),
        secret=None if secret_env is None else secret_from_env(secret_env),
        max_batch=max_batch,
        max_body=max_body,
        max_text=max_text,
        max_k=max_k,
        exact_max_items=exact_max_items,
        live_users=live_users,
        window=window,
        short_half_life=short_half_life,
        long_half_life=long_half_life,
        calibrate=calibrate,
        threads=threads,
        variants=variants,
        salt=salt,
        frozen=frozen,
        demote_ignored=demote_ignored,
        explore=explore,
        explore_below=explore_below,
        state_url=state,
        state_prefix=state_prefix,
        state_ttl_days=state_ttl,
        ingest=ingest,
        partitions=partitions,
    )
    serve(settings, host, port)


@app.command("consume")
@guarded
def consume_(
    db: Annotated[str, typer.Option(help="The event store the replicas serve (--db).")],
    state: Annotated[str, typer.Option(help="The Redis the replicas use (--state).")],
    state_prefix: Annotated[str, typer.Option(help="As `serve --state-prefix`.")] = "driftrec",
    partitions: Annotated[int, typer.Option(help="As `serve --partitions`.")] = 16,
    name: Annotated[
        str | None,
        typer.Option(
            help="This consumer's name (default: random); a restart with the same"
            " name finishes what it read before."
        ),
    ] = None,
    lease: Annotated[
        float,
        typer.Option(help="Seconds a partition stays with a consumer that stopped answering."),
    ] = 10.0,
    until_idle: Annotated[
        bool, typer.Option(help="Stop once the stream is drained (default: run until stopped).")
    ] = False,
) -> None:
    """Store the events that `serve --ingest stream` replicas published: partitions shared
    with the other consumers, each event stored exactly once."""
    from driftrec.cli.consume import consume

    if partitions < 1:
        raise InputError(f"--partitions must be a positive integer, not {partitions}")
    if not lease > 0:
        raise InputError(f"--lease must be positive, not {lease}")
    totals = consume(db, state, state_prefix, partitions, name, lease, until_idle)
    console.print(
        f"stored {totals['events']:,} events ({totals['duplicates']:,} redelivered, not stored"
        f" again), {totals['erasures']:,} erasures, {totals['claimed']:,} entries taken over"
    )


@app.command()
def models() -> None:
    """List the model names that train and evaluate accept."""
    from driftrec.models import MODELS, create

    for name in MODELS:
        console.print(f"[bold]{name:<12}[/bold] {create(name)!r}", soft_wrap=True)


@app.command()
@guarded
def demo(
    out: Annotated[Path, typer.Option(help="Where to write the demo dataset and models.")] = Path(
        "runs/demo"
    ),
    users: Annotated[int, typer.Option(help="Synthetic users.")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Generate drifting synthetic data, train the baselines, evaluate, show recommendations."""
    from driftrec.cli.demo import run_demo

    run_demo(out, n_users=users, seed=seed)


# click's own errors (a missing option, a value of the wrong type), whichever click typer uses
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def main(
    args: list[str] | None = None, prog_name: str | None = None, command: str | None = None
) -> None:
    """The console script: like `app`, but click's usage errors are one `error:` line (exit 2)
    like every other error, instead of a boxed usage panel. ``args``: the command line after
    the program name (default: sys.argv's); ``command``: run that command alone (the program
    is then that command, as `python -m driftrec.train` is `driftrec train`)."""
    runner: Any = app if command is None else typer.main.get_command(app).commands[command]
    try:
        code = runner(args=args, prog_name=prog_name, standalone_mode=False)
    except _ClickException as err:
        context = getattr(err, "ctx", None)
        command = context.command_path if context is not None else "driftrec"
        if err.format_message():  # empty after the help a bare `driftrec` prints
            print_error(f"{err.format_message()} (see {command} --help)")
        code = err.exit_code
    except typer.Abort:
        print_error("aborted")
        code = 1
    sys.exit(code if isinstance(code, int) else 0)

"""What the CLI prints: tables, import reports, and one-line errors instead of tracebacks."""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from driftrec.data.dataset import Dataset
from driftrec.data.report import ImportReport
from driftrec.data.split import NO_ROWS_HINT
from driftrec.errors import InputError
from driftrec.models.base import Recommendations

# Piped output (logs, CI) gets a wide fixed width so metric tables are never truncated.
console = Console(width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

F = TypeVar("F", bound=Callable[..., Any])

# Exceptions that mean "bad input": shown as one line, exit code 2. Anything else is a bug.
_INPUT_ERRORS = (
    InputError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)
DEBUG_VARIABLE = "DRIFTREC_DEBUG"  # set to 1 to get the traceback of an internal error


def print_error(message: str) -> None:
    """``error: message`` on stderr, one line however long."""
    errors.print(f"[red]error:[/red] {message}", markup=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    print_error(message)
    raise typer.Exit(code)


def _input_message(err: BaseException) -> str:
    if isinstance(err, OSError) and err.filename is not None:
        return f"{err.filename}: {err.strerror or err}"
    return " ".join(str(err).split())


def _internal_error(err: BaseException) -> NoReturn:
    """A bug, not bad input: one line on stderr, the traceback in a file, exit code 1."""
    with tempfile.NamedTemporaryFile(
        "w", prefix="driftrec-crash-", suffix=".log", delete=False
    ) as log:
        traceback.print_exception(err, file=log)
    fail(
        f"internal error (a bug in driftrec, not your input): {type(err).__name__}: "
        f"{_input_message(err)}; traceback in {log.name} (or rerun with {DEBUG_VARIABLE}=1)",
        code=1,
    )


def guarded(command: F) -> F:
    """Turn a command's exceptions into one line on stderr: bad input exits with code 2, any
    other exception is reported as an internal error with exit code 1, its traceback in a file."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except _INPUT_ERRORS as err:
            fail(_input_message(err))
        except (typer.Exit, typer.Abort):
            raise
        except Exception as err:
            if os.environ.get(DEBUG_VARIABLE):
                raise
            _internal_error(err)

    return wrapper  # type: ignore[return-value]


def labelled_table(title: str, columns: list[str]) -> Table:
    """A table whose first column names the row (a model, a run) and whose others hold
    figures, right-aligned."""
    table = Table(title=title)
    table.add_column(columns[0], justify="left")
    for column in columns[1:]:
        table.add_column(column, justify="right")
    return table


TABLE_METRICS = ("HR", "NDCG", "MRR")  # per cut-off; the JSON output holds every metric
BEYOND_ACCURACY = ("Coverage", "Diversity", "Novelty")  # at the first cut-off


def metrics_table(records: list[dict[str, Any]], title: str) -> Table:
    """One row per evaluated model: the headline metrics at each cut-off, beyond-accuracy metrics
    at the first, rating errors where there are any, and fit time."""
    table = Table(title=title, title_justify="left", caption="every metric is in the JSON output")
    table.add_column("model", style="bold")
    present = list(dict.fromkeys(n for r in records for n in r["metrics"]))
    ks = sorted({int(n.split("@")[1]) for n in present if "@" in n})
    wanted = [f"{m}@{k}" for k in ks for m in TABLE_METRICS]
    wanted += [f"{m}@{ks[0]}" for m in BEYOND_ACCURACY] if ks else []
    names = [n for n in [*wanted, "RMSE", "MAE"] if n in present]
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("test users", justify="right")
    table.add_column("fit s", justify="right")
    for record in records:
        cells = [f"{record['metrics'][n]:.4f}" if n in record["metrics"] else "-" for n in names]
        users = f"{record['n_test_users']:,}"
        table.add_row(record["model"], *cells, users, f"{record['timings']['fit_seconds']:.1f}")
    return table


def no_test_users_note(records: list[dict[str, Any]]) -> str | None:
    """The line printed under the metrics table when a model had nobody to be evaluated on."""
    empty = [r["model"] for r in records if r["n_test_users"] == 0]
    if not empty:
        return None
    hint = NO_ROWS_HINT.get(records[0]["protocol"], "")
    return f"no test users for {', '.join(empty)}, so no metrics: {hint}"


def _preprocessing_line(steps: dict[str, Any]) -> str:
    """What preprocessing removed, in words: "5 events in, 4 out (duplicates removed: 0; ...)"."""
    parts = [f"duplicates removed: {steps.get('duplicates_removed', 0):,}"]
    core = steps.get("k_core")
    if core:
        parts.append(
            f"{core['min_user']}/{core['min_item']}-core (min events per user/item) removed"
            f" {core['events_removed']:,} events, {core['users_removed']:,} users,"
            f" {core['items_removed']:,} items in {core['passes']} passes"
        )
    parts.append("user ids pseudonymised" if steps.get("pseudonymised") else "user ids as given")
    if steps.get("user_attributes_dropped"):
        parts.append("user attributes dropped: " + ", ".join(steps["user_attributes_dropped"]))
    return (
        f"preprocessing: {steps['events_in']:,} events in, {steps['events_out']:,} out"
        f" ({'; '.join(parts)})"
    )


def print_report(dataset: Dataset) -> None:
    """The dataset summary and its import report: what was read, kept and skipped, and why."""
    summary = dataset.summary()
    console.print(
        f"[bold]{summary['name']}[/bold]: {summary['users']:,} users, {summary['items']:,} items,"
        f" {summary['events']:,} events (density {summary['density']:.4%})"
    )
    lines = []
    report = dataset.info.get("import_report")
    if report:
        lines += ImportReport.from_dict(report).lines()
    steps = dataset.info.get("preprocessing")
    if steps:
        lines.append(_preprocessing_line(steps))
    for line in lines:
        console.print(f"  {line}", highlight=False, markup=False)


def recommendations_table(recs: Recommendations, catalog: Dataset | None) -> Table:
    """Ranked items per query, with titles and categories when the catalog is at hand."""
    table = Table(title_justify="left")
    for column in ("user", "rank", "item", "score"):
        table.add_column(column, justify="right" if column in ("rank", "score") else "left")
    if catalog is not None:
        table.add_column("title")
        table.add_column("categories")
    frame = recs.to_frame()
    index = None if catalog is None else catalog.item_index(frame["item"].tolist())
    for row, record in enumerate(frame.itertuples()):
        cells = [
            str(record.user or f"query {record.query}"),
            str(record.rank),
            str(record.item),
            f"{record.score:.4f}",
        ]
        if catalog is not None:
            item = catalog.items.iloc[index[row]]
            cells += [item["title"], ", ".join(item["categories"])]
        table.add_row(*cells)
    return table

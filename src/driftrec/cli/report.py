"""`driftrec report`: the HTML report (and PNG charts) for users of a dataset and for runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from driftrec.cli.output import console
from driftrec.data.dataset import Dataset
from driftrec.data.synthetic import SyntheticData
from driftrec.errors import DataFormatError, InputError
from driftrec.evaluation.tracking import Truth
from driftrec.models import load
from driftrec.paths import read_json_value
from driftrec.reports import Report, user_story

TRUTH_FILE = "truth.json"  # the synthetic generator's truth, saved beside its dataset


def read_results(path: Path) -> list[dict[str, Any]]:
    """Records from a results JSON (a list of objects, or one object)."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    value = read_json_value(path)
    records = value if isinstance(value, list) else [value]
    if not records or not all(isinstance(r, dict) for r in records):
        raise DataFormatError(f"{path}: expected a JSON object or a list of objects")
    return records


def build_report(
    dataset: Dataset,
    source: Path,
    model_dir: Path | None,
    users: list[str],
    results: list[Path],
    k: int,
) -> Report:
    """The report: one section per user (needs a model trained on ``dataset``), one per
    results file."""
    if users and model_dir is None:
        raise InputError("--user needs --model: a model trained on this dataset to serve them")
    if not users and not results:
        raise InputError("nothing to report: give --user (with --model) or --results")
    truth = None
    if source.is_dir() and (source / TRUTH_FILE).exists():
        truth = Truth.from_synthetic(SyntheticData.load(source))
    report = Report(f"driftrec report: {dataset.name}")
    if users and model_dir is not None:
        model = load(model_dir)
        if not model.has_ids_of(dataset):
            raise InputError(f"{model_dir}: the model was not trained on {dataset.name}'s ids")
        for user in users:
            console.print(f"user {user}: replaying their events through the tracker")
            report.add_user(user_story(model, dataset, user, truth, k))
    for path in results:
        report.add_results(read_results(path), f"Results: {path.name}")
    return report


__all__ = ["build_report", "read_results"]

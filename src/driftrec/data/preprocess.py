"""Preprocessing of raw frames (external string ids) before they become a `Dataset`.

The steps run in a fixed order (deduplicate, k-core, pseudonymise) and each one reports what it
removed, so the numbers in ``dataset.info["preprocessing"]`` explain every event that is gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from driftrec.data.dataset import Dataset
from driftrec.data.pseudonyms import pseudonymise_ids, replace_ids_in_text
from driftrec.data.report import ImportReport
from driftrec.errors import DataFormatError, InputError
from driftrec.params import POSITIVE_INT


def _has_item(events: pd.DataFrame) -> np.ndarray:
    return ~pd.isna(events["item"].to_numpy(object))


def deduplicate(events: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Drop exact repeats of (user, item, timestamp, event), keeping the first (stable order).

    Repeats are usually a logging or export artefact (a double-sent event) and would overweight an
    interaction. For text-only events the text is part of the key: two different searches in the
    same second are two events.
    """
    columns = [c for c in ("user", "item", "timestamp", "event") if c in events]
    key = events[columns].astype({"item": object})
    if "text" in events:
        key["text"] = pd.Series(
            np.where(_has_item(events), None, events["text"].to_numpy(object)),
            index=events.index,
            dtype=object,
        )
    duplicated = key.duplicated(keep="first").to_numpy()
    return events[~duplicated].reset_index(drop=True), int(duplicated.sum())


def k_core(
    events: pd.DataFrame, min_user: int = 1, min_item: int = 1
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Keep the largest part where every user has >= ``min_user`` item events and every item has
    >= ``min_item`` events, removing users and items repeatedly until nothing changes.

    Removing a rare item can push a user under the threshold and vice versa, hence the fixed-point
    loop. Counts are events, not distinct partners (repeat views count). Text-only events do not
    count toward a user's total; they are kept for users that survive. ``min_user=1`` keeps every
    user, including one whose only events are searches.
    """
    has_item = _has_item(events)
    user_codes, users = pd.factorize(events["user"].to_numpy(object))
    item_codes = np.full(len(events), -1, np.int64)
    item_codes[has_item], items = pd.factorize(events["item"].to_numpy(object)[has_item])
    keep = np.ones(len(events), bool)
    passes = 0  # the last pass removes nothing: it confirms the fixed point
    while True:
        passes += 1
        counted = keep & has_item
        removed = 0
        if min_user > 1:
            per_user = np.bincount(user_codes[counted], minlength=len(users))
            drop = keep & (per_user[user_codes] < min_user)
            removed += int(drop.sum())
            keep &= ~drop
        if min_item > 1:
            counted = keep & has_item
            per_item = np.bincount(item_codes[counted], minlength=len(items))
            drop = counted & (per_item[np.maximum(item_codes, 0)] < min_item)
            removed += int(drop.sum())
            keep &= ~drop
        if not removed:
            break
    kept_users = np.unique(user_codes[keep])
    kept_items = np.unique(item_codes[keep & has_item])
    stats = {
        "passes": passes,
        "events_removed": int((~keep).sum()),
        "users_removed": len(users) - len(kept_users),
        "items_removed": len(items) - len(kept_items),
    }
    return events[keep].reset_index(drop=True), stats


def pseudonymise(
    events: pd.DataFrame,
    users: pd.DataFrame | None,
    secret: str | bytes,
    every_user: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Replace user ids in ``events`` (and ``users``) by their keyed pseudonyms
    (`driftrec.data.pseudonyms`), in the event texts too: any id of ``every_user`` (default:
    the users of ``events``; `prepare` passes every user read, including those deduplication
    or the k-core dropped) typed into a text. The frames given are not modified."""
    events = events.copy()
    raw = events["user"].to_numpy(object)
    events["user"] = pseudonymise_ids(raw, secret)
    if "text" in events:  # a user id typed into a search or a review
        ids = pd.unique(np.asarray(raw if every_user is None else every_user, dtype=object))
        known = dict(zip(map(str, ids), pseudonymise_ids(ids, secret), strict=True))
        events["text"] = replace_ids_in_text(events["text"].to_numpy(object), known)
    if users is not None:
        users = users.copy()
        users["user"] = pseudonymise_ids(users["user"].to_numpy(object), secret)
    return events, users


def _nothing_kept(name: str, steps: dict[str, Any], report: ImportReport | None) -> InputError:
    """Why an import kept no event, from what each step removed (the import report first)."""
    # the events file's own counts: a catalog's rows may be merged into the report
    events_file = report.events_file() if report is not None else None
    if report is not None and events_file is not None and events_file["rows_imported"] == 0:
        source, read = events_file["source"], events_file["rows_read"]
        if read == 0:
            return DataFormatError(f"{source}: no rows to import (only a header?)")
        reasons = ", ".join(f"{n:,} x {r}" for r, n in sorted(events_file["skipped"].items()))
        mine = [e for e in report.examples if e.file == source]
        first = f"; first: {mine[0].describe()}" if mine else ""
        return DataFormatError(
            f"{source}: every one of the {read:,} rows was skipped ({reasons}){first}"
        )
    core = steps.get("k_core")
    if core and core["events_removed"]:
        return InputError(
            f"{name}: the k-core (min_user={core['min_user']}, min_item={core['min_item']})"
            f" removed all {steps['events_in'] - steps.get('duplicates_removed', 0):,} events;"
            " lower --min-user / --min-item"
        )
    return InputError(f"{name}: no events to import")


def prepare(
    events: pd.DataFrame,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    *,
    name: str,
    dedup: bool = True,
    min_user: int = 1,
    min_item: int = 1,
    secret: str | bytes | None = None,
    keep_user_attributes: bool = False,
    report: ImportReport | None = None,
    info: dict[str, Any] | None = None,
) -> Dataset:
    """Deduplicate, k-core filter and (with a ``secret``) pseudonymise, then build the `Dataset`.

    Pseudonymisation leaves no raw user id behind: the import report keeps where each skipped row
    was (file, line, field, reason) but not its text, and user attributes (age, gender, zip code:
    together they re-identify people) are dropped unless ``keep_user_attributes``. An import that
    keeps no event is an `InputError` that says which step removed everything.

    ``dataset.info["preprocessing"]`` records what each step removed and
    ``dataset.info["import_report"]`` the importer's report. Catalog items removed by the k-core
    leave the catalog too; catalog items that never had events stay (they are cold items).
    """
    POSITIVE_INT.check(min_user, "min_user")
    POSITIVE_INT.check(min_item, "min_item")
    # texts may name users dropped below; only a pseudonymised import needs them
    every_user = events["user"].astype(str).unique() if secret is not None else None
    steps: dict[str, Any] = {"events_in": len(events)}
    if dedup:
        events, steps["duplicates_removed"] = deduplicate(events)
    if min_user > 1 or min_item > 1:
        before = set(events.loc[_has_item(events), "item"].astype(str))
        events, stats = k_core(events, min_user=min_user, min_item=min_item)
        steps["k_core"] = {"min_user": min_user, "min_item": min_item, **stats}
        if items is not None:
            gone = before - set(events.loc[_has_item(events), "item"].astype(str))
            catalog = items["item"].astype(str)
            items = items[~catalog.isin(gone).to_numpy()].reset_index(drop=True)
            steps["k_core"]["catalog_items_removed"] = int(catalog.isin(gone).sum())
        if users is not None:
            users = users[users["user"].astype(str).isin(set(events["user"]))]
    steps["pseudonymised"] = secret is not None
    steps["events_out"] = len(events)
    if secret is not None and report is not None:
        report = report.redacted()
    if not len(events):
        raise _nothing_kept(name, steps, report)
    if secret is not None:
        if users is not None and not keep_user_attributes:
            steps["user_attributes_dropped"] = [str(c) for c in users.columns if c != "user"]
            users = None
        events, users = pseudonymise(events, users, secret, every_user)
    info = dict(info or {})
    info["preprocessing"] = steps
    if report is not None:
        info["import_report"] = report.to_dict()
    return Dataset.from_frames(events, items, name=name, info=info, users=users)

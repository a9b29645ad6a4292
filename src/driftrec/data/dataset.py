"""The prepared dataset: events with dense integer ids, the item catalog and the id maps.

Every importer ends in `Dataset.from_frames`; every model learns from a `Dataset`. On disk a dataset
is a directory (see docs/data-format.md):

    manifest.json   format version, name, counts, event types, provenance, import report
    events.parquet  user, item, timestamp, event, value, text (integer ids, time-ordered per user)
    items.parquet   item_id, title, text, categories, tags       (row i describes item index i)
    users.parquet   user_id, then any user attributes          (row i is user index i)
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp

from driftrec.data.fields import clean_strings, split_categories
from driftrec.data.histories import Histories
from driftrec.errors import DataFormatError, InputError, UnknownIdError
from driftrec.params import FLOAT32_MAX
from driftrec.paths import output_directory, read_json

FORMAT_VERSION = 1
MANIFEST = "manifest.json"  # the file that makes a directory a dataset
DATASET_MARK = (MANIFEST, "format_version")  # and the key it holds
NO_ITEM = -1  # item index of a text-only event (a search with no clicked item)

# Codes are stored as int8; unknown event names found at import are appended after these.
DEFAULT_EVENT_TYPES: tuple[str, ...] = (
    "interaction",
    "view",
    "click",
    "cart",
    "purchase",
    "rating",
    "search",
    "review",
)

RAW_EVENT_COLUMNS = ("user", "item", "timestamp", "event", "value", "text")
ITEM_COLUMNS = ("title", "text", "categories", "tags")
LIST_COLUMNS = ("categories", "tags")  # lists of strings ("a|b" strings are split on import)


def _natural_order(ids: np.ndarray) -> np.ndarray:
    """Sort ids numerically when they all look like integers, else as strings (stable maps)."""
    ids = np.asarray(ids, dtype=object)
    if len(ids) and all(re.fullmatch(r"-?\d+", i) for i in ids):
        return ids[np.argsort(np.array([int(i) for i in ids]), kind="stable")]
    return np.sort(ids.astype(str)).astype(object)


@dataclass
class Dataset:
    """Events with integer user/item indices plus everything needed to map them back."""

    events: pd.DataFrame  # user int32, item int32 (NO_ITEM for text-only), timestamp int64,
    #                       event int8, value float32, text object (str or None)
    user_ids: np.ndarray  # (n_users,) object: index -> external user id (str)
    item_ids: np.ndarray  # (n_items,) object: index -> external item id (str)
    items: pd.DataFrame  # (n_items rows) title, text, categories, tags (list[str] each)
    users: pd.DataFrame = field(default_factory=pd.DataFrame)  # (n_users rows) optional attributes
    event_types: tuple[str, ...] = DEFAULT_EVENT_TYPES
    name: str = "dataset"
    info: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frames(
        cls,
        events: pd.DataFrame,
        items: pd.DataFrame | None = None,
        name: str = "dataset",
        info: dict[str, Any] | None = None,
        users: pd.DataFrame | None = None,
    ) -> Dataset:
        """Build a dataset from raw frames with external ids.

        ``events`` has the columns user, item, timestamp (int seconds) and optionally event, value,
        text; a missing item (None) is allowed only for events that carry text. ``items`` has the
        column item and optionally title, text, categories (list or "a|b" string). Catalog items
        with no events are kept: they are the cold items later models must still rank. ``users``
        (optional) has the column user plus attribute columns (age, country, ...) for known users.
        """
        missing = [c for c in ("user", "item", "timestamp") if c not in events.columns]
        if missing:
            raise InputError(f"events frame lacks column(s): {', '.join(missing)}")
        ev = pd.DataFrame(
            {
                "user": clean_strings(events["user"]),
                "item": clean_strings(events["item"]),
                "timestamp": events["timestamp"].to_numpy(dtype=np.int64),
                "event": (
                    events["event"].astype(str).to_numpy(dtype=object)
                    if "event" in events
                    else np.full(len(events), "interaction", dtype=object)
                ),
                "value": (
                    _stored_values(events["value"])
                    if "value" in events
                    else np.ones(len(events), np.float32)
                ),
                "text": (
                    events["text"]
                    .map(lambda v: None if v is None or v != v or v == "" else str(v))
                    .to_numpy(dtype=object)
                    if "text" in events
                    else np.full(len(events), None, dtype=object)
                ),
            }
        )
        if pd.isna(ev["user"]).any():
            missing = int(pd.isna(ev["user"]).sum())
            raise InputError(f"events frame: {missing} event(s) have no user")
        no_item = pd.isna(ev["item"]).to_numpy()
        if (no_item & pd.isna(ev["text"]).to_numpy()).any():
            raise InputError("events without an item must carry text (e.g. a search query)")

        catalog = items if items is not None else pd.DataFrame({"item": []})
        catalog_ids = clean_strings(catalog["item"])
        if pd.isna(catalog_ids).any():
            raise InputError(f"items frame: {int(pd.isna(catalog_ids).sum())} item(s) have no id")
        item_ids = _natural_order(
            np.unique(np.concatenate([catalog_ids, ev.loc[~no_item, "item"].to_numpy(object)]))
        )
        user_ids = _natural_order(np.unique(ev["user"].to_numpy(object)))

        item_index = pd.Index(item_ids)
        user_index = pd.Index(user_ids)
        event_types = list(DEFAULT_EVENT_TYPES)
        for e in pd.unique(ev["event"]):
            if e not in event_types:
                event_types.append(e)
        if len(event_types) > 127:  # codes are int8
            extra = len(event_types) - len(DEFAULT_EVENT_TYPES)
            raise InputError(
                f"events: {extra} event types besides the built-in"
                f" {', '.join(DEFAULT_EVENT_TYPES)}; at most {127 - len(DEFAULT_EVENT_TYPES)}"
                " (is the event column really a type, not an id or a text?)"
            )
        codes = pd.Index(event_types)

        item_codes = np.full(len(ev), NO_ITEM, np.int32)
        item_codes[~no_item] = item_index.get_indexer(ev.loc[~no_item, "item"]).astype(np.int32)
        table = pd.DataFrame(
            {
                "user": user_index.get_indexer(ev["user"]).astype(np.int32),
                "item": item_codes,
                "timestamp": ev["timestamp"].to_numpy(np.int64),
                "event": codes.get_indexer(ev["event"]).astype(np.int8),
                "value": ev["value"].to_numpy(np.float32),
                "text": pd.Series(_none_for_missing(ev["text"].to_numpy(object)), dtype=object),
            }
        )
        catalog_table = pd.DataFrame(index=pd.RangeIndex(len(item_ids)))
        position = item_index.get_indexer(catalog_ids)
        for col in ITEM_COLUMNS:
            values = np.full(len(item_ids), None, dtype=object)
            if col in catalog:
                values[position] = catalog[col].to_numpy(object)
            if col in LIST_COLUMNS:
                values = _list_array([split_categories(v) for v in values])
            else:
                values = np.array(["" if v is None or v != v else str(v) for v in values], object)
            catalog_table[col] = values
        user_table = pd.DataFrame(index=pd.RangeIndex(len(user_ids)))
        if users is not None:
            rows = user_index.get_indexer(clean_strings(users["user"]))
            known = rows >= 0
            for col in users.columns.drop("user"):
                values = np.full(len(user_ids), None, dtype=object)
                values[rows[known]] = users[col].to_numpy(object)[known]
                user_table[col] = values
        return cls(
            events=cls._time_ordered(table),
            user_ids=user_ids,
            item_ids=item_ids,
            items=catalog_table,
            users=user_table,
            event_types=tuple(event_types),
            name=name,
            info=dict(info or {}),
        )

    @staticmethod
    def _time_ordered(events: pd.DataFrame) -> pd.DataFrame:
        """Sort by user, then timestamp; equal timestamps keep their source order (stable sort)."""
        order = np.lexsort((events["timestamp"].to_numpy(), events["user"].to_numpy()))
        return events.iloc[order].reset_index(drop=True)

    def _is_time_ordered(self) -> bool:
        """Whether events run by user, then time (what every split and history assumes)."""
        user = self.events["user"].to_numpy()
        time = self.events["timestamp"].to_numpy()
        same_user = user[1:] == user[:-1]
        return bool((user[1:] >= user[:-1]).all() and (time[1:] >= time[:-1])[same_user].all())

    def require_timestamps(self, what: str) -> None:
        """An InputError when the events carry positions, not times (a sequence file): ``what``
        (a time split, a decay in days, a time embedding) would silently use positions."""
        if self.info.get("has_timestamps") is False:
            raise InputError(
                f"dataset {self.name!r} has no timestamps (only positions in each user's"
                f" sequence), so {what} is undefined"
            )

    # ------------------------------------------------------------------ sizes and views
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_events(self) -> int:
        return len(self.events)

    def item_events(self) -> pd.DataFrame:
        """Events that name an item (text-only events excluded), still time-ordered per user."""
        ev = self.events
        return ev[ev["item"].to_numpy() != NO_ITEM]

    def with_events(self, events: pd.DataFrame, **info: Any) -> Dataset:
        """Same id maps and catalog, other events (a split part or a filtered copy)."""
        return Dataset(
            events=events.reset_index(drop=True),
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            items=self.items,
            users=self.users,
            event_types=self.event_types,
            name=self.name,
            info={**self.info, **info},
        )

    def to_frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """Events, catalog and user attributes with external ids and event type names, as
        `from_frames` takes them: the way back to raw frames, to add events from elsewhere."""
        ev = self.events
        codes = ev["item"].to_numpy()
        events = pd.DataFrame(
            {
                "user": self.user_ids[ev["user"].to_numpy()],
                "item": np.where(codes == NO_ITEM, None, self.item_ids[np.maximum(codes, 0)]),
                "timestamp": ev["timestamp"].to_numpy(np.int64),
                "event": np.asarray(self.event_types, dtype=object)[ev["event"].to_numpy()],
                "value": ev["value"].to_numpy(np.float32),
                "text": ev["text"].to_numpy(object),
            }
        )
        items = self.items.copy()
        items.insert(0, "item", self.item_ids)
        users = self.users.copy()
        users.insert(0, "user", self.user_ids)
        return events, items.reset_index(drop=True), users.reset_index(drop=True)

    def reindexed(
        self,
        user_ids: Sequence[str] | np.ndarray,
        item_ids: Sequence[str] | np.ndarray,
        event_types: Sequence[str] = (),
    ) -> Dataset:
        """The same data with ``user_ids``, ``item_ids`` and ``event_types`` at indices 0, 1, ...
        in the order given, and this dataset's other ones after them in its own order: how a
        model reads a grown dataset in the indices it learned (incremental training). A given id
        the dataset lacks has no events (and an empty catalog row)."""
        users, user_at = _ids_first(user_ids, self.user_ids)
        items, item_at = _ids_first(item_ids, self.item_ids)
        types, type_at = _ids_first(event_types, self.event_types)
        ev = self.events
        codes = ev["item"].to_numpy()
        events = ev.assign(
            user=user_at[ev["user"].to_numpy()].astype(np.int32),
            item=np.where(codes == NO_ITEM, NO_ITEM, item_at[np.maximum(codes, 0)]).astype(
                np.int32
            ),
            event=type_at[ev["event"].to_numpy()].astype(np.int8),
        )
        catalog = pd.DataFrame(
            {
                col: (
                    _list_array([[] for _ in range(len(items))])
                    if col in LIST_COLUMNS
                    else np.full(len(items), "", dtype=object)
                )
                for col in ITEM_COLUMNS
            }
        )
        for col in self.items.columns:
            if col not in catalog:
                catalog[col] = np.full(len(items), None, dtype=object)
            values = catalog[col].to_numpy(object).copy()
            values[item_at] = self.items[col].to_numpy(object)
            catalog[col] = values
        attributes = pd.DataFrame(index=pd.RangeIndex(len(users)))
        for col in self.users.columns:
            values = np.full(len(users), None, dtype=object)
            values[user_at] = self.users[col].to_numpy(object)
            attributes[col] = values
        return Dataset(
            events=self._time_ordered(events),
            user_ids=users,
            item_ids=items,
            items=catalog,
            users=attributes,
            event_types=tuple(str(t) for t in types),
            name=self.name,
            info=dict(self.info),
        )

    def appended(self, events: pd.DataFrame, items: pd.DataFrame | None = None) -> Dataset:
        """This dataset with more events (external ids, as `from_frames` takes them) and the
        catalog items they bring: its users, items and event types keep their indices, new ones
        come after them, so a model fitted on it reads the grown dataset as it learned it.
        Catalog rows of items it already lists stay as they are."""
        own_events, own_items, own_users = self.to_frames()
        if items is not None and "item" in items:
            known = pd.Series(clean_strings(items["item"]), dtype=object).isin(self.item_ids)
            items = items[~known.to_numpy()]
        merged = Dataset.from_frames(
            pd.concat([own_events, events], ignore_index=True),
            pd.concat([own_items, items], ignore_index=True) if items is not None else own_items,
            name=self.name,
            info=self.info,
            users=own_users,
        )
        return merged.reindexed(self.user_ids, self.item_ids, self.event_types)

    def histories(self, users: np.ndarray | None = None) -> Histories:
        """Each user's item events, oldest first; every user in index order unless ``users``."""
        ev = self.item_events()
        counts = np.bincount(ev["user"].to_numpy(), minlength=self.n_users)
        indptr = np.zeros(self.n_users + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        full = Histories(
            indptr=indptr,
            items=ev["item"].to_numpy(np.int32),
            timestamps=ev["timestamp"].to_numpy(np.int64),
            events=ev["event"].to_numpy(np.int8),
            values=ev["value"].to_numpy(np.float32),
            users=np.arange(self.n_users, dtype=np.int64),
        )
        return full if users is None else full.take(np.asarray(users, np.int64))

    def interactions(self, binary: bool = True) -> sp.csr_matrix:
        """The (n_users, n_items) user-item matrix of item events."""
        return self.histories().to_csr(self.n_items, binary=binary)

    def item_counts(self) -> np.ndarray:
        """How many distinct users interacted with each item."""
        return np.asarray((self.interactions() > 0).sum(axis=0)).ravel().astype(np.int64)

    def user_index(self, user_ids: list[str] | np.ndarray) -> np.ndarray:
        """Indices of external user ids; raises KeyError naming the first unknown one."""
        return _lookup(self.user_ids, user_ids, "user")

    def item_index(self, item_ids: list[str] | np.ndarray) -> np.ndarray:
        """Indices of external item ids; raises KeyError naming the first unknown one."""
        return _lookup(self.item_ids, item_ids, "item")

    def summary(self) -> dict[str, Any]:
        """Counts that describe the dataset at a glance (printed by the CLI, kept in manifest)."""
        ev = self.item_events()
        n_pairs = len(ev)
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "events": self.n_events,
            "item_events": n_pairs,
            "text_only_events": self.n_events - n_pairs,
            "density": n_pairs / max(1, self.n_users * self.n_items),
            "event_types": {
                self.event_types[code]: int(count)
                for code, count in zip(
                    *np.unique(self.events["event"], return_counts=True), strict=True
                )
            },
        }

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the documented on-disk layout to directory ``path``."""
        path = output_directory(path, DATASET_MARK)
        self.events.to_parquet(path / "events.parquet", index=False)
        items = self.items.copy()
        items.insert(0, "item_id", self.item_ids.astype(str))
        for col in LIST_COLUMNS:
            items[col] = items[col].map(list)
        items.to_parquet(path / "items.parquet", index=False)
        users = self.users.copy()
        users.insert(0, "user_id", self.user_ids.astype(str))
        users.to_parquet(path / "users.parquet", index=False)
        manifest = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "event_types": list(self.event_types),
            "summary": self.summary(),
            "info": self.info,
        }
        (path / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Dataset:
        """Read a dataset written by `save`."""
        path = Path(path)
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{manifest_path}: not a driftrec dataset (no manifest.json)")
        manifest = read_json(manifest_path)
        if manifest.get("format_version") != FORMAT_VERSION:
            raise DataFormatError(
                f"{manifest_path}: format_version {manifest.get('format_version')!r} is not "
                f"{FORMAT_VERSION}"
            )
        missing = [k for k in ("name", "event_types") if k not in manifest]
        if missing or not isinstance(manifest["event_types"], list):
            raise DataFormatError(f"{manifest_path}: lacks {', '.join(missing) or 'event_types'}")
        if not isinstance(manifest.get("info", {}), dict):
            raise DataFormatError(f"{manifest_path}: 'info' must be an object")
        events = _read_table(path / "events.parquet", RAW_EVENT_COLUMNS)
        codes = [c for c in ("user", "item", "timestamp", "event") if c in events]
        broken = [c for c in codes if events[c].isna().any() or events[c].dtype.kind not in "iu"]
        if broken:
            raise DataFormatError(
                f"{path / 'events.parquet'}: column {broken[0]!r} must hold integers, no nulls"
            )
        items = _read_table(path / "items.parquet", ("item_id", "title", "text"))
        users = _read_table(path / "users.parquet", ("user_id",))
        sizes = {"user": len(users), "item": len(items), "event": len(manifest["event_types"])}
        for column, size in sizes.items():
            codes = events[column].to_numpy()
            low = NO_ITEM if column == "item" else 0
            if len(codes) and (codes.min() < low or codes.max() >= size):
                raise DataFormatError(
                    f"{path / 'events.parquet'}: {column} codes outside the {size:,}"
                    f" {column} entries the dataset lists"
                )
        for ids, file in ((users["user_id"], "users.parquet"), (items["item_id"], "items.parquet")):
            if ids.duplicated().any():
                raise DataFormatError(
                    f"{path / file}: id {ids[ids.duplicated()].iloc[0]!r} repeats"
                )
        events["text"] = pd.Series(_none_for_missing(events["text"].to_numpy(object)), dtype=object)
        dataset = cls(
            events=events.astype(
                {
                    "user": np.int32,
                    "item": np.int32,
                    "timestamp": np.int64,
                    "event": np.int8,
                    "value": np.float32,
                }
            ),
            user_ids=users["user_id"].to_numpy(dtype=object),
            users=users.drop(columns="user_id"),
            item_ids=items["item_id"].to_numpy(dtype=object),
            items=pd.DataFrame(
                {
                    "title": items["title"].to_numpy(object),
                    "text": items["text"].to_numpy(object),
                    **{
                        col: _list_array(
                            [list(c) for c in items[col]] if col in items else [[]] * len(items)
                        )
                        for col in LIST_COLUMNS
                    },
                }
            ),
            event_types=tuple(manifest["event_types"]),
            name=manifest["name"],
            info=manifest.get("info", {}),
        )
        if not dataset._is_time_ordered():  # written by another tool: order it as `save` does
            dataset.events = cls._time_ordered(dataset.events)
        return dataset


def _stored_values(column: pd.Series) -> np.ndarray:
    """Event values as float32; a value that is not finite or too large for float32 (which
    would be stored as inf) is an InputError naming the first such row."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    bad = ~(np.abs(values) <= FLOAT32_MAX)  # NaN and inf too
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError(
            f"events frame: value {column.iloc[row]} in row {row} is not a finite float32;"
            f" {int(bad.sum())} such value(s)"
        )
    return values.astype(np.float32)


def _read_table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """A Parquet file of a saved dataset; a one-line error when it is missing, damaged or lacks
    a column."""
    if not path.is_file():
        raise DataFormatError(f"{path}: missing from the dataset directory")
    try:
        frame = pd.read_parquet(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataFormatError(f"{path}: not a readable Parquet file ({exc})") from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{path}: lacks column(s) {', '.join(missing)}")
    return frame


def _none_for_missing(values: np.ndarray) -> np.ndarray:
    return np.where(pd.isna(values), None, values)


def _list_array(lists: list[list[str]]) -> np.ndarray:
    """A 1-D object array of lists (numpy would build a 2-D array from equal-length lists)."""
    out = np.empty(len(lists), dtype=object)
    for i, values in enumerate(lists):
        out[i] = values
    return out


def _ids_first(
    first: Sequence[str] | np.ndarray, own: Sequence[str] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``first`` (unique ids), then ``own``'s ids not among them in ``own``'s order: the merged
    (n,) object array, and (len(own),) int64 where each of ``own``'s ids landed in it."""
    first = np.asarray([str(i) for i in first], dtype=object)
    own = np.asarray([str(i) for i in own], dtype=object)
    at = pd.Index(first).get_indexer(own).astype(np.int64)
    extra = at < 0
    at[extra] = len(first) + np.arange(int(extra.sum()))
    return np.concatenate([first, own[extra]]), at


def _lookup(vocabulary: np.ndarray, ids: list[str] | np.ndarray, kind: str) -> np.ndarray:
    index = pd.Index(vocabulary)
    wanted = [str(i) for i in ids]
    found = index.get_indexer(wanted)
    if (found < 0).any():
        first = wanted[int(np.argmax(found < 0))]
        raise UnknownIdError(f"unknown {kind} id {first!r}")
    return found.astype(np.int64)

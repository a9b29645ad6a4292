"""Streaming (prequential) replay: how well a model follows users as their events arrive.

A model trained on the events before a point in time meets the events after it in time order,
through the same `Tracker` the service answers with (live state, views, index, cold starts):
before each event its user's top k is asked, then the event is ingested, so the next answer
already reflects it. An event is a hit when its item is in that top k. Quality is reported
overall and per window of the replay, so it shows how a model ages as interests move; an update
policy (refit every N events) shows what retraining buys.

Events go through in batches: `Tracker.recommend_before` answers every event of a batch as if
it came alone (each user's earlier events in the batch included) in one batched pass, then the
batch is ingested into a scratch store. That is exact, not an approximation: with the model
fixed, a user's answer depends only on their own events.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftrec.data.dataset import NO_ITEM, Dataset
from driftrec.data.events import Event
from driftrec.errors import InputError
from driftrec.models.base import Recommender
from driftrec.progress import track
from driftrec.store import EventStore, StoredEvent
from driftrec.tracking import Catalog, Engine, Tracker

BATCH = 256  # events answered in one pass


@dataclass(frozen=True)
class ReplayPolicy:
    """How the model changes during a replay: fixed, or refitted every ``refit_every`` replayed
    events on everything seen so far (``refit`` builds and fits the new model)."""

    refit_every: int | None = None
    refit: Callable[[Dataset], Recommender] | None = None

    def __post_init__(self) -> None:
        if (self.refit_every is None) != (self.refit is None):
            raise InputError("a refit policy needs both refit_every and refit")
        if self.refit_every is not None and self.refit_every < 1:
            raise InputError(
                f"refit_every must be a positive number of events, not {self.refit_every}"
            )

    def describe(self) -> str:
        if self.refit_every is None:
            return "fixed: the model is not updated during the replay"
        return f"refit on every event so far, every {self.refit_every:,} replayed events"


@dataclass
class ReplayResult:
    """Per replayed item event: its user, time, the rank of its item in the top k asked just
    before it (-1: not there), where the answer came from, whether the item had no events in
    the first training part (a new item) and whether the user had it already. Metrics are
    computed from these."""

    model: str
    k: int
    policy: str
    exclude_seen: bool
    rows: np.ndarray  # (n,) int64 the event's row in dataset.events (truth files line up)
    users: np.ndarray  # (n,) external user ids
    timestamps: np.ndarray  # (n,) int64
    ranks: np.ndarray  # (n,) int64, -1 for a miss
    recommended: np.ndarray  # (n, k) int64 dataset item indices served, best first; -1 pads
    sources: np.ndarray  # (n,) "model" | "popular" | "search"
    new_items: np.ndarray  # (n,) bool: the item had no event before the replay
    repeats: np.ndarray  # (n,) bool: the user had the item before
    text_events: int  # item-less events (searches) replayed: ingested, not scored
    refits: list[int] = field(default_factory=list)  # replayed events before each refit
    seconds: float = 0.0
    calibrate: float = 0.0  # the tracker's re-ranking towards the short-term interest mix

    @property
    def gains(self) -> np.ndarray:
        """(n,) NDCG of each event: 1 / log2(rank + 2) for a hit, else 0."""
        return np.where(self.ranks >= 0, 1.0 / np.log2(np.maximum(self.ranks, 0) + 2.0), 0.0)

    def summary(self, rows: np.ndarray | slice = slice(None)) -> dict[str, Any]:
        """HR@k and NDCG@k (means over events) and what the events were, for ``rows``."""
        ranks = self.ranks[rows]
        n = len(ranks)
        return {
            "events": n,
            f"hr@{self.k}": float((ranks >= 0).mean()) if n else float("nan"),
            f"ndcg@{self.k}": float(self.gains[rows].mean()) if n else float("nan"),
            "cold_answers": int((self.sources[rows] != "model").sum()),
            "new_items": int(self.new_items[rows].sum()),
            "repeats": int(self.repeats[rows].sum()),
        }

    def windows(self, count: int = 10, seconds: int | None = None) -> list[dict[str, Any]]:
        """Metrics per window: ``count`` windows of equal numbers of events, or windows of
        ``seconds`` each from the first replayed event (empty ones left out)."""
        n = len(self.ranks)
        if seconds is not None:
            if seconds <= 0:
                raise InputError(f"a window must be a positive number of seconds, not {seconds}")
            slot = (self.timestamps - self.timestamps[0]) // seconds if n else self.timestamps
            bounds = np.flatnonzero(np.diff(slot)) + 1
            parts = np.split(np.arange(n), bounds)
        else:
            if count < 1:
                raise InputError(f"windows must be a positive count, not {count}")
            parts = np.array_split(np.arange(n), min(count, n) or 1)
        refits = np.asarray(self.refits, np.int64)
        out = []
        for number, rows in enumerate(p for p in parts if len(p)):
            out.append(
                {
                    "window": number,
                    "start": int(self.timestamps[rows[0]]),
                    "end": int(self.timestamps[rows[-1]]),
                    **self.summary(rows),
                    "refits": int(((refits > rows[0]) & (refits <= rows[-1])).sum()),
                }
            )
        return out

    def to_dict(self, count: int = 10, seconds: int | None = None) -> dict[str, Any]:
        return {
            "model": self.model,
            "k": self.k,
            "policy": self.policy,
            "calibrate": self.calibrate,
            "exclude_seen": self.exclude_seen,
            "overall": self.summary(),
            "windows": self.windows(count, seconds),
            "text_events": self.text_events,
            "refits_after_events": self.refits,
            "seconds": self.seconds,
            "events_per_s": (len(self.ranks) + self.text_events) / self.seconds
            if self.seconds
            else None,
        }


def time_order(dataset: Dataset) -> pd.DataFrame:
    """The events in time order (equal times: by user, then as stored), indexed by their
    position in ``dataset.events`` (which runs by user, then time)."""
    order = np.argsort(dataset.events["timestamp"].to_numpy(), kind="stable")
    return dataset.events.iloc[order]


def replay_split(dataset: Dataset, fraction: float) -> tuple[Dataset, int]:
    """The events before a replay of the newest ``fraction`` of them (to train the model on),
    and where in `time_order` that replay starts."""
    if not 0 < fraction < 1:
        raise InputError(f"the replayed fraction must be in (0, 1), not {fraction}")
    start = dataset.n_events - max(1, round(dataset.n_events * fraction))
    if start < 1:
        raise InputError("a replay needs at least one event before it to train on")
    return _before(dataset, time_order(dataset), start), start


def _before(dataset: Dataset, stream: pd.DataFrame, end: int) -> Dataset:
    """The dataset of the first ``end`` events of ``stream``, back in user-then-time order."""
    return dataset.with_events(stream.iloc[:end].sort_index())


def replay(
    model: Recommender,
    dataset: Dataset,
    start: int,
    k: int = 10,
    exclude_seen: bool = True,
    policy: ReplayPolicy | None = None,
    progress: bool = True,
    name: str | None = None,
    calibrate: float = 0.0,
) -> ReplayResult:
    """Replay ``dataset``'s events from position ``start`` (time order) against ``model``,
    which must have been trained on the events before it (and know the dataset's ids);
    ``calibrate``: the tracker's re-ranking towards the short-term interest mix."""
    policy = policy or ReplayPolicy()
    if not model.has_ids_of(dataset):
        raise InputError(
            f"{name or model.name}: the model's ids ({model.n_items} items) are not those of"
            f" {dataset.name}; train it on this dataset's events before the replay"
        )
    if not 0 < start < dataset.n_events:
        raise InputError(f"the replay must start inside the {dataset.n_events:,} events")
    stream = time_order(dataset)
    events = stored_events(dataset, stream.iloc[start:])
    catalog = Catalog.from_dataset(dataset)
    outcome: dict[str, list[Any]] = {key: [] for key in ("row", "rank", "source", "items")}
    refits: list[int] = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="driftrec-replay-") as scratch:
        tracker = scratch_tracker(
            model, catalog, Path(scratch) / "0.db", dataset.n_users, calibrate=calibrate
        )
        since_refit = 0
        batches = range(0, len(events), BATCH)
        for offset in track(batches, len(batches), f"replay {name or model.name}", progress):
            batch = events[offset : offset + BATCH]
            answers = tracker.recommend_before(batch, k, exclude_seen)
            for n, (sent, answer) in enumerate(zip(batch, answers, strict=True)):
                if sent.event.item is None:
                    continue
                item = sent.event.item
                outcome["row"].append(offset + n)
                outcome["rank"].append(answer.items.index(item) if item in answer.items else -1)
                outcome["source"].append(answer.source)
                outcome["items"].append(answer.items)
            tracker.ingest(batch)
            since_refit += len(batch)
            if policy.refit_every is not None and since_refit >= policy.refit_every:
                done = offset + len(batch)
                model = policy.refit(_before(dataset, stream, start + done))
                tracker.close()
                tracker = scratch_tracker(
                    model,
                    catalog,
                    Path(scratch) / f"{done}.db",
                    dataset.n_users,
                    calibrate=calibrate,
                )
                refits.append(len(outcome["row"]))
                since_refit = 0
        tracker.close()
        tracker.store.close()
    rows = np.asarray(outcome["row"], np.int64)
    ev = stream.iloc[start:]
    items = ev["item"].to_numpy()[rows]
    trained = np.zeros(dataset.n_items + 1, bool)  # the last slot stands for no item
    trained[stream["item"].to_numpy()[:start]] = True
    return ReplayResult(
        model=name or model.name,
        k=k,
        policy=policy.describe(),
        exclude_seen=exclude_seen,
        rows=ev.index.to_numpy(np.int64)[rows],
        users=dataset.user_ids[ev["user"].to_numpy()[rows]],
        timestamps=ev["timestamp"].to_numpy()[rows],
        ranks=np.asarray(outcome["rank"], np.int64),
        recommended=_indices(dataset, outcome["items"], k),
        sources=np.asarray(outcome["source"], dtype=object),
        new_items=~trained[items],
        repeats=_repeats(dataset, stream)[start:][rows],
        text_events=len(events) - len(rows),
        refits=refits,
        seconds=time.perf_counter() - began,
        calibrate=calibrate,
    )


def scratch_tracker(
    model: Recommender, catalog: Catalog, db: Path, users: int, **options: Any
) -> Tracker:
    """The service's tracker over ``model`` with a throwaway SQLite store at ``db``;
    ``options`` are the tracker's (calibrate, follow, demote_ignored, explore...)."""
    store = EventStore(f"sqlite:///{db}", durable=False)  # scratch: the dataset is the record
    engine = Engine.build(model, model.name, catalog)
    return Tracker(engine, store, catalog, capacity=users, **options)


def stored_events(dataset: Dataset, ev: pd.DataFrame) -> list[StoredEvent]:
    """A dataset's events ``ev`` as the tracker takes them (external ids, type names)."""
    users = dataset.user_ids[ev["user"].to_numpy()]
    codes = ev["item"].to_numpy()
    items = np.where(codes == NO_ITEM, None, dataset.item_ids[np.maximum(codes, 0)])
    kinds = np.asarray(dataset.event_types, dtype=object)[ev["event"].to_numpy()]
    texts = ev["text"].to_numpy(object) if "text" in ev else np.full(len(ev), None)
    return [
        StoredEvent(
            str(u),
            Event(
                None if i is None else str(i),
                int(t),
                str(kind),
                float(v),
                None if text is None or pd.isna(text) else str(text),
            ),
        )
        for u, i, t, kind, v, text in zip(
            users,
            items,
            ev["timestamp"].to_numpy(),
            kinds,
            ev["value"].to_numpy(),
            texts,
            strict=True,
        )
    ]


def _indices(dataset: Dataset, answers: list[list[str]], k: int) -> np.ndarray:
    """(n, k) dataset item indices of served answers, -1 where an answer had fewer items."""
    out = np.full((len(answers), k), -1, np.int64)
    flat = [item for answer in answers for item in answer]
    found = dataset.item_index(flat) if flat else np.zeros(0, np.int64)
    lengths = np.array([len(a) for a in answers], np.int64)
    rows = np.repeat(np.arange(len(answers)), lengths)
    columns = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[rows, columns] = found
    return out


def _repeats(dataset: Dataset, stream: pd.DataFrame) -> np.ndarray:
    """(events,) in ``stream`` order: whether the user had the event's item at an earlier one."""
    items = stream["item"].to_numpy(np.int64)
    key = stream["user"].to_numpy(np.int64) * (dataset.n_items + 1) + items
    return pd.Series(key).duplicated().to_numpy() & (items >= 0)


__all__ = [
    "BATCH",
    "ReplayPolicy",
    "ReplayResult",
    "replay",
    "replay_split",
    "scratch_tracker",
    "stored_events",
    "time_order",
]

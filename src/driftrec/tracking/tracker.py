"""The tracker: takes users' events and answers for them at once, from the served model.

Everything the service does per user goes through here (and replay will too): ingest events,
recommend, report interests and drift, explain a recommendation, add catalog items, erase a user,
swap in a new model. Reads take the current `Engine` once, so a swap or a catalog change never
mixes two models inside one answer.
"""

from __future__ import annotations

import copy
import fcntl
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from driftrec.data.events import Event
from driftrec.errors import InputError, UnknownIdError
from driftrec.models import load
from driftrec.models.base import Recommendations, Recommender, read_config
from driftrec.models.capabilities import AddsItems, HasDriftGate, Incremental
from driftrec.store import CatalogItem, EventStore, StoredEvent
from driftrec.store.events import erasure_digest
from driftrec.store.feedback import DISMISS
from driftrec.store.shared import SharedState
from driftrec.store.stream import EventStream
from driftrec.tracking.catalog import Catalog
from driftrec.tracking.drift import DriftDetector, DriftTrack
from driftrec.tracking.engine import Engine
from driftrec.tracking.explain import EXPLAINED_EVENTS, contributions
from driftrec.tracking.exposure import Exposure
from driftrec.tracking.live import LiveUsers, UserState
from driftrec.tracking.profiles import (
    LONG_HALF_LIFE,
    SHORT_HALF_LIFE,
    drift_score,
    interest_shares,
)
from driftrec.tracking.rerank import calibrate as calibrate_to
from driftrec.tracking.rerank import demote, mmr
from driftrec.tracking.rerank import explore as add_exploration
from driftrec.tracking.shared import SharedUsers
from driftrec.tracking.timeline import interest_timeline

RECENT_SEARCHES = 5  # searches among a user's newest events steer their recommendations
SEARCH_WEIGHT = 0.3  # how much they weigh against the model's own scores
MMR_POOL = 4  # diversified answers pick from this many times k candidates
CALIBRATION_POOL = 20  # calibrated answers pick from this many times k candidates
RECENT_SHIFT = 10  # /interests says a shift is under way when an alarm is this many events old
DEMOTE_POOL = 5  # demoting ignored items picks from this many times k candidates
EXPLORE_BELOW = 50  # items with fewer interactions and impressions than this are explored
EXPLORE_FLOOR = 0.05  # an item off the user's topics still has this much chance to explore
EXPLORE_DECAY = 1.0  # interactions that divide an item's exploration chance by e


@dataclass(frozen=True)
class Answer:
    """Ranked items for a user, best first, and where they came from: "model" (the user's
    events), "search" (their searches only, through the language model) or "popular"."""

    items: list[str]
    scores: list[float | None]  # None: an exploration slot, not the model's choice
    source: str
    version: str
    explored: tuple[int, ...] = ()  # the slots given to exploration


@dataclass(frozen=True)
class Rejection:
    index: int
    field: str
    reason: str


@dataclass
class _View:
    """What one request reads of a user: their events split the way the model needs them."""

    known: list[Event]  # item events on items the model knows, oldest first
    recent: list[Event]  # the newest of them, as many as the model reads
    searches: list[str]  # texts of recent item-less events (searches), oldest first
    seen: np.ndarray  # item indices of `known`
    hidden: np.ndarray  # item indices the user dismissed: never shown again
    extra: dict[str, Any] = field(default_factory=dict)


class Tracker:
    """Live interest tracking over an `Engine` (model + index), an `EventStore` and a `Catalog`.

    ``model_dir`` is the directory the model was loaded from: erasing a user rewrites it so it no
    longer names them. Half-lives (in events) shape the interest profiles; ``calibrate`` in
    [0, 1] re-ranks every answer towards the topic mix of the user's short-term profile
    (`rerank.calibrate`; 0: the model's ranking). ``stages`` is told
    the seconds each step of a request took (store, state, query, retrieval).

    The feedback loop (docs/feedback.md) reads ``exposure``: ``demote_ignored`` lowers items
    the user was shown and ignored, ``explore`` gives that share of the slots to items with
    fewer than ``explore_below`` interactions and impressions. ``follow=False`` answers every
    user from their training history only (a frozen model, the comparison for live
    tracking). With ``shared`` (Redis) users' events are read from there, so several
    replicas answer alike, and with ``stream`` as well events are published to it rather than
    stored (docs/scaling.md)."""

    def __init__(
        self,
        engine: Engine,
        store: EventStore,
        catalog: Catalog,
        model_dir: Path | None = None,
        capacity: int = 100_000,
        window: int = 1_000,
        short_half_life: float = SHORT_HALF_LIFE,
        long_half_life: float = LONG_HALF_LIFE,
        stages: Callable[[str, float], None] | None = None,
        detector: DriftDetector | None = None,
        calibrate: float = 0.0,
        exposure: Exposure | None = None,
        demote_ignored: float = 0.0,
        explore: float = 0.0,
        explore_below: int = EXPLORE_BELOW,
        follow: bool = True,
        shared: SharedState | None = None,
        stream: EventStream | None = None,
    ) -> None:
        self.engine, self.store, self.catalog = engine, store, catalog
        self.model_dir = model_dir
        self.short_half_life, self.long_half_life = short_half_life, long_half_life
        self.detector = detector or DriftDetector()
        self.calibrate = calibrate
        self.exposure = exposure or Exposure(store.feedback, capacity)
        self.demote_ignored = demote_ignored
        self.explore, self.explore_below = explore, explore_below
        self.stages = stages or (lambda stage, seconds: None)
        self.live = (
            SharedUsers(store, shared, self._history, capacity, self.stages, stream)
            if shared is not None and follow
            else LiveUsers(store, self._history, capacity, window, self.stages, follow)
        )
        self._exposure_map: tuple[int, np.ndarray, np.ndarray] | None = None  # per engine
        self._changes = threading.Lock()  # one model change (items, erasure, swap) at a time

    def _history(self, user: str) -> list[Event]:
        return self.engine.model.history_events(user)

    # ------------------------------------------------------------------ writes
    def check(self, events: list[StoredEvent]) -> list[Rejection]:
        """The events the service cannot take, each with the field at fault: an item neither
        the catalog nor the model knows, an event type the model does not know, nothing to act
        on (no item and no text)."""
        model = self.engine.model
        types = {*model.event_types_, DISMISS}  # a dismissal is stored, never read as interest
        items = [e.event.item for e in events]
        known = model.item_indices([i or "" for i in items]) >= 0
        rejected = []
        for n, e in enumerate(events):
            item = e.event.item
            if item is None and not e.event.text:
                rejected.append(Rejection(n, "item", "an event needs an item or a text"))
            elif item is not None and not known[n] and item not in self.catalog:
                rejected.append(
                    Rejection(n, "item", f"unknown item {item!r}; add it with PUT /items first")
                )
            elif e.event.event not in types:
                rejected.append(
                    Rejection(
                        n,
                        "event",
                        f"unknown event type {e.event.event!r}; known: {', '.join(sorted(types))}",
                    )
                )
        return rejected

    def submit(self, events: list[StoredEvent]) -> Future[list[bool]]:
        """Queue the events to be stored durably (one transaction) and applied to the users'
        live state; the future says whether each was new (a retried event_id is not) once
        both are done. An event loop awaits it with ``asyncio.wrap_future``."""
        return self.live.submit(events)

    def ingest(self, events: list[StoredEvent]) -> list[bool]:
        """`submit` and wait."""
        return self.live.append(events)

    def close(self) -> None:
        """Finish the queued writes; the tracker takes no more."""
        self.live.close()

    # ------------------------------------------------------------------ reads
    @staticmethod
    def _known(engine: Engine, events: list[Event]) -> tuple[list[Event], np.ndarray]:
        """The item events the model can read, and their item indices."""
        readable = set(engine.model.event_types_)  # a reloaded model may know fewer types
        item_events = [e for e in events if e.item is not None and e.event in readable]
        found = engine.model.item_indices([e.item for e in item_events])
        return [e for e, i in zip(item_events, found, strict=True) if i >= 0], found[found >= 0]

    def _view(self, engine: Engine, state: UserState) -> _View:
        def split(events: list[Event]) -> _View:
            known, seen = self._known(engine, events)
            latest = events[-RECENT_SEARCHES:]
            searches = [e.text for e in latest if e.item is None and e.text]
            window = engine.model.history_window
            recent = known[-window:] if window is not None else known
            dismissed = engine.model.item_indices(
                [str(e.item) for e in events if e.event == DISMISS and e.item is not None]
            )
            return _View(known, recent, searches, seen, np.unique(dismissed[dismissed >= 0]))

        return state.cached(("view", engine.serial), split)

    def recommend(
        self,
        user: str,
        k: int = 10,
        exclude_seen: bool = True,
        diversify: float = 0.0,
        text: str | None = None,
        text_weight: float = 0.5,
    ) -> Answer:
        """The user's top ``k``; ``diversify`` in [0, 1] re-ranks by maximal marginal relevance
        over item vectors (0: by score only); ``text`` mixes in a free-text interest."""
        engine = self.engine
        state = self.live.get(user)
        row = (state, self._view(engine, state))
        return self._answers(
            engine, [row], k, exclude_seen, diversify, text, text_weight, users=[user]
        )[0]

    def recommend_before(
        self, events: list[StoredEvent], k: int = 10, exclude_seen: bool = True
    ) -> list[Answer]:
        """For each event in turn, the top ``k`` its user would have been served just before
        it, the batch's earlier events of that user included, in one batched pass (replay
        asks this, then ingests the batch). Nothing is stored or applied."""
        engine = self.engine
        ahead: dict[str, UserState] = {}  # each user's state after their events so far
        rows = []
        for e in events:
            state = ahead.get(e.user) or self.live.get(e.user)
            rows.append((state, self._view(engine, state)))
            if self.calibrate and engine.topics is not None:
                self._drift(engine, state)  # now, so the next state advances it by one event
            after = UserState(state.events, dict(state.derived))  # so running values advance
            after.extend([e.event], self.live.window)
            ahead[e.user] = after
        return self._answers(engine, rows, k, exclude_seen)

    def _answers(
        self,
        engine: Engine,
        rows: list[tuple[UserState, _View]],
        k: int,
        exclude_seen: bool = True,
        diversify: float = 0.0,
        text: str | None = None,
        text_weight: float = 0.5,
        users: list[str] | None = None,
    ) -> list[Answer]:
        """The answer for each (state, view): popular items for a user with nothing the model
        reads, their searches through the language model for one with only searches, else the
        model's ranking (through the index when there is one), all index rows in one pass.
        With ``users`` (one per row) the feedback steps run: demotion and exploration."""
        model = engine.model
        if text is not None and not model.reads_text:
            raise InputError(
                f"text: model {model.name!r} does not read text (use 'content' or a sequence"
                " model trained with features='text')"
            )
        calibrate = self.calibrate if engine.topics is not None else 0.0
        demoting = self.demote_ignored > 0 and users is not None
        wanted = k * max(
            MMR_POOL if diversify > 0 else 1,
            CALIBRATION_POOL if calibrate else 1,
            DEMOTE_POOL if demoting else 1,
        )
        ranked: dict[int, tuple[np.ndarray, np.ndarray, str]] = {}  # by row
        indexed, exact = [], []  # rows the index answers, rows the model scores in one batch
        # what each row must not get: the whole history (not only the window) unless asked,
        # and what the user dismissed, always
        excluded = [
            np.concatenate([view.seen, view.hidden]) if exclude_seen else view.hidden
            for _, view in rows
        ]
        for n, (_, view) in enumerate(rows):
            seen = excluded[n]
            row_text, row_weight = text, text_weight
            if row_text is None and view.searches and model.reads_text:
                row_text, row_weight = ". ".join(view.searches), SEARCH_WEIGHT
            if not view.known and row_text is None:
                ranked[n] = (*self._popular(engine, seen, wanted), "popular")
            elif not view.known:
                recs = model.recommend(text=row_text, k=wanted + len(seen), exclude_seen=False)
                ranked[n] = (*_drop_seen(recs, 0, seen), "search")
            elif row_text is None and exclude_seen and engine.index is not None:
                indexed.append(n)
            elif row_text is None:
                exact.append(n)
            else:
                recs = model.recommend(
                    events=[view.recent],
                    k=wanted + len(seen),
                    text=row_text,
                    text_weight=row_weight,
                    exclude_seen=exclude_seen,
                )
                ranked[n] = (*_drop_seen(recs, 0, seen), "model")
        if indexed:
            start = time.perf_counter()
            queries = self._queries(engine, [rows[n] for n in indexed])
            searched = time.perf_counter()
            found = engine.index.search(queries, wanted, exclude=[excluded[n] for n in indexed])
            self.stages("query", searched - start)
            self.stages("retrieval", time.perf_counter() - searched)
            for r, n in enumerate(indexed):
                real = found.items[r] >= 0
                ranked[n] = (found.items[r][real], found.scores[r][real], "model")
        if exact:
            views = [rows[n][1] for n in exact]
            most_seen = max(len(excluded[n]) for n in exact)
            recs = model.recommend(
                events=[v.recent for v in views], k=wanted + most_seen, exclude_seen=exclude_seen
            )
            for r, n in enumerate(exact):
                ranked[n] = (*_drop_seen(recs, r, excluded[n]), "model")
        answers = []
        for n in range(len(rows)):
            items, scores, source = ranked[n]
            if demoting and users is not None:
                ignored = self._ignored(model, users[n], items)
                items, scores = demote(items, scores, ignored, self.demote_ignored)
            if calibrate and engine.topics is not None and len(rows[n][1].seen):
                target = self._target(engine, *rows[n])
                pool = k * MMR_POOL if diversify > 0 else k
                items, scores = calibrate_to(
                    engine.topics.membership, items, scores, pool, calibrate, target
                )
            if diversify > 0 and (vectors := engine.item_vectors(items)) is not None:
                items, scores = mmr(vectors, items, scores, k, diversify)
            items, listed = items[:k], [float(s) for s in scores[:k]]
            slots = np.empty(0, np.int64)
            if self.explore > 0 and users is not None and len(items):
                items, slots = self._explore(engine, *rows[n], items)
                for slot in slots:
                    listed.insert(int(slot), None)
            answers.append(
                Answer(
                    [str(i) for i in model.item_ids_[items]],
                    listed[: len(items)],
                    source,
                    engine.version,
                    tuple(int(s) for s in slots),
                )
            )
        return answers

    def _ignored(self, model: Any, user: str, items: np.ndarray) -> np.ndarray:
        """(len(items),) how many times each candidate was shown to ``user`` and ignored."""
        ignored = self.exposure.ignored(user)
        out = np.zeros(len(items), np.int64)
        if not ignored:
            return out
        found = model.item_indices(list(ignored))
        counts = dict(zip(found.tolist(), ignored.values(), strict=True))
        for n, item in enumerate(items.tolist()):
            out[n] = counts.get(item, 0)
        return out

    def _explore(
        self, engine: Engine, state: UserState, view: _View, items: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``items`` with exploration slots: items with fewer than ``explore_below``
        interactions (training events and impressions) the user has not seen, drawn in
        proportion to e^(-interactions) times how well they fit the user's short-term topics
        (docs/feedback.md, "New-item exploration")."""
        if self._exposure_map is None or self._exposure_map[0] != engine.serial:
            model = engine.model
            trained = np.bincount(model.history_.items, minlength=model.n_items)
            self._exposure_map = (engine.serial, self.exposure.slots(model.item_ids_), trained)
        _, slots, trained = self._exposure_map
        experience = trained + self.exposure.counts(slots)
        # an uncertainty bonus that decays with experience: each interaction divides an
        # item's chance by e, so items nobody has seen yet go first, then the least seen
        weights = np.exp(-experience / EXPLORE_DECAY)
        weights[experience >= self.explore_below] = 0.0
        weights[view.seen] = 0.0
        weights[view.hidden] = 0.0
        weights[items] = 0.0
        if engine.topics is not None and len(view.seen):
            short = interest_shares(engine.topics, view.seen, self.short_half_life)
            weights *= engine.topics.membership @ short + EXPLORE_FLOOR
        candidates = np.flatnonzero(weights > 0)
        rng = np.random.default_rng()
        return add_exploration(items, candidates, weights[candidates], self.explore, rng)

    def _queries(self, engine: Engine, rows: list[tuple[UserState, _View]]) -> np.ndarray:
        """(n, d) query vectors of the rows: those not yet known computed in one batch, unless
        the model advances each user's own running state (`_query`)."""
        model = engine.model
        if not (isinstance(model, Incremental) and model.history_window is None):
            missing = [view for _, view in rows if "query" not in view.extra]
            if missing:
                batch = model.query_vectors(
                    model.query_histories(events=[v.recent for v in missing])
                )
                for view, query in zip(missing, batch, strict=True):
                    view.extra["query"] = query[None]
        return np.concatenate([self._query(engine, state, view) for state, view in rows])

    def _query(self, engine: Engine, state: UserState, view: _View) -> np.ndarray:
        """(1, d) the user's query vector, once per snapshot of their events: advanced by the
        new events where the model can (`Incremental`, reading the whole history), else
        computed from the events the model reads."""
        query = view.extra.get("query")  # the view belongs to one snapshot of the events
        if query is not None:
            return query
        model = engine.model
        if isinstance(model, Incremental) and model.history_window is None:
            running = state.running(
                ("running", engine.serial),
                lambda events: model.start(self._known(engine, events)[0]),
                lambda value, added: model.advance(value, self._known(engine, added)[0]),
            )
            query = model.query_vector(running)[None]
        else:
            query = model.query_vectors(model.query_histories(events=[view.recent]))
        view.extra["query"] = query
        return query

    @staticmethod
    def _popular(
        engine: Engine, seen: np.ndarray | tuple[()], k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        keep = ~np.isin(engine.popular, np.asarray(seen, np.int64))
        return engine.popular[keep][:k], engine.popularity[keep][:k]

    def interests(self, user: str, top: int = 10) -> dict[str, Any]:
        """Long- and short-term interest shares over topics, the drift score between them, the
        model's drift gate where it has one, and the events that weigh most in the user's
        current recommendations."""
        engine = self.engine  # one model for the whole answer
        model = engine.model
        state = self.live.get(user)
        view = self._view(engine, state)
        result: dict[str, Any] = {
            "user": user,
            "events": len(view.known),
            "searches": view.searches,
            "model_version": engine.version,
            "topics_from": engine.topics.source if engine.topics is not None else None,
        }
        if engine.topics is not None:
            long = interest_shares(engine.topics, view.seen, self.long_half_life)
            short = interest_shares(engine.topics, view.seen, self.short_half_life)
            result["long_term"] = _shares(engine.topics.names, long, top)
            result["short_term"] = _shares(engine.topics.names, short, top)
            result["drift_score"] = drift_score(short, long)
            result["drift"] = self._drift_json(self._drift(engine, state), view)
        else:
            result.update(long_term=[], short_term=[], drift_score=None, drift=None)
        result["gate"] = None
        if view.known and isinstance(model, HasDriftGate):
            result["gate"] = float(model.gate(model.query_histories(events=[view.recent]))[0])
        answer = self._answers(engine, [(state, view)], k=10)[0]
        targets = model.item_indices(answer.items)
        result["influential_events"] = []
        if view.known and len(targets):
            positions, lift = contributions(model, view.recent, targets)
            weight = lift.sum(axis=1)  # how much each event lifts the whole top 10
            order = np.argsort(-weight, kind="stable")[:5]
            result["influential_events"] = [
                self._event_json(view.recent[positions[o]], float(weight[o])) for o in order
            ]
        return result

    def timeline(self, user: str, points: int = 100, top: int = 8) -> dict[str, Any]:
        """The user's interest over their stored events (the newest ``window``): short- and
        long-term shares of their ``top`` topics, the drift score and the detector's evidence
        at up to ``points`` events spread evenly, and the events that raised an alarm."""
        engine = self.engine
        view = self._view(engine, self.live.get(user))
        result: dict[str, Any] = {
            "user": user,
            "events": len(view.known),
            "topics": [],
            "points": [],
            "shifts": [],
            "threshold": self.detector.threshold,
            "model_version": engine.version,
        }
        if engine.topics is None or not view.known:
            return result
        line = interest_timeline(
            engine.topics.membership[view.seen].toarray(),
            self.short_half_life,
            self.long_half_life,
            self.detector,
        )
        presence = line.long[-1] + line.short.mean(axis=0)  # held now, or for a while
        shown = np.argsort(-presence, kind="stable")[:top]
        shown = shown[(line.short[:, shown].max(axis=0) > 0)]
        at = np.unique(np.linspace(0, len(view.known) - 1, min(points, len(view.known))).round())
        result["topics"] = [engine.topics.names[j] for j in shown]
        result["points"] = [
            {
                "timestamp": view.known[i].timestamp,
                "event": int(i),
                "short_term": [float(x) for x in line.short[i, shown]],
                "long_term": [float(x) for x in line.long[i, shown]],
                "drift_score": float(line.drift[i]),
                "evidence": float(line.evidence[i]),
            }
            for i in at.astype(np.int64)
        ]
        result["shifts"] = [view.known[i].timestamp for i in line.alarms]
        return result

    def _target(self, engine: Engine, state: UserState, view: _View) -> np.ndarray:
        """The topic mix calibrated answers follow: the short-term profile of the user's events
        since the newest detected change began (of all their events when none was detected),
        so an answer lets go of the old interest once the detector sees it is gone."""
        assert engine.topics is not None
        track = self._drift(engine, state)
        onsets = track.state.onsets
        if onsets:
            first = min(max(onsets[-1] - track.dropped, 0), len(view.seen) - 1)
            seen = view.seen[first:]  # the events since the change began
        else:
            seen = view.seen
        return interest_shares(engine.topics, seen, self.short_half_life)

    def _drift(self, engine: Engine, state: UserState) -> DriftTrack:
        """The drift detector over the user's item events, advanced by each new event (and
        kept when the window drops the oldest: ``dropped`` maps its positions to the view's
        ``known``); an event that arrived out of time order starts it over."""
        topics = engine.topics
        assert topics is not None

        def advance(track: DriftTrack, events: list[Event]) -> DriftTrack:
            known, seen = self._known(engine, events)
            if not known:
                return track
            rows = topics.membership[seen].toarray()
            return self.detector.follow(track, rows, [e.timestamp for e in known])

        def slide(track: DriftTrack, gone: list[Event]) -> DriftTrack:
            return replace(track, dropped=track.dropped + len(self._known(engine, gone)[0]))

        return state.running(
            ("drift", engine.serial),
            lambda events: advance(DriftTrack(self.detector.start(len(topics.names))), events),
            advance,
            slide,
        )

    def _drift_json(self, drift: DriftTrack, view: _View) -> dict[str, Any]:
        """The ``drift`` field of `interests`."""
        alarms = drift.state.alarms
        last = drift.shifts[-1] if drift.shifts else None
        since = max(len(view.known) - 1 - (alarms[-1] - drift.dropped), 0) if alarms else None
        return {
            "evidence": drift.state.evidence,
            "threshold": self.detector.threshold,
            "shift_detected": since is not None and since < RECENT_SHIFT,
            "last_shift": last,
            "events_since_shift": since,
            "shifts": list(drift.shifts),
        }

    def why(self, user: str, item: str) -> dict[str, Any]:
        """How much each of the user's newest events (and each topic) raises ``item``'s score."""
        engine = self.engine
        model = engine.model
        target = model.item_indices([item])
        if target[0] < 0:
            raise UnknownIdError(f"unknown item {item!r}")
        view = self._view(engine, self.live.get(user))
        positions, lift = contributions(model, view.recent, target, EXPLAINED_EVENTS)
        events = [
            self._event_json(view.recent[p], float(c))
            for p, c in zip(positions, lift[:, 0], strict=True)
        ]
        events.sort(key=lambda e: -abs(e["contribution"]))
        by_topic: dict[str, float] = {}
        if engine.topics is not None and len(positions):
            offset = len(view.known) - len(view.recent)  # recent is the tail of known
            names = engine.topics.of_items(view.seen[offset + positions])
            for topics, c in zip(names, lift[:, 0], strict=True):
                for t in topics:
                    by_topic[t] = by_topic.get(t, 0.0) + float(c) / len(topics)
        return {
            "user": user,
            "item": item,
            "method": "leave-one-out: the score change when one event is left out",
            "explained_events": len(positions),
            "events": events,
            "topics": [
                {"topic": t, "contribution": c}
                for t, c in sorted(by_topic.items(), key=lambda x: -abs(x[1]))
            ],
            "note": None
            if view.known
            else "no events the model knows: the answer is cold-start, not personal",
            "model_version": engine.version,
        }

    def _event_json(self, e: Event, contribution: float) -> dict[str, Any]:
        return {
            "item": e.item,
            "title": self.catalog.get(str(e.item)).title,
            "timestamp": e.timestamp,
            "event": e.event,
            "contribution": contribution,
        }

    # ------------------------------------------------------------------ model changes
    def add_items(self, items: list[CatalogItem]) -> dict[str, Any]:
        """Add or update catalog items (stored first); new items join a text-reading model's
        catalog and index, so they can be recommended on the next request."""
        with self._changes:
            added = self.store.put_items(items)
            self.catalog.put(items)
            return {
                "added": added,
                "updated": [i.item for i in items if i.item not in added],
                **self._grow([i.item for i in items]),
            }

    def _grow(self, ids: list[str]) -> dict[str, Any]:
        engine = self.engine
        model = engine.model
        new = [i for i, found in zip(ids, model.item_indices(ids), strict=True) if found < 0]
        if not new:
            return {"recommendable": True}
        if not (isinstance(model, AddsItems) and model.reads_text):
            return {"recommendable": False}  # stored and shown; a retrained model will use it
        grown = copy.copy(model)
        grown.add_items(new, [self.catalog.text(i) for i in new])
        self.engine = engine.with_items(grown, self.catalog, model.n_items)
        return {"recommendable": True}

    def restore_items(self, ids: list[str] | None = None) -> None:
        """Put the items clients added before a restart (or a model swap) back into play, or
        those of ``ids`` (added through another replica)."""
        stored = self.store.items(ids)
        self.catalog.put(stored)
        with self._changes:
            self._grow([i.item for i in stored])

    def forget(self, user: str) -> dict[str, Any]:
        """Erase the user everywhere: stored events, live state and, when they were a training
        user of the served model, its saved histories and user factors (the model directory is
        rewritten in place). Returns what was erased."""
        with self.live.locked([user]):
            erased_events = self.store.delete_user(user)
            had_state = self.live.drop(user)
            in_model, rewritten = self.forget_in_model(user)
        return {
            "events": erased_events,
            "live_state": had_state,
            "training_history": in_model,
            "model_directory_rewritten": rewritten,
        }

    def forget_in_model(self, user: str) -> tuple[bool, bool]:
        """Erase the user from what this tracker holds beside the store (their ignored items,
        live state, the served model and its directory): all of `forget` that another replica
        must also do after one erased the user. Returns whether the model named them and
        whether its directory was rewritten (it is left alone when it no longer does)."""
        with self.live.locked([user]), self._changes:
            self.exposure.forget(user)
            self.live.drop_local(user)
            engine = self.engine
            smaller = copy.copy(engine.model)  # requests in flight keep the old one
            in_model = bool(smaller.forget_users([user]))
            if in_model:
                self.engine = engine.with_model(smaller)
            # the directory names the user only if the model loaded from it did
            rewritten = (
                in_model
                and self.model_dir is not None
                and _erase_from_directory(self.model_dir, user)
            )
        return in_model, rewritten

    def swap(self, build: Callable[[], Engine]) -> Engine:
        """Build an engine (a newly trained model) and serve it from the next request on, with
        no erasure or catalog change in between (an erasure cannot be undone by a model read
        before it); live state is rebuilt from the new engine."""
        with self._changes:
            engine = build()
            self.engine = engine
            self.live.clear()
        return engine


def _drop_seen(
    recs: Recommendations, row: int, seen: np.ndarray | tuple[()]
) -> tuple[np.ndarray, np.ndarray]:
    real = recs.items[row] >= 0
    items, scores = recs.items[row][real], recs.scores[row][real]
    keep = ~np.isin(items, np.asarray(seen, np.int64))
    return items[keep], scores[keep]


def _shares(names: list[str], shares: np.ndarray, top: int) -> list[dict[str, Any]]:
    order = np.argsort(-shares, kind="stable")[:top]
    return [{"topic": names[j], "share": float(shares[j])} for j in order if shares[j] > 0]


_MODEL_FILES = ("state.safetensors", "ids.json", "config.json")


def _rewrite_of(directory: Path) -> Path:
    return directory.parent / f".{directory.name}.rewrite"


def _erase_from_directory(directory: Path, user: str) -> bool:
    """Rewrite a model directory without ``user`` if it names them; whether it did. The
    model is read from the directory itself, under a lock on it, so replicas sharing one
    directory, erasing different users at once, never write back a user another erased."""
    with _directory_lock(directory):
        finish_model_rewrite(directory)
        if not (directory / "config.json").is_file():
            return False
        model = load(directory)
        if not model.forget_users([user]):
            return False
        config = read_config(directory)
        scratch = _rewrite_of(directory)
        shutil.rmtree(scratch, ignore_errors=True)
        model.save(scratch, info=config.get("info", {}))
        (scratch / "COMPLETE").touch()
        finish_model_rewrite(directory)
        return True


@contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    """An exclusive lock on ``directory`` between processes (a lock file beside it)."""
    with open(directory.parent / f".{directory.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_served(directory: Path, store: EventStore) -> Recommender:
    """The model in ``directory`` as a service serves it: read under the directory's lock (an
    erasure by another process is never read half-written), and without the users the store's
    erasure log names since it was saved (an erasure this process did not hear of)."""
    with _directory_lock(directory):
        finish_model_rewrite(directory)  # an erasure a crash interrupted
        model = load(directory)
        saved = (directory / "state.safetensors").stat().st_mtime
    erased = store.erased_since(saved)
    if erased:
        named = [str(u) for u in model.user_ids_ if erasure_digest(str(u)) in erased]
        if named:
            model.forget_users(named)
    return model


def finish_model_rewrite(directory: Path) -> None:
    """Complete (or discard, if it was not written whole) a rewrite of ``directory`` that a
    crash interrupted, so the directory never holds files of two versions."""
    scratch = _rewrite_of(Path(directory))
    if not scratch.is_dir():
        return
    if (scratch / "COMPLETE").is_file():
        for name in _MODEL_FILES:
            if (scratch / name).is_file():
                os.replace(scratch / name, Path(directory) / name)
    shutil.rmtree(scratch, ignore_errors=True)


__all__ = ["Answer", "Rejection", "Tracker", "finish_model_rewrite", "load_served"]

"""What a running service holds: settings, the store, one tracker per served model (an A/B
variant, or the one model), the feedback writers, metrics.

Opening it loads each model directory, the catalog (the model's training dataset when it is
still where it was, or ``--data``), builds the engine (index chosen by catalog size) and puts
back the items clients added earlier. Reloading builds a new engine off the request path and
swaps it in. A user is served by one variant, chosen by a stable hash of their stored id.
"""

from __future__ import annotations

import bisect
import gc
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from driftrec.data.dataset import Dataset
from driftrec.data.pseudonyms import pseudonymise_ids
from driftrec.errors import InputError
from driftrec.feedback.variants import Variant, assign
from driftrec.models.base import trained_on
from driftrec.models.training import set_threads
from driftrec.serving.metrics import Metrics
from driftrec.serving.settings import Settings
from driftrec.store import CatalogItem, EventStore, Impression, Served
from driftrec.store.changes import Change, Changes
from driftrec.store.group import GroupCommit, WriteBehind
from driftrec.store.shared import DAY, SharedState, connect
from driftrec.store.stream import RedisEventStream
from driftrec.tracking import Catalog, Engine, Tracker, model_version
from driftrec.tracking.exposure import Exposure
from driftrec.tracking.tracker import load_served

log = logging.getLogger("driftrec.serving")
MAIN = "main"  # the variant's name when one model is served
EXPOSURE_REFRESH = 10.0  # seconds between replicas' refreshes of item impression counts


def _catalog(settings: Settings, model_dir: Path) -> Catalog:
    source = settings.data_dir or trained_on(model_dir)
    return Catalog() if source is None else Catalog.from_dataset(Dataset.load(source))


@dataclass
class Arm:
    """One served model: its variant's name and share of the users, and its tracker."""

    name: str
    share: float
    tracker: Tracker
    model_dir: Path


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.store = EventStore(settings.db_url)
        self.shared: SharedState | None = None
        self.changes: Changes | None = None
        self.stream: RedisEventStream | None = None
        if settings.state_url is not None:
            client = connect(settings.state_url)
            self.shared = SharedState(
                client,
                settings.window,
                settings.state_prefix,
                ttl=max(1, round(settings.state_ttl_days * DAY)),
                round_trip=self.metrics.state_round_trips.inc,
            )
            self.changes = Changes(client, prefix=settings.state_prefix)
            if settings.ingest == "stream":
                self.stream = RedisEventStream(client, settings.state_prefix, settings.partitions)
        # impressions and ignored items, shared by the variants: exposure is the item's;
        # replicas read ignored items from the store and refresh item counts from it
        self.exposure = Exposure(
            self.store.feedback, settings.live_users, cache_users=self.shared is None
        )
        self._refreshing = threading.Event()
        if self.shared is not None:
            threading.Thread(target=self._refresh_exposure, daemon=True).start()
        variants = settings.variants or (Variant(MAIN, settings.model_dir, 1.0),)
        self.arms = [
            Arm(v.name, v.share, self._tracker(v.model_dir), v.model_dir) for v in variants
        ]
        for arm in self.arms:
            arm.tracker.restore_items()
        if self.changes is not None:  # what other replicas changed in the models from now on
            self.changes.follow(self._apply, _log_change_failure)
        # served lists are a log, written behind the answers a few times a second;
        # impressions are acknowledged
        self._served: WriteBehind[Served] = WriteBehind(
            self.store.feedback.log_served, _log_failure
        )
        self._impressions: GroupCommit[Impression, bool] = GroupCommit(self._store_impressions)
        # Requests are small: numpy's BLAS and faiss's OpenMP pools, sized to every core,
        # only add wake-ups and spinning that collide with other requests on the same cores
        # (GET p99 at 10k items 9-13 ms with them, 5 ms without). Built once, before this.
        threadpool_limits(settings.threads)
        faiss.omp_set_num_threads(settings.threads)
        self._reloading = threading.Lock()
        self._trained: tuple[np.ndarray, list[str]] = (np.empty(0, object), [])
        self._describe()
        self.metrics.live_users.set_function(lambda: len(self.tracker.live))
        # the model and catalog live as long as the service: keep the collector from walking
        # them on every full collection (a pause that grows with the catalog)
        gc.collect()
        gc.freeze()

    def _tracker(self, model_dir: Path) -> Tracker:
        settings = self.settings
        catalog = _catalog(settings, model_dir)
        return Tracker(
            self._engine(model_dir, catalog),
            self.store,
            catalog,
            model_dir=model_dir,
            capacity=settings.live_users,
            window=settings.window,
            short_half_life=settings.short_half_life,
            long_half_life=settings.long_half_life,
            stages=self.metrics.stage,
            calibrate=settings.calibrate,
            exposure=self.exposure,
            demote_ignored=settings.demote_ignored,
            explore=settings.explore,
            explore_below=settings.explore_below,
            follow=not settings.frozen,
            shared=self.shared,
            stream=self.stream,
        )

    @property
    def tracker(self) -> Tracker:
        """The first variant's tracker: what answers for the catalog and the service as a
        whole (health, overview, items)."""
        return self.arms[0].tracker

    def arm_index(self, user: str) -> int:
        """The position in `arms` of the variant serving ``user`` (their store id): a stable
        hash, no state."""
        if len(self.arms) == 1:
            return 0
        return assign(user, self.settings.variants, self.settings.salt)

    def arm(self, user: str) -> Arm:
        """The variant serving ``user`` (their store id)."""
        return self.arms[self.arm_index(user)]

    def log_served(self, answer: Served) -> None:
        """Record a served list without waiting for it (written within 0.2 s; a failure is
        logged, never raised into the answer that was already given)."""
        self._served.add([answer])

    def flush_served(self) -> None:
        """Write the served lists still buffered (the online metrics read them)."""
        self._served.flush()

    def submit_impressions(self, shown: Sequence[Impression]) -> Future[list[bool]]:
        """Store impressions durably (the future completes once they are)."""
        return self._impressions.submit(shown)

    def _store_impressions(self, shown: Sequence[Impression]) -> list[bool]:
        new = self.store.feedback.add_impressions(shown)
        self.exposure.record(shown, new)
        return new

    def add_items(self, items: list[CatalogItem]) -> dict[str, object]:
        """Add or update catalog items in every variant's catalog (stored once)."""
        results = [arm.tracker.add_items(items) for arm in self.arms]
        if self.changes is not None:
            self.changes.publish("items", items=[i.item for i in items])
        first = results[0]
        return {**first, "recommendable": all(r["recommendable"] for r in results)}

    def forget(self, user: str) -> dict[str, object]:
        """Erase the user from the store, every variant's live state and every served model;
        lists served to them and still buffered are written first, so the erasure takes them
        too."""
        self._served.flush()
        results = [arm.tracker.forget(user) for arm in self.arms]
        if self.changes is not None:
            self.changes.publish("erase", user)
        return {
            "events": sum(int(r["events"]) for r in results),
            **{
                key: any(r[key] for r in results)
                for key in ("live_state", "training_history", "model_directory_rewritten")
            },
        }

    def _refresh_exposure(self) -> None:
        while not self._refreshing.wait(EXPOSURE_REFRESH):
            try:
                self.exposure.refresh()
            except Exception as err:  # the next refresh may work; exploration reads old counts
                log.error("item exposure could not be refreshed", exc_info=err)

    def _apply(self, change: Change) -> None:
        """Apply a change another replica made: items it added (read from the store) or a
        user it erased (from what this replica's models hold)."""
        for arm in self.arms:
            if change.kind == "items":
                arm.tracker.restore_items(list(change.items))
            elif change.kind == "erase" and change.user is not None:
                arm.tracker.forget_in_model(change.user)

    def _engine(self, model_dir: Path, catalog: Catalog) -> Engine:
        model = load_served(model_dir, self.store)
        set_threads(self.settings.threads)  # after loading: a model sets its training threads
        return Engine.build(model, model_version(model_dir), catalog, self.settings.exact_max_items)

    def _describe(self) -> None:
        engine = self.tracker.engine
        self.metrics.model.info({"name": engine.model.name, "version": engine.version})

    def user_key(self, user: str) -> str:
        """The id the store and the live state know a user by: the pseudonym when a secret is
        configured, so raw ids never reach the database."""
        if self.settings.secret is None:
            return user
        return str(pseudonymise_ids([user], self.settings.secret)[0])

    def find_users(self, prefix: str, limit: int) -> list[dict[str, object]]:
        """Up to ``limit`` users whose id starts with ``prefix``, from the event store and the
        served model's training users, in id order. With pseudonymised ids the raw ids are
        nowhere to list: ``prefix`` is then taken as a whole id, found when its pseudonym is."""
        if self.settings.secret is not None:
            key = self.user_key(prefix)
            stored = key in self.store.users_with_prefix(key, 1)
            trained = key in self._trained_with_prefix(key, 1)
            return (
                [{"user": prefix, "stored": stored, "trained": trained}]
                if (stored or trained)
                else []
            )
        stored = set(self.store.users_with_prefix(prefix, limit))
        trained = set(self._trained_with_prefix(prefix, limit))
        return [
            {"user": u, "stored": u in stored, "trained": u in trained}
            for u in sorted(stored | trained)[:limit]
        ]

    def _trained_with_prefix(self, prefix: str, limit: int) -> list[str]:
        """The served model's training users starting with ``prefix``: a binary search in
        their ids, sorted once per id array (a reload or an erasure replaces it)."""
        ids = self.tracker.engine.model.user_ids_
        if self._trained[0] is not ids:
            self._trained = (ids, sorted(str(u) for u in ids))
        ordered = self._trained[1]
        found = []
        for user in ordered[bisect.bisect_left(ordered, prefix) :]:
            if not user.startswith(prefix) or len(found) == limit:
                break
            found.append(user)
        return found

    def reload(self, model_dir: Path | None = None, variant: str | None = None) -> tuple[str, str]:
        """Load ``model_dir`` (default: the one served) into ``variant`` (default: the first)
        and swap it in; in-flight requests finish on the old model. Returns (previous version,
        new version)."""
        arms = {arm.name: arm for arm in self.arms}
        if variant is not None and variant not in arms:
            raise InputError(f"unknown variant {variant!r}; served: {', '.join(arms)}")
        arm = arms[variant] if variant is not None else self.arms[0]
        with self._reloading:
            directory = model_dir or arm.model_dir
            catalog = _catalog(self.settings, directory)
            catalog.put(self.store.items())
            tracker = arm.tracker
            previous = tracker.engine.version
            engine = tracker.swap(lambda: self._engine(directory, catalog))
            tracker.catalog = catalog
            tracker.model_dir = directory
            tracker.restore_items()
            arm.model_dir = directory
            self._describe()
            return previous, engine.version

    def close(self) -> None:
        self._refreshing.set()
        if self.changes is not None:
            self.changes.close()
        for arm in self.arms:
            arm.tracker.close()  # acknowledges what is queued before the store goes
        self._impressions.close()
        self._served.close()
        self.store.close()


def _log_failure(err: Exception) -> None:
    log.error("served lists could not be logged", exc_info=err)


def _log_change_failure(err: Exception) -> None:
    log.error("another replica's change could not be applied", exc_info=err)


__all__ = ["Service"]

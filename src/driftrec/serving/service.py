"""What a running service holds: settings, the store, the tracker over the loaded model, metrics.

Opening it loads the model directory, the catalog (the model's training dataset when it is still
where it was, or ``--data``), builds the engine (index chosen by catalog size) and puts back the
items clients added earlier. Reloading builds a new engine off the request path and swaps it in.
"""

from __future__ import annotations

import bisect
import gc
import threading
from pathlib import Path

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from driftrec.data.dataset import Dataset
from driftrec.data.pseudonyms import pseudonymise_ids
from driftrec.models import load
from driftrec.models.base import trained_on
from driftrec.models.training import set_threads
from driftrec.serving.metrics import Metrics
from driftrec.serving.settings import Settings
from driftrec.store import EventStore
from driftrec.tracking import Catalog, Engine, Tracker, model_version
from driftrec.tracking.tracker import finish_model_rewrite


def _catalog(settings: Settings, model_dir: Path) -> Catalog:
    source = settings.data_dir or trained_on(model_dir)
    return Catalog() if source is None else Catalog.from_dataset(Dataset.load(source))


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.store = EventStore(settings.db_url)
        self.model_dir = settings.model_dir
        catalog = _catalog(settings, self.model_dir)
        self.tracker = Tracker(
            self._engine(self.model_dir, catalog),
            self.store,
            catalog,
            model_dir=self.model_dir,
            capacity=settings.live_users,
            short_half_life=settings.short_half_life,
            long_half_life=settings.long_half_life,
            stages=self.metrics.stage,
            calibrate=settings.calibrate,
        )
        self.tracker.restore_items()
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

    def _engine(self, model_dir: Path, catalog: Catalog) -> Engine:
        finish_model_rewrite(model_dir)  # an erasure a crash interrupted
        model = load(model_dir)
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

    def reload(self, model_dir: Path | None = None) -> tuple[str, str]:
        """Load ``model_dir`` (default: the one served) and swap it in; in-flight requests
        finish on the old model. Returns (previous version, new version)."""
        with self._reloading:
            directory = model_dir or self.model_dir
            catalog = _catalog(self.settings, directory)
            catalog.put(self.store.items())
            previous = self.tracker.engine.version
            engine = self.tracker.swap(lambda: self._engine(directory, catalog))
            self.tracker.catalog = catalog
            self.tracker.model_dir = directory
            self.tracker.restore_items()
            self.model_dir = directory
            self._describe()
            return previous, engine.version

    def close(self) -> None:
        self.tracker.close()  # acknowledges what is queued before the store goes
        self.store.close()


__all__ = ["Service"]

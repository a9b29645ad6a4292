"""What users have been shown: impressions per item (how much of a chance each item has had,
which new-item exploration reads) and, per user, the items shown to them that they ignored
(which "shown but ignored" demotion reads). Kept in memory, fed by the impressions and
outcomes the service stores, and rebuilt from the store's feedback log: per item at start-up,
per user when a user is not cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from driftrec.store import Impression, StoredEvent
from driftrec.store.feedback import DISMISS, FeedbackLog


class Exposure:
    """Impression counts per item and ignored items per user (an LRU of ``capacity`` users).

    ``cache_users=False`` reads a user's ignored items from the store on every call: what
    replicas sharing a store do, since impressions reported to one replica would leave the
    others' cached copies stale; they also `refresh` the item counts now and then."""

    def __init__(
        self, feedback: FeedbackLog | None = None, capacity: int = 100_000, cache_users: bool = True
    ) -> None:
        self.feedback, self.capacity = feedback, capacity if cache_users else 0
        self._lock = threading.Lock()
        self._slot: dict[str, int] = {}  # item id -> its position in `_counts`
        self._counts = np.zeros(1024, np.int64)
        self._ignored: OrderedDict[str, dict[str, int]] = OrderedDict()
        self.refresh()

    def refresh(self) -> None:
        """Set the item counts to the store's (every replica's impressions)."""
        if self.feedback is None:
            return
        counts = self.feedback.exposure()
        slots = self.slots(np.asarray(list(counts), dtype=object))
        with self._lock:
            self._counts[slots] = list(counts.values())

    def slots(self, items: np.ndarray) -> np.ndarray:
        """(n,) each item's slot in the counts, given one if new: a caller maps a catalog
        once and reads `counts` of the slots on every request."""
        with self._lock:
            out = np.empty(len(items), np.int64)
            for n, item in enumerate(items):
                slot = self._slot.get(item)
                if slot is None:
                    slot = self._slot[item] = len(self._slot)
                out[n] = slot
            if len(self._slot) > len(self._counts):
                grown = np.zeros(2 * len(self._slot), np.int64)
                grown[: len(self._counts)] = self._counts
                self._counts = grown
            return out

    def counts(self, slots: np.ndarray) -> np.ndarray:
        """(n,) impressions of the items in ``slots``."""
        return self._counts[slots]

    def record(self, shown: Sequence[Impression], new: Sequence[bool]) -> None:
        """Count impressions once stored (``new``: not a retry already counted)."""
        fresh = [i for i, is_new in zip(shown, new, strict=True) if is_new]
        slots = self.slots(np.asarray([i.item for i in fresh], dtype=object))
        with self._lock:
            np.add.at(self._counts, slots, 1)
            for i in fresh:
                held = self._ignored.get(i.user)
                if held is not None:
                    held[i.item] = held.get(i.item, 0) + 1

    def engaged(self, events: Sequence[StoredEvent]) -> None:
        """Outcomes stored: an item the user acted on (anything but a dismissal) is no longer
        one they ignored."""
        with self._lock:
            for e in events:
                held = self._ignored.get(e.user)
                if held is not None and e.event.item is not None and e.event.event != DISMISS:
                    held.pop(e.event.item, None)

    def ignored(self, user: str) -> dict[str, int]:
        """Items shown to ``user`` with no positive outcome, and how many times."""
        with self._lock:
            held = self._ignored.get(user)
            if held is not None:
                self._ignored.move_to_end(user)
                return dict(held)
        held = self.feedback.ignored(user) if self.feedback is not None else {}
        with self._lock:
            # an impression recorded while the store was read counts once: the read wins
            self._ignored[user] = held
            while len(self._ignored) > self.capacity:
                self._ignored.popitem(last=False)
            return dict(held)

    def forget(self, user: str) -> None:
        """Drop the user's ignored items (erasure); item counts keep no user."""
        with self._lock:
            self._ignored.pop(user, None)


__all__ = ["Exposure"]

"""Live figures for GET /overview: events and API requests per clock minute, the distinct users
who posted events lately, and request latency percentiles over the last few minutes.

Kept in per-minute buckets (a ring of the last hour) that a request bumps with a few integer
additions, so the ``POST /events`` hot path pays no lock and allocates nothing per request: the
buckets are touched only on the event loop's thread (the request middleware, the async
``POST /events`` and ``GET /overview`` handlers), never from the thread pool.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

MINUTES = 60  # the ring: how far back GET /overview can look
ACTIVE_MINUTES = 5  # a user is active with an accepted event in the last 5 clock minutes
LATENCY_MINUTES = 5  # latency percentiles over the last 5 clock minutes
# latency buckets: 50 µs to about a minute in steps of 15% (a percentile is within ±7.5%)
EDGES: tuple[float, ...] = tuple(5e-5 * 1.15**n for n in range(101))
# the dashboard's own page and polling, and monitoring: not what the API's figures describe
UNCOUNTED = frozenset({"/", "/static/{name}", "/overview", "/health", "/metrics", "unmatched"})


class Activity:
    """Events, requests, active users and latency per clock minute, for the last hour."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.started = clock()
        self._minute = [-1] * MINUTES  # the minute (Unix seconds // 60) each slot counts
        self._events = [0] * MINUTES
        self._requests = [0] * MINUTES
        self._latency = [[0] * (len(EDGES) + 1) for _ in range(MINUTES)]
        self._users: list[set[str]] = [set() for _ in range(MINUTES)]

    def _slot(self) -> int:
        minute = int(self.clock() // 60)
        slot = minute % MINUTES
        if self._minute[slot] != minute:  # a new minute: once a minute, not per request
            self._minute[slot] = minute
            self._events[slot] = self._requests[slot] = 0
            self._latency[slot] = [0] * (len(EDGES) + 1)
            for n, held in enumerate(self._minute):  # users are kept only while they count
                if held <= minute - ACTIVE_MINUTES:
                    self._users[n] = set()
            self._users[slot] = set()
        return slot

    def request(self, route: str, seconds: float) -> None:
        """One answered API request (by route template) and how long it took."""
        if route in UNCOUNTED:
            return
        slot = self._slot()
        self._requests[slot] += 1
        self._latency[slot][bisect.bisect_left(EDGES, seconds)] += 1

    def events(self, accepted: int, users: Iterable[str]) -> None:
        """Events stored now, and the (store) ids of the users who posted them."""
        slot = self._slot()
        self._events[slot] += accepted
        self._users[slot].update(users)

    def summary(self, minutes: int) -> dict[str, Any]:
        """The figures of GET /overview over the last ``minutes`` clock minutes."""
        now = self.clock()
        current = int(now // 60)

        def held(minute: int) -> int | None:
            slot = minute % MINUTES
            return slot if self._minute[slot] == minute else None

        per_minute = []
        for minute in range(current - minutes + 1, current + 1):
            slot = held(minute)
            per_minute.append(
                {
                    "minute": minute * 60,
                    "events": 0 if slot is None else self._events[slot],
                    "requests": 0 if slot is None else self._requests[slot],
                }
            )
        slots = [held(m) for m in range(current - LATENCY_MINUTES + 1, current + 1)]
        counts = [0] * (len(EDGES) + 1)
        for slot in slots:
            if slot is not None:
                counts = [a + b for a, b in zip(counts, self._latency[slot], strict=True)]
        active: set[str] = set()
        for minute in range(current - ACTIVE_MINUTES + 1, current + 1):
            slot = held(minute)
            if slot is not None:
                active |= self._users[slot]
        # requests in the last 60 s: this minute's and the share of the last one still inside
        this, last = held(current), held(current - 1)
        into = now - current * 60
        in_window = (0 if this is None else self._requests[this]) + (
            0 if last is None else self._requests[last] * (1 - into / 60)
        )
        return {
            "minutes": per_minute,
            "active_users": len(active),
            "requests_per_second": in_window / max(1.0, min(60.0, now - self.started)),
            "latency": {
                "window_seconds": LATENCY_MINUTES * 60,
                "requests": sum(counts),
                "p50_ms": _percentile(counts, 0.50),
                "p99_ms": _percentile(counts, 0.99),
            },
            "uptime_seconds": now - self.started,
        }


def _percentile(counts: list[int], q: float) -> float | None:
    """The q-quantile of a latency histogram in milliseconds (the geometric middle of its
    bucket); None without requests."""
    total = sum(counts)
    if not total:
        return None
    rank, seen = q * total, 0
    for n, count in enumerate(counts):
        seen += count
        if seen >= rank and count:
            low = EDGES[n - 1] if n else EDGES[0] / 1.15
            high = EDGES[n] if n < len(EDGES) else EDGES[-1] * 1.15
            return 1000 * math.sqrt(low * high)
    return None


__all__ = ["ACTIVE_MINUTES", "LATENCY_MINUTES", "MINUTES", "Activity"]

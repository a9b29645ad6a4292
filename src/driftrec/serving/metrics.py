"""Prometheus metrics of one service (prometheus-client, its own registry per app): requests by
route and status, latency histograms, server-side time per stage, events ingested, model info;
and the per-minute `Activity` that GET /overview reports."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from driftrec.serving.activity import Activity

BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "driftrec_requests", "HTTP requests", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "driftrec_request_seconds",
            "request latency",
            ["route", "method"],
            buckets=BUCKETS,
            registry=r,
        )
        self.stages = Histogram(
            "driftrec_stage_seconds",
            "server-side time per stage (store, state, query, retrieval, serialise)",
            ["stage"],
            buckets=BUCKETS,
            registry=r,
        )
        self.events = Counter(
            "driftrec_events", "events received, by outcome", ["outcome"], registry=r
        )
        self.model = Info("driftrec_model", "the model being served", registry=r)
        self.live_users = Gauge("driftrec_live_users", "users held in memory", registry=r)
        self.state_round_trips = Counter(
            "driftrec_state_round_trips",
            "round trips to Redis for users' live state (--state redis://)",
            registry=r,
        )
        self.activity = Activity()  # the per-minute figures of GET /overview

        # each labelled child looked up once: `labels` takes a lock on every call
        self._stages: dict[str, Histogram] = {}
        self._outcomes: dict[str, Counter] = {}

    def stage(self, name: str, seconds: float) -> None:
        child = self._stages.get(name) or self._stages.setdefault(name, self.stages.labels(name))
        child.observe(seconds)

    def count_events(self, outcome: str, n: int) -> None:
        """Events received with ``outcome`` (accepted, duplicate, rejected)."""
        child = self._outcomes.get(outcome) or self._outcomes.setdefault(
            outcome, self.events.labels(outcome)
        )
        child.inc(n)


class RequestMetrics:
    """ASGI middleware counting every request by its route template (never the raw path, which
    names users) and status, and timing it."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope.get("method", "")
            seconds = time.perf_counter() - start
            self.metrics.latency.labels(route, method).observe(seconds)
            self.metrics.activity.request(route, seconds)
            self.metrics.requests.labels(route, method, str(status["code"])).inc()


__all__ = ["Metrics", "RequestMetrics"]

"""What a running service is configured with: the command line's options and the environment's
secrets (an API key and a pseudonymisation secret are never passed on a command line, where
`ps` shows them)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from driftrec.feedback.variants import Variant
from driftrec.store.stream import PARTITIONS
from driftrec.tracking.engine import EXACT_MAX_ITEMS
from driftrec.tracking.profiles import LONG_HALF_LIFE, SHORT_HALF_LIFE
from driftrec.tracking.tracker import EXPLORE_BELOW

API_KEY_ENV = "DRIFTREC_API_KEY"


@dataclass(frozen=True)
class Settings:
    model_dir: Path
    db_url: str
    data_dir: Path | None = None  # the catalog (titles, categories); default: the model's data
    api_key: str | None = None  # required on writes and per-user reads when set
    secret: str | None = None  # user ids are pseudonymised at the boundary with it when set
    max_batch: int = 1_000  # events or items per request
    max_body: int = 5 * 2**20  # bytes
    max_text: int = 2_000  # characters of an event's or an item's text
    max_k: int = 1_000
    exact_max_items: int = EXACT_MAX_ITEMS
    live_users: int = 100_000  # users whose state stays in memory
    window: int = 1_000  # a user's newest events kept live (in memory or in Redis)
    short_half_life: float = SHORT_HALF_LIFE
    long_half_life: float = LONG_HALF_LIFE
    calibrate: float = 0.0  # answers re-ranked towards the short-term topic mix (0: off)
    # the feedback loop (docs/feedback.md)
    variants: tuple[Variant, ...] = ()  # A/B variants; none: model_dir alone, as "main"
    salt: str = ""  # the experiment's salt: a new one reshuffles users between variants
    frozen: bool = False  # answer from training state only (the comparison for live tracking)
    demote_ignored: float = 0.0  # lower items shown to a user and ignored (0: off)
    explore: float = 0.0  # share of slots for items with little exposure (0: off)
    explore_below: int = EXPLORE_BELOW  # interactions + impressions under which an item is explored
    # threads of torch, BLAS and OpenMP per request: a request is one short sequence, too
    # small to split; requests run side by side instead, and one thread each has the lowest
    # tail latency (SASRec's query vector p99 1.7 ms against 3.2 ms with two torch threads;
    # GET p99 5 ms against 9-13 ms with BLAS and OpenMP pools on every core)
    threads: int = 1
    # users' live events in Redis, shared by replicas (redis://...); None: in this process
    state_url: str | None = None
    state_prefix: str = "driftrec"  # the Redis keys' prefix: deployments sharing a Redis differ
    state_ttl_days: float = 30.0  # a user's list stays in Redis this long after their last event
    ingest: str = "direct"  # "stream": events go to the Redis stream; `driftrec consume` stores
    partitions: int = PARTITIONS  # the stream's partitions (fixed when it is created)

    @staticmethod
    def api_key_from_env() -> str | None:
        return os.environ.get(API_KEY_ENV) or None


__all__ = ["API_KEY_ENV", "Settings"]

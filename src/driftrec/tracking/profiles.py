"""Interest profiles: a user's events as decayed shares over topics, at two speeds, and the drift
score between them.

A profile weighs each event ``0.5 ** (newer events / half_life)``: the short-term profile (a
half-life of a few events) is what the user is into now, the long-term one (a half-life of many
events) what they are usually into. Half-lives count events, not days: datasets bunch events in
sessions or have no real times, and "the last five things" means the same on all of them. The
drift score is the Jensen–Shannon divergence between the two profiles (base 2, in [0, 1]): 0
when the recent events look like the user's long-run taste, 1 when they share no topic."""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from driftrec.tracking.topics import Topics

SHORT_HALF_LIFE = 5.0
LONG_HALF_LIFE = 100.0


def decay_weights(n: int, half_life: float) -> np.ndarray:
    """(n,) weight of each of n events, oldest first: the newest weighs 1."""
    return 0.5 ** (np.arange(n - 1, -1, -1, dtype=np.float64) / half_life)


def interest_shares(topics: Topics, items: np.ndarray, half_life: float) -> np.ndarray:
    """(n_topics,) shares summing to 1 (all 0 when no event has a topic) of the item events
    ``items`` (item indices, oldest first)."""
    weights = decay_weights(len(items), half_life)
    return shares_of(topics.membership[np.asarray(items, np.int64)].T @ weights)  # (n_topics,)


def shares_of(mass: np.ndarray) -> np.ndarray:
    """Topic mass as shares along the last axis (rows of zeros stay zeros)."""
    mass = np.asarray(mass, np.float64)
    total = mass.sum(axis=-1, keepdims=True)
    return np.divide(mass, total, out=np.zeros_like(mass), where=total > 0)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen–Shannon divergence (base 2, in [0, 1]) between share vectors along the last axis
    (rows of two arrays that broadcast, or two vectors); 0 where either side is empty.

    As entropies, H(m) - (H(p) + H(q)) / 2 with m the midpoint: a handful of array operations,
    since re-ranking computes it for every candidate at every step."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    m = (p + q) / 2
    nats = (xlogy(p, p).sum(axis=-1) + xlogy(q, q).sum(axis=-1)) / 2 - xlogy(m, m).sum(axis=-1)
    both = (p.sum(axis=-1) > 0) & (q.sum(axis=-1) > 0)
    return np.where(both, np.clip(nats / np.log(2), 0.0, 1.0), 0.0)


def drift_score(short: np.ndarray, long: np.ndarray) -> float:
    """The divergence between a user's short- and long-term profiles."""
    return float(js_divergence(short, long))


__all__ = [
    "LONG_HALF_LIFE",
    "SHORT_HALF_LIFE",
    "decay_weights",
    "drift_score",
    "interest_shares",
    "js_divergence",
    "shares_of",
]

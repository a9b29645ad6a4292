"""Re-ranking a model's candidates before they are served: for variety (maximal marginal
relevance), to follow the user's current interest mix (calibration), away from what the user
was shown and ignored (demotion), and to give items with little exposure a chance
(exploration).

MMR and calibration are greedy: each next item is the candidate with the best trade-off
between the model's relevance (its scores scaled to [0, 1] over the candidates, so the two
terms are comparable) and what the list taken so far lacks. Items come back with their model
scores, in list order.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from driftrec.tracking.profiles import js_divergence, shares_of


def _relevance(scores: np.ndarray) -> np.ndarray:
    spread = float(scores.max() - scores.min()) or 1.0
    return (scores - scores.min()) / spread


def mmr(
    vectors: np.ndarray, items: np.ndarray, scores: np.ndarray, k: int, diversify: float
) -> tuple[np.ndarray, np.ndarray]:
    """Maximal marginal relevance over the candidates' ``vectors`` (n, d): repeatedly take the
    candidate maximising (1 - diversify)·relevance - diversify·(cosine similarity to what was
    taken)."""
    if len(items) <= 1:
        return items, scores
    v = np.array(vectors, np.float64)  # a copy: the caller's vectors stay as they were
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    relevance = _relevance(scores)
    chosen: list[int] = []
    left = list(range(len(items)))
    while left and len(chosen) < k:
        similarity = (v[left] @ v[chosen].T).max(axis=1) if chosen else np.zeros(len(left))
        value = (1 - diversify) * relevance[left] - diversify * similarity
        chosen.append(left.pop(int(np.argmax(value))))
    return items[chosen], scores[chosen]


def calibrate(
    membership: sp.csr_matrix | np.ndarray,
    items: np.ndarray,
    scores: np.ndarray,
    k: int,
    weight: float,
    target: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated recommendations (Steck, RecSys 2018), with Jensen–Shannon divergence: take
    the candidate maximising (1 - weight)·relevance - weight·JS(target, topic mix of the list
    with it), until k are taken. ``membership`` (n_items, n_topics) are the items' topic shares,
    ``target`` (n_topics,) the mix to follow (the user's short-term profile)."""
    if len(items) <= 1 or not target.sum():
        return items[:k], scores[:k]
    rows = membership[items]
    topics = np.asarray(rows.toarray() if sp.issparse(rows) else rows, np.float64)  # (n, T)
    relevance = _relevance(scores)
    taken = np.zeros(len(items), bool)
    mass = np.zeros(topics.shape[1])
    chosen: list[int] = []
    for _ in range(min(k, len(items))):
        mix = mass + topics  # (n, T): the list's topic mass with each candidate added
        divergence = js_divergence(target, shares_of(mix))
        divergence[~mix.any(axis=1)] = 1.0  # a list with no topic at all matches nothing
        value = (1 - weight) * relevance - weight * divergence
        value[taken] = -np.inf
        best = int(np.argmax(value))
        chosen.append(best)
        taken[best] = True
        mass += topics[best]
    return items[chosen], scores[chosen]


def demote(
    items: np.ndarray, scores: np.ndarray, ignored: np.ndarray, weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """Lower each candidate shown ``ignored`` (n,) times without an outcome by
    weight·(1 - 0.5^ignored) of the candidates' score range, and re-sort: the first
    non-click costs half of the full demotion, later ones less and less (docs/feedback.md)."""
    if not len(items) or not ignored.any():
        return items, scores
    spread = float(scores.max() - scores.min()) or 1.0
    adjusted = scores - weight * (1 - 0.5 ** ignored.astype(np.float64)) * spread
    order = np.argsort(-adjusted, kind="stable")
    return items[order], scores[order]


def explore(
    items: np.ndarray,
    candidates: np.ndarray,
    weights: np.ndarray,
    share: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Put exploration items into the list ``items`` (k,): share·k slots on average (rounded
    at random, so 0.1 of 10 is exactly one), drawn from ``candidates`` with probability in
    proportion to ``weights`` (without replacement, by the Gumbel top-n trick), each at a slot
    drawn uniformly so position bias hides none of them; the list's last items make room.
    Returns the list and the slots that explore."""
    k = len(items)
    wanted = int(np.floor(share * k + rng.random()))
    usable = weights > 0
    candidates, weights = candidates[usable], weights[usable]
    n = min(wanted, len(candidates), k)
    if n == 0:
        return items, np.empty(0, np.int64)
    keys = np.log(weights) + rng.gumbel(size=len(weights))
    picked = candidates[np.argsort(-keys)[:n]]
    slots = np.sort(rng.choice(k, size=n, replace=False))
    out = np.empty(k, items.dtype)
    out[slots] = picked
    rest = np.setdiff1d(np.arange(k), slots)
    out[rest] = items[: len(rest)]
    return out, slots


__all__ = ["calibrate", "demote", "explore", "mmr"]

"""Comparing two variants' CTR with a bootstrap over users (docs/feedback.md, "A/B tests").

One user's impressions are not independent (a user who likes the catalogue clicks a lot in
both arms), so a two-proportion test over impressions understates the variance and declares
differences too often. Resampling whole users (each arm on its own, CTR as total clicks over
total impressions of the resample) keeps that correlation. The p-value is the two-sided
bootstrap one: twice the smaller share of resampled differences on either side of 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

RESAMPLES = 2_000
MIN_IMPRESSIONS = 1_000  # per arm: below it the answer is "too small to decide"
ALPHA = 0.05


@dataclass(frozen=True)
class Comparison:
    """Treatment against control: CTRs, their difference with its 95% interval, the p-value,
    and the verdict ("better", "worse", "no difference found", "too small to decide")."""

    control: str
    treatment: str
    control_impressions: int
    treatment_impressions: int
    control_users: int
    treatment_users: int
    control_ctr: float | None
    treatment_ctr: float | None
    difference: float | None
    low: float | None
    high: float | None
    p_value: float | None
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _per_user(impressions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(users,) clicks and impressions of each user."""
    grouped = impressions.groupby("user")["clicked"].agg(["sum", "count"])
    return grouped["sum"].to_numpy(np.float64), grouped["count"].to_numpy(np.float64)


def _resampled_ctr(
    clicks: np.ndarray, shown: np.ndarray, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """(resamples,) CTR of users drawn with replacement, as many as there are."""
    n = len(clicks)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)  # (resamples, users)
    return (weights @ clicks) / np.maximum(weights @ shown, 1.0)


def compare(
    impressions: pd.DataFrame,
    control: str,
    treatment: str,
    by: str = "variant",
    resamples: int = RESAMPLES,
    min_impressions: int = MIN_IMPRESSIONS,
    alpha: float = ALPHA,
    seed: int = 0,
) -> Comparison:
    """Compare the CTR of the impressions whose ``by`` column is ``treatment`` with those
    whose is ``control`` (`FeedbackLog.impression_rows`)."""
    a = impressions[impressions[by] == control]
    b = impressions[impressions[by] == treatment]
    counts = {
        "control": control,
        "treatment": treatment,
        "control_impressions": len(a),
        "treatment_impressions": len(b),
        "control_users": int(a["user"].nunique()),
        "treatment_users": int(b["user"].nunique()),
        "control_ctr": float(a["clicked"].mean()) if len(a) else None,
        "treatment_ctr": float(b["clicked"].mean()) if len(b) else None,
    }
    if min(len(a), len(b)) < min_impressions or min(len(set(a["user"])), len(set(b["user"]))) < 2:
        return Comparison(
            **counts, difference=None, low=None, high=None, p_value=None,
            verdict="too small to decide",
        )  # fmt: skip
    rng = np.random.default_rng(seed)
    diffs = _resampled_ctr(*_per_user(b), resamples, rng) - _resampled_ctr(
        *_per_user(a), resamples, rng
    )
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, 2 * min(float((diffs <= 0).mean()), float((diffs >= 0).mean())))
    difference = float(b["clicked"].mean() - a["clicked"].mean())
    verdict = "no difference found" if p >= alpha else "better" if difference > 0 else "worse"
    return Comparison(
        **counts, difference=difference, low=float(low), high=float(high), p_value=p,
        verdict=verdict,
    )  # fmt: skip


__all__ = ["ALPHA", "MIN_IMPRESSIONS", "RESAMPLES", "Comparison", "compare"]

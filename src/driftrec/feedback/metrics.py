"""Online metrics from what was shown and what users did with it (docs/feedback.md, "Online
metrics").

For each group (a variant, a model version, a slot, or everything) and clock window:
- **CTR**: impressions with a positive outcome (any outcome event of the same request and item
  but a dismissal) over impressions; an impression counts once however many outcomes it has;
- **conversion**: impressions with a purchase over impressions;
- **NDCG on clicks**: per request with at least one click, the DCG of its clicked slots over the
  DCG of that many clicks in the top slots, averaged over those requests (a request without a
  click has no ranking to judge; CTR already counts it);
- impressions without an outcome, dismissals, and what could not be linked: impressions whose
  request has no served list (grouped as "(unlinked)") and outcomes that name a request but match
  no impression. Nothing is dropped: every stored impression and outcome lands in one count.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from driftrec.errors import InputError

GROUPINGS = ("all", "variant", "model_version", "slot")
UNLINKED = "(unlinked)"  # the group of impressions whose request has no served list


def _dcg(slots: np.ndarray) -> float:
    return float((1.0 / np.log2(np.asarray(slots, np.float64) + 2)).sum())


def ndcg_on_clicks(impressions: pd.DataFrame) -> float | None:
    """Mean over requests with a click of DCG(clicked slots) / DCG(best slots for that many
    clicks); None without a clicked request."""
    clicked = impressions[impressions["clicked"]]
    if clicked.empty:
        return None
    scores = []
    for _, slots in clicked.groupby("request_id")["slot"]:
        ideal = _dcg(np.arange(len(slots)))
        scores.append(_dcg(slots.to_numpy()) / ideal)
    return float(np.mean(scores))


def _key(frame: pd.DataFrame, by: str) -> pd.Series:
    if by == "all":
        return pd.Series("all", index=frame.index, dtype=object)
    if by == "slot":
        return frame["slot"].astype(object)
    return frame[by].astype(object).where(frame[by].notna(), UNLINKED)


def online_metrics(
    impressions: pd.DataFrame,
    unlinked: pd.DataFrame,
    by: str = "all",
    window: int | None = None,
) -> dict[str, Any]:
    """The figures per group (``by``: one of `GROUPINGS`) and, with ``window`` seconds, per
    clock window of event time. ``impressions`` and ``unlinked`` are `FeedbackLog`'s
    `impression_rows` and `unlinked_outcomes`."""
    if by not in GROUPINGS:
        raise InputError(f"by: one of {', '.join(GROUPINGS)}, not {by!r}")
    shown = impressions.assign(group=_key(impressions, by))
    orphans = unlinked.assign(
        group=_key(unlinked, by) if by != "slot" else pd.Series(UNLINKED, index=unlinked.index)
    )
    for frame in (shown, orphans):
        frame["window"] = (frame["timestamp"].astype(np.int64) // window) * window if window else 0
    keys = sorted(
        set(zip(shown["group"], shown["window"], strict=True))
        | set(zip(orphans["group"], orphans["window"], strict=True)),
        key=lambda k: (k[1], str(k[0])),
    )
    groups = []
    for group, start in keys:
        mine = shown[(shown["group"] == group) & (shown["window"] == start)]
        lost = orphans[(orphans["group"] == group) & (orphans["window"] == start)]
        n = len(mine)
        clicks = int(mine["clicked"].sum())
        conversions = int(mine["converted"].sum())
        groups.append(
            {
                "group": str(group),
                "window_start": int(start) if window else None,
                "impressions": n,
                "requests": int(mine["request_id"].nunique()),
                "users": int(mine["user"].nunique()),
                "clicks": clicks,
                "ctr": clicks / n if n else None,
                "conversions": conversions,
                "conversion_rate": conversions / n if n else None,
                "ndcg_on_clicks": None if by == "slot" else ndcg_on_clicks(mine),
                "dismissals": int(mine["dismissed"].sum()),
                "no_outcome": int((~mine["clicked"] & ~mine["dismissed"]).sum()),
                "unlinked_outcomes": len(lost),
            }
        )
    return {
        "by": by,
        "window_seconds": window,
        "groups": groups,
        "impressions": len(impressions),
        "unlinked_impressions": int(impressions["variant"].isna().sum()),
        "unlinked_outcomes": len(unlinked),
    }


__all__ = ["GROUPINGS", "UNLINKED", "ndcg_on_clicks", "online_metrics"]

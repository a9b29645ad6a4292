"""The feedback loop's routes: POST /feedback/impressions (what a client showed of an answer)
and GET /metrics/online (CTR, conversion, NDCG on clicks per variant, model version, slot or
window, with A/B comparisons). Outcomes (clicks, purchases, dismissals) are events: POST
/events with the answer's ``request_id``."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query

from driftrec.data.fields import TIMESTAMP_RANGE
from driftrec.errors import InputError
from driftrec.feedback import compare, online_metrics
from driftrec.params import duration_seconds
from driftrec.serving.deps import KeyDep, ServiceDep
from driftrec.serving.errors import problem, refused
from driftrec.serving.schemas import (
    ComparisonOut,
    ImpressionsIn,
    ImpressionsOut,
    OnlineMetricsOut,
)
from driftrec.store import Impression

router = APIRouter(tags=["feedback"], dependencies=[KeyDep])
LONGEST_WINDOW = 100 * 365 * 86_400  # seconds: longer windows are one window anyway


@router.post("/feedback/impressions")
async def post_impressions(body: ImpressionsIn, service: ServiceDep) -> ImpressionsOut:
    """Store what the client showed of the answer ``request_id``, slot 0 first, durably
    before the response. A request_id the service never served is stored too, and counted
    as unlinked in the online metrics."""
    limits = service.settings
    if len(body.items) > limits.max_k:
        raise refused(
            422, ["body", "items"], f"at most {limits.max_k:,} items (--max-k)", "too_many"
        )
    repeated = [
        problem(["body", "items", n], f"item {item!r} shown twice in one answer", "repeated")
        for n, item in enumerate(body.items)
        if item in body.items[:n]
    ]
    if repeated:
        raise HTTPException(422, repeated)
    key = service.user_key(body.user)
    now = body.timestamp if body.timestamp is not None else int(time.time())
    shown = [
        Impression(body.request_id, key, item, slot, now) for slot, item in enumerate(body.items)
    ]
    new = await asyncio.wrap_future(service.submit_impressions(shown))
    return ImpressionsOut(accepted=sum(new), duplicates=len(new) - sum(new))


@router.get("/metrics/online")
def online(
    service: ServiceDep,
    by: Annotated[
        Literal["all", "variant", "model_version", "slot"],
        Query(description="group the figures by this"),
    ] = "all",
    window: Annotated[
        str | None, Query(description="clock windows of event time, e.g. 1h, 1d; default: none")
    ] = None,
    since: Annotated[
        int | None,
        Query(ge=TIMESTAMP_RANGE[0], le=TIMESTAMP_RANGE[1], description="from this Unix time on"),
    ] = None,
    until: Annotated[
        int | None,
        Query(ge=TIMESTAMP_RANGE[0], le=TIMESTAMP_RANGE[1], description="before this Unix time"),
    ] = None,
) -> OnlineMetricsOut:
    """Online metrics from the stored impressions and outcomes (docs/feedback.md): per group,
    impressions, CTR, conversion, NDCG on clicks, dismissals, impressions without outcomes
    and outcomes that match no impression. With ``by=variant``, each variant is compared with
    the first by a bootstrap over users, or called too small to decide."""
    try:
        seconds = duration_seconds(window, "window") if window is not None else None
    except InputError as err:
        raise refused(422, ["query", "window"], str(err), "bad_window") from None
    if seconds is not None and seconds > LONGEST_WINDOW:
        raise refused(422, ["query", "window"], "window: at most 100 years", "too_large")
    service.flush_served()  # every answer given so far is linkable
    feedback = service.store.feedback
    shown = feedback.impression_rows(since, until)
    result = online_metrics(shown, feedback.unlinked_outcomes(since, until), by, seconds)
    comparisons = []
    if by == "variant":
        control = service.arms[0].name
        comparisons = [
            ComparisonOut(**compare(shown, control, arm.name).to_dict()) for arm in service.arms[1:]
        ]
    return OnlineMetricsOut(**result, comparisons=comparisons)

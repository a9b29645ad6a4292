"""GET /overview: the service's live figures for the dashboard (events per minute, active users,
latency, the model); open like /health, since it names no user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from driftrec.serving.activity import ACTIVE_MINUTES, MINUTES
from driftrec.serving.deps import ServiceDep
from driftrec.serving.schemas import OverviewOut

router = APIRouter(tags=["overview"])


@router.get("/overview")
async def overview(
    service: ServiceDep,
    minutes: Annotated[
        int, Query(ge=1, le=MINUTES, description="how many recent clock minutes to list")
    ] = 30,
) -> OverviewOut:
    """Aggregate figures of the last minutes. Async: the per-minute counters are touched only
    on the event loop's thread, so reading them there needs no lock."""
    engine = service.tracker.engine
    return OverviewOut(
        **service.metrics.activity.summary(minutes),
        active_window_seconds=ACTIVE_MINUTES * 60,
        live_users=len(service.tracker.live),
        model=engine.model.name,
        model_version=engine.version,
        items=engine.model.n_items,
        store=service.store.engine.dialect.name,
        event_types=list(engine.model.event_types_),
    )

"""POST /events: one event or a batch, durable and applied before the response."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, HTTPException, Query

from driftrec.data.events import Event
from driftrec.serving.deps import KeyDep, ServiceDep
from driftrec.serving.errors import problem, refused, too_long
from driftrec.serving.schemas import EventBatch, EventsIn, EventsOut, Rejected
from driftrec.store import StoredEvent
from driftrec.tracking.tracker import Rejection

router = APIRouter(tags=["events"])


@router.post("/events", dependencies=[KeyDep])
async def post_events(
    body: EventsIn,
    service: ServiceDep,
    atomic: bool = Query(False, description="refuse the whole batch if any event is rejected"),
) -> EventsOut:
    """Store and apply events: the user's next request already reflects them. Events the
    service cannot take (unknown item or event type) are listed with their index and reason;
    the others are stored in one transaction (with ``atomic``, any rejection refuses all).

    Async: the checks are dictionary look-ups, and the write is awaited from the store's
    writer thread, so a request never takes a pool thread of its own."""
    limits = service.settings
    events = body.events if isinstance(body, EventBatch) else [body]
    prefix = ["body", "events"] if isinstance(body, EventBatch) else ["body"]

    def at(n: int, field: str) -> list[object]:
        """Where event ``n``'s ``field`` is in the request."""
        return [*prefix, n, field] if isinstance(body, EventBatch) else ["body", field]

    if len(events) > limits.max_batch:
        raise refused(
            422,
            prefix,
            f"at most {limits.max_batch:,} events per request (--max-batch)",
            "too_many",
        )
    long_texts = [
        too_long(at(n, "text"), limits.max_text)
        for n, e in enumerate(events)
        if e.text is not None and len(e.text) > limits.max_text
    ]
    if long_texts:
        raise HTTPException(422, long_texts)
    now = int(time.time())
    stored = [
        StoredEvent(
            service.user_key(e.user),
            Event(
                e.item, e.timestamp if e.timestamp is not None else now, e.event, e.value, e.text
            ),
            e.event_id,
            e.request_id,
        )
        for e in events
    ]
    # each user's events go to the variant that serves them (one, without A/B variants)
    by_arm: dict[int, list[int]] = {}
    arms = service.arms
    for n, s in enumerate(stored):
        by_arm.setdefault(service.arm_index(s.user), []).append(n)
    rejected = sorted(
        (
            Rejection(rows[r.index], r.field, r.reason)
            for arm, rows in by_arm.items()
            for r in arms[arm].tracker.check([stored[n] for n in rows])
        ),
        key=lambda r: r.index,
    )
    if rejected and atomic:
        raise HTTPException(
            422, [problem(at(r.index, r.field), r.reason, "rejected") for r in rejected]
        )
    rejected_at = {r.index for r in rejected}
    kept_rows = {arm: [n for n in rows if n not in rejected_at] for arm, rows in by_arm.items()}
    answers = await asyncio.gather(
        *(
            asyncio.wrap_future(arms[arm].tracker.submit([stored[n] for n in rows]))
            for arm, rows in kept_rows.items()
        )
    )
    fresh_at = {
        n: fresh
        for rows, answer in zip(kept_rows.values(), answers, strict=True)
        for n, fresh in zip(rows, answer, strict=True)
    }
    kept = [stored[n] for n in sorted(fresh_at)]
    new = [fresh_at[n] for n in sorted(fresh_at)]
    service.exposure.engaged([s for s, fresh in zip(kept, new, strict=True) if fresh])
    accepted = sum(new)
    service.metrics.activity.events(
        accepted, (s.user for s, fresh in zip(kept, new, strict=True) if fresh)
    )
    service.metrics.count_events("accepted", accepted)
    service.metrics.count_events("duplicate", len(new) - accepted)
    service.metrics.count_events("rejected", len(rejected))
    return EventsOut(
        accepted=accepted,
        duplicates=len(new) - accepted,
        rejected=[Rejected(index=r.index, field=r.field, reason=r.reason) for r in rejected],
        model_version=service.tracker.engine.version,
    )

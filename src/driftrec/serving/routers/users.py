"""The users resource: finding users by id prefix, per-user reads (recommendations, interests,
timeline, why) and erasure."""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import AfterValidator

from driftrec.errors import InputError, UnknownIdError
from driftrec.serving.deps import ItemPath, KeyDep, ServiceDep, UserPath
from driftrec.serving.errors import refused, too_long
from driftrec.serving.schemas import (
    ErasedOut,
    InterestsOut,
    RecommendationsOut,
    RecommendedItem,
    TimelineOut,
    UserMatch,
    UsersOut,
    WhyOut,
    check_text,
)
from driftrec.store import Served

router = APIRouter(prefix="/users", tags=["users"], dependencies=[KeyDep])


@router.get("")
def find_users(
    service: ServiceDep,
    q: Annotated[
        str,
        Query(max_length=256, description="the start of the user id (empty: every user)"),
        AfterValidator(check_text),
    ] = "",
    limit: Annotated[int, Query(ge=1, le=100, description="at most this many users")] = 20,
) -> UsersOut:
    """Users whose id starts with ``q``, from the event store and the served model's training
    users, in id order. Needs the API key once one is set: it lists user ids. With
    pseudonymised ids (``--secret-env``) ``q`` is matched as a whole id."""
    return UsersOut(
        query=q,
        users=[UserMatch(**match) for match in service.find_users(q, limit)],
        pseudonymised=service.settings.secret is not None,
    )


@router.get("/{user}/recommendations")
def recommendations(
    user: UserPath,
    service: ServiceDep,
    k: Annotated[int, Query(ge=1, description="how many items (at most --max-k)")] = 10,
    exclude_seen: bool = True,
    diversify: Annotated[
        float, Query(ge=0, le=1, description="0: by score; towards 1: more varied (MMR)")
    ] = 0.0,
    text: Annotated[
        str | None, Query(min_length=1, description="a free-text interest to mix in")
    ] = None,
    text_weight: Annotated[float, Query(ge=0, le=1)] = 0.5,
) -> RecommendationsOut:
    """The user's top k now: every event they posted counts. A user with no events gets
    what their searches describe, else popular recent items. The answer's ``request_id``
    links the impressions and clicks a client reports back to it (docs/feedback.md)."""
    limits = service.settings
    if k > limits.max_k:
        raise refused(422, ["query", "k"], f"k is at most {limits.max_k:,} (--max-k)", "too_large")
    if text is not None and len(text) > limits.max_text:
        raise HTTPException(422, [too_long(["query", "text"], limits.max_text)])
    key = service.user_key(user)
    arm = service.arm(key)
    try:
        answer = arm.tracker.recommend(key, k, exclude_seen, diversify, text, text_weight)
    except InputError as err:  # text given to a model that does not read text
        raise refused(422, ["query", "text"], str(err), "unsupported") from None
    start = time.perf_counter()
    catalog = arm.tracker.catalog
    explored = set(answer.explored)
    items = []
    for slot, (item, score) in enumerate(zip(answer.items, answer.scores, strict=True)):
        known = catalog.get(item)
        items.append(
            RecommendedItem(
                item=item,
                score=score,
                title=known.title,
                categories=list(known.categories),
                exploration=slot in explored,
            )
        )
    request_id = uuid.uuid4().hex
    service.log_served(
        Served(request_id, key, arm.name, answer.version, tuple(answer.items), int(time.time()))
    )
    out = RecommendationsOut(
        user=user,
        items=items,
        source=answer.source,
        model_version=answer.version,
        request_id=request_id,
        variant=arm.name,
    )
    service.metrics.stage("serialise", time.perf_counter() - start)
    return out


@router.get("/{user}/interests")
def interests(
    user: UserPath,
    service: ServiceDep,
    top: Annotated[int, Query(ge=1, le=100, description="topics listed per profile")] = 10,
) -> InterestsOut:
    """Long- and short-term interest shares over topics, the drift score between them, and
    the recent events that weigh most in the current recommendations."""
    key = service.user_key(user)
    result = service.arm(key).tracker.interests(key, top)
    return InterestsOut(**{**result, "user": user})


@router.get("/{user}/timeline")
def timeline(
    user: UserPath,
    service: ServiceDep,
    points: Annotated[int, Query(ge=2, le=1000, description="at most this many points")] = 100,
    top: Annotated[int, Query(ge=1, le=50, description="topics followed")] = 8,
) -> TimelineOut:
    """How the user's interest moved: short- and long-term shares of their main topics, the
    drift score and the detector's evidence over their events, and where it raised alarms."""
    key = service.user_key(user)
    return TimelineOut(**{**service.arm(key).tracker.timeline(key, points, top), "user": user})


@router.get("/{user}/recommendations/{item}/why")
def why(
    user: UserPath,
    item: ItemPath,
    service: ServiceDep,
) -> WhyOut:
    """Which of the user's recent events raise (or lower) the item's score, and by how much."""
    try:
        key = service.user_key(user)
        result = service.arm(key).tracker.why(key, item)
    except UnknownIdError:
        raise refused(404, ["path", "item"], f"unknown item {item!r}", "not_found") from None
    return WhyOut(**{**result, "user": user})


@router.delete("/{user}")
def erase(user: UserPath, service: ServiceDep) -> ErasedOut:
    """Erase the user everywhere: stored events, live state, and their training history and
    factors in the served model directory. Their next answers are cold-start ones."""
    erased = service.forget(service.user_key(user))
    note = (
        "the training dataset the model was built from is not touched: re-import it without"
        " this user before retraining"
        if erased["training_history"]
        else "nothing of this user remains in the service"
    )
    return ErasedOut(user=user, note=note, **erased)

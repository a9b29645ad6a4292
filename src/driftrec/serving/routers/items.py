"""PUT /items: add or update catalog items; text-reading models can recommend a new item on the
next request."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from driftrec.serving.deps import ItemPath, KeyDep, ServiceDep
from driftrec.serving.errors import problem, too_long
from driftrec.serving.schemas import ItemBatch, ItemIn, ItemsOut, ItemWithId
from driftrec.store import CatalogItem

router = APIRouter(prefix="/items", tags=["items"], dependencies=[KeyDep])


@router.put("/{item}")
def put_item(
    item: ItemPath,
    body: ItemIn,
    service: ServiceDep,
) -> ItemsOut:
    """Add or update one item."""
    return _put(service, [ItemWithId(item=item, **body.model_dump())], ["body"])


@router.put("")
def put_items(body: ItemBatch, service: ServiceDep) -> ItemsOut:
    """Add or update a batch of items (ids must not repeat)."""
    return _put(service, body.items, ["body", "items"])


def _put(service: ServiceDep, items: list[ItemWithId], prefix: list[object]) -> ItemsOut:
    limits = service.settings
    errors: list[dict[str, object]] = []
    if len(items) > limits.max_batch:
        errors.append(
            problem(
                prefix, f"at most {limits.max_batch:,} items per request (--max-batch)", "too_many"
            )
        )
    seen: set[str] = set()
    for n, i in enumerate(items):
        where = [*prefix, n] if len(prefix) > 1 else prefix
        if i.item in seen:
            errors.append(problem([*where, "item"], f"item {i.item!r} repeated", "repeated"))
        seen.add(i.item)
        for name in ("title", "text"):
            if len(getattr(i, name)) > limits.max_text:
                errors.append(too_long([*where, name], limits.max_text))
    if errors:
        raise HTTPException(422, errors)
    result = service.add_items(
        [CatalogItem(i.item, i.title, i.text, tuple(i.categories)) for i in items]
    )
    return ItemsOut(**result, model_version=service.tracker.engine.version)

"""GET /health and GET /metrics (Prometheus text format): open, no user data in either."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from driftrec.serving.deps import ServiceDep
from driftrec.serving.schemas import HealthOut, VariantOut

router = APIRouter(tags=["health"])


@router.get("/health")
def health(service: ServiceDep) -> HealthOut:
    engine = service.tracker.engine
    index = "none" if engine.index is None else "exact" if engine.exact else "approximate"
    return HealthOut(
        status="ok",
        model=engine.model.name,
        model_version=engine.version,
        items=engine.model.n_items,
        index=index,
        store=service.store.engine.dialect.name,
        state="process" if service.shared is None else "redis",
        variants=[
            VariantOut(
                name=arm.name,
                share=arm.share,
                model=arm.tracker.engine.model.name,
                model_version=arm.tracker.engine.version,
            )
            for arm in service.arms
        ],
    )


@router.get("/metrics", response_class=Response)
def metrics(service: ServiceDep) -> Response:
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

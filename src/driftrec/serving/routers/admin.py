"""POST /admin/reload: swap in a newly trained model directory without stopping the service."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from driftrec.errors import InputError
from driftrec.serving.deps import KeyDep, ServiceDep
from driftrec.serving.errors import refused
from driftrec.serving.schemas import ReloadIn, ReloadOut

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[KeyDep])


@router.post("/reload")
def reload(body: ReloadIn, service: ServiceDep) -> ReloadOut:
    """Load the model directory (default: the one served, e.g. retrained in place or by
    `driftrec train --from`) and serve it from the next request on, in ``variant`` (default:
    the first); requests in flight finish on the old one. SIGHUP does the same for the first."""
    arms = {arm.name: arm for arm in service.arms}
    if body.variant is not None and body.variant not in arms:
        raise refused(
            422,
            ["body", "variant"],
            f"unknown variant {body.variant!r}; served: {', '.join(arms)}",
            "not_found",
        )
    try:
        previous, version = service.reload(
            Path(body.model_dir) if body.model_dir else None, body.variant
        )
    except (InputError, OSError) as err:  # not a model directory: the old model keeps serving
        raise refused(422, ["body", "model_dir"], str(err), "bad_model") from None
    arm = arms[body.variant] if body.variant is not None else service.arms[0]
    return ReloadOut(
        model=arm.tracker.engine.model.name, model_version=version, previous_version=previous
    )

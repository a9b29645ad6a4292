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
    """Load the model directory (default: the one served, e.g. retrained in place) and serve it
    from the next request on; requests in flight finish on the old one. SIGHUP does the same."""
    try:
        previous, version = service.reload(Path(body.model_dir) if body.model_dir else None)
    except (InputError, OSError) as err:  # not a model directory: the old model keeps serving
        raise refused(422, ["body", "model_dir"], str(err), "bad_model") from None
    return ReloadOut(
        model=service.tracker.engine.model.name, model_version=version, previous_version=previous
    )

"""Dependencies the routers declare: the service, the API key check, the user's store id."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Path, Request
from pydantic import AfterValidator

from driftrec.serving.errors import refused
from driftrec.serving.schemas import check_id
from driftrec.serving.service import Service
from driftrec.serving.settings import API_KEY_ENV


async def get_service(request: Request) -> Service:
    """Async, as is `require_key`: FastAPI runs a plain function dependency on its thread
    pool, a hop per dependency per request for work that never blocks."""
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]


async def require_key(
    service: ServiceDep,
    x_api_key: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    """Once an API key is configured, writes and per-user reads need it (``X-API-Key`` or
    ``Authorization: Bearer``), compared in constant time and never logged."""
    expected = service.settings.api_key
    if expected is None:
        return
    given = x_api_key
    if given is None and authorization and authorization.lower().startswith("bearer "):
        given = authorization[7:]
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise refused(
            401,
            ["header", "x-api-key"],
            f"a valid API key is required ({API_KEY_ENV})",
            "unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )


KeyDep = Depends(require_key)

UserPath = Annotated[
    str, Path(min_length=1, max_length=256, description="the user's id"), AfterValidator(check_id)
]
ItemPath = Annotated[
    str, Path(min_length=1, max_length=256, description="the item's id"), AfterValidator(check_id)
]


__all__ = ["ItemPath", "KeyDep", "ServiceDep", "UserPath", "get_service", "require_key"]

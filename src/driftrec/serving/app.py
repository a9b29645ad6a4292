"""The app factory: `create_app(settings)` builds the FastAPI application; its lifespan opens the
service (store, model, catalog) and closes it; SIGHUP reloads the model directory.

Errors follow one shape, ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``: a request
the service cannot take is a 4xx naming the field or limit; anything else is a 500 that says
"internal error" (the traceback goes to the log, never to the client).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from driftrec import __version__
from driftrec.errors import InputError
from driftrec.serving.errors import problem
from driftrec.serving.limits import BodyLimit
from driftrec.serving.metrics import RequestMetrics
from driftrec.serving.routers import (
    admin,
    dashboard,
    events,
    feedback,
    health,
    items,
    overview,
    users,
)
from driftrec.serving.service import Service
from driftrec.serving.settings import Settings

log = logging.getLogger("driftrec.serving")


def create_app(settings: Settings, service: Service | None = None) -> FastAPI:
    """The application; it opens a `Service` for ``settings`` on start-up unless given one
    already open (the CLI opens it first, so a bad model or database is a one-line error)."""
    service_box: dict[str, Service] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal service
        if service is None:
            service = await asyncio.to_thread(Service, settings)
        app.state.service = service
        service_box["service"] = service
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # no signals
            loop.add_signal_handler(
                signal.SIGHUP, lambda: loop.run_in_executor(None, _reload_logged, service)
            )
        yield
        service.close()

    app = FastAPI(
        title="driftrec",
        version=__version__,
        description="Recommendations that follow each user's drifting interests, live.",
        lifespan=lifespan,
    )
    for router in (
        events.router,
        feedback.router,
        users.router,
        items.router,
        health.router,
        overview.router,
        admin.router,
        dashboard.router,
    ):
        app.include_router(router)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        detail = [
            problem(list(e.get("loc", ())), e.get("msg", ""), e.get("type", ""))
            for e in err.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        detail = err.detail
        if not isinstance(detail, list):  # Starlette's own: a body it cannot parse, a 404
            where = {400: "body", 404: "path", 405: "method"}.get(err.status_code, "request")
            detail = [problem([where], str(detail), "http_error")]
        return JSONResponse({"detail": detail}, status_code=err.status_code, headers=err.headers)

    @app.exception_handler(InputError)
    async def bad_input(_: Request, err: InputError) -> JSONResponse:
        return JSONResponse(
            {"detail": [problem(["request"], str(err), "bad_input")]},
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def internal(request: Request, err: Exception) -> JSONResponse:
        log.error(
            "internal error on %s %s", request.method, request.scope.get("route"), exc_info=err
        )
        return JSONResponse({"detail": "internal error"}, status_code=500)

    # the outermost middleware runs first: count every request, then refuse oversized bodies
    app.add_middleware(BodyLimit, limit=settings.max_body)
    metrics_holder = _LazyMetrics(service_box)
    app.add_middleware(RequestMetrics, metrics=metrics_holder)
    return app


class _LazyMetrics:
    """The service's metrics, which exist once the lifespan has opened the service."""

    def __init__(self, box: dict[str, Service]) -> None:
        self._box = box

    def __getattr__(self, name: str) -> object:
        return getattr(self._box["service"].metrics, name)


def _reload_logged(service: Service) -> None:
    try:
        previous, version = service.reload()
        log.warning("SIGHUP: model %s replaced %s", version, previous)
    except Exception:
        log.exception("SIGHUP: reload failed; the previous model keeps serving")


__all__ = ["create_app"]

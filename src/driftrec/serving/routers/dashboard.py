"""GET /: the dashboard, a single page that calls this service's own JSON API from the browser
(with the API key the user types in), and its static files, plotly.js included, served from the
installed packages: the page needs no network beyond this service. The page and its assets hold
no user data, so they are open; every call the page makes checks the key as any client's does."""

from __future__ import annotations

import functools
import gzip
import hashlib
from dataclasses import dataclass
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Header, Path, Response

from driftrec.serving.errors import refused

router = APIRouter(tags=["dashboard"], include_in_schema=False)

# the page runs only its own scripts and calls only this origin; plotly sets inline styles
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
MEDIA = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    zipped: bytes  # gzip of body: plotly.js is 4.6 MB, 1.4 MB compressed
    media_type: str
    etag: str
    cache: str  # Cache-Control


@functools.cache
def asset(name: str) -> Asset | None:
    """A static file by name, read and compressed once; None for a name not served."""
    if name == "plotly.min.js":
        body = (files("plotly") / "package_data" / "plotly.min.js").read_bytes()
        cache = "public, max-age=86400"  # changes only with the plotly package
    elif name in ("dashboard.html", "dashboard.js", "dashboard.css"):
        body = (files("driftrec.serving") / "static" / name).read_bytes()
        cache = "no-cache"  # revalidated (ETag), so an upgraded service shows its new page
    else:
        return None
    return Asset(
        body,
        gzip.compress(body, 6),
        MEDIA[name[name.rindex(".") :]],
        f'"{hashlib.sha256(body).hexdigest()[:16]}"',
        cache,
    )


def _send(found: Asset, if_none_match: str | None, accept_encoding: str | None) -> Response:
    headers = {
        "ETag": found.etag,
        "Cache-Control": found.cache,
        "X-Content-Type-Options": "nosniff",
        "Vary": "Accept-Encoding",
    }
    if found.media_type.startswith("text/html"):
        headers |= {"Content-Security-Policy": POLICY, "Referrer-Policy": "no-referrer"}
    if if_none_match == found.etag:
        return Response(status_code=304, headers=headers)
    if accept_encoding and "gzip" in accept_encoding:
        headers["Content-Encoding"] = "gzip"
        return Response(found.zipped, media_type=found.media_type, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)


@router.get("/")
async def page(
    if_none_match: Annotated[str | None, Header()] = None,
    accept_encoding: Annotated[str | None, Header()] = None,
) -> Response:
    """The dashboard page."""
    found = asset("dashboard.html")
    assert found is not None
    return _send(found, if_none_match, accept_encoding)


@router.get("/static/{name}")
async def static(
    name: Annotated[str, Path(max_length=64)],
    if_none_match: Annotated[str | None, Header()] = None,
    accept_encoding: Annotated[str | None, Header()] = None,
) -> Response:
    """The page's script and style sheet, and plotly.js from the installed plotly package."""
    found = asset(name)
    if found is None:
        raise refused(404, ["path", "name"], f"no static file {name!r}", "not_found")
    return _send(found, if_none_match, accept_encoding)

"""The request body limit, enforced before a large body is read into memory (413 naming it)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException

from driftrec.serving.errors import problem


def too_large(limit: int) -> list[dict[str, object]]:
    return [
        problem(
            ["body"],
            f"request body over the limit of {limit:,} bytes (--max-body)",
            "body_too_large",
        )
    ]


class BodyLimit:
    """ASGI middleware: a declared Content-Length over ``limit`` is refused at once; a body
    that streams past it is refused as it arrives."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            body = json.dumps({"detail": too_large(self.limit)}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        received = 0

        async def limited() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, too_large(self.limit))
            return message

        await self.app(scope, limited, send)


__all__ = ["BodyLimit"]

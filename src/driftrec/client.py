"""A small Python client of `driftrec serve` (httpx): what the tests, the benchmarks and the docs
use, and a starting point for applications.

    with Client("http://127.0.0.1:8000") as client:
        client.post_events({"user": "alice", "item": "i0042", "event": "click"})
        client.recommend("alice", k=10)["items"]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx


class ServiceError(Exception):
    """A 4xx or 5xx answer: ``status`` and the service's ``detail`` (which names the field)."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"{status}: {detail}")
        self.status, self.detail = status, detail


class Client:
    """One connection pool to a driftrec service; ``api_key`` is sent as ``X-API-Key``."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text
            raise ServiceError(response.status_code, detail)
        return (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else response.text
        )

    def post_events(
        self, events: dict[str, Any] | Sequence[dict[str, Any]], atomic: bool = False
    ) -> dict[str, Any]:
        """Post one event (a dict) or a batch (a list of dicts); see the API docs for fields."""
        body = {"events": list(events)} if not isinstance(events, dict) else events
        return self._send("POST", "/events", json=body, params={"atomic": atomic})

    def recommend(
        self,
        user: str,
        k: int = 10,
        exclude_seen: bool = True,
        diversify: float = 0.0,
        text: str | None = None,
        text_weight: float = 0.5,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "k": k,
            "exclude_seen": exclude_seen,
            "diversify": diversify,
            "text_weight": text_weight,
        }
        if text is not None:
            params["text"] = text
        return self._send("GET", f"/users/{_quote(user)}/recommendations", params=params)

    def post_impressions(
        self, request_id: str, user: str, items: Sequence[str], timestamp: int | None = None
    ) -> dict[str, Any]:
        """Report what was shown of the answer ``request_id`` (items in slot order)."""
        body: dict[str, Any] = {"request_id": request_id, "user": user, "items": list(items)}
        if timestamp is not None:
            body["timestamp"] = timestamp
        return self._send("POST", "/feedback/impressions", json=body)

    def online_metrics(
        self,
        by: str = "all",
        window: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> dict[str, Any]:
        """CTR, conversion, NDCG on clicks per group (all, variant, model_version, slot)."""
        params: dict[str, Any] = {"by": by}
        for name, value in (("window", window), ("since", since), ("until", until)):
            if value is not None:
                params[name] = value
        return self._send("GET", "/metrics/online", params=params)

    def interests(self, user: str, top: int = 10) -> dict[str, Any]:
        return self._send("GET", f"/users/{_quote(user)}/interests", params={"top": top})

    def timeline(self, user: str, points: int = 100, top: int = 8) -> dict[str, Any]:
        return self._send(
            "GET", f"/users/{_quote(user)}/timeline", params={"points": points, "top": top}
        )

    def why(self, user: str, item: str) -> dict[str, Any]:
        return self._send("GET", f"/users/{_quote(user)}/recommendations/{_quote(item)}/why")

    def users(self, q: str = "", limit: int = 20) -> dict[str, Any]:
        """Users whose id starts with ``q`` (the store's and the model's training users)."""
        return self._send("GET", "/users", params={"q": q, "limit": limit})

    def put_items(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Add or update items: dicts with ``item`` and optionally title, text, categories."""
        return self._send("PUT", "/items", json={"items": list(items)})

    def delete_user(self, user: str) -> dict[str, Any]:
        return self._send("DELETE", f"/users/{_quote(user)}")

    def reload(self, model_dir: str | None = None, variant: str | None = None) -> dict[str, Any]:
        return self._send(
            "POST", "/admin/reload", json={"model_dir": model_dir, "variant": variant}
        )

    def health(self) -> dict[str, Any]:
        return self._send("GET", "/health")

    def overview(self, minutes: int = 30) -> dict[str, Any]:
        """Live figures: events per minute, active users, latency, the model."""
        return self._send("GET", "/overview", params={"minutes": minutes})

    def metrics(self) -> str:
        return self._send("GET", "/metrics")


def _quote(part: str) -> str:
    """A path segment: a user id may hold "/" or "?", which must not change the route."""
    return quote(part, safe="")


__all__ = ["Client", "ServiceError"]

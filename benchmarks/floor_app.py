"""The framework floor for benchmarks/serve_latency.py: the same stack (FastAPI, pydantic,
uvicorn with uvloop and httptools, sync endpoints on the thread pool) doing no work, so the
service's figures can be read against what the stack alone costs on the same machine."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class EventIn(BaseModel):
    user: str
    item: str | None = None
    timestamp: int | None = None
    event: str = "interaction"
    value: float = 1.0


class Item(BaseModel):
    item: str
    score: float


ANSWER = [Item(item=f"i{i}", score=1.0 / (i + 1)) for i in range(10)]


@app.post("/events")
def post_event(body: EventIn) -> dict[str, int]:
    return {"accepted": 1}


@app.get("/users/{user}/recommendations")
def recommendations(user: str, k: int = 10) -> dict[str, object]:
    return {"user": user, "items": ANSWER[:k]}

"""Changes every replica of the service applies to what it holds in memory: catalog items
added or updated (a text model's catalog and index grow) and users erased (a model's training
histories and user factors shrink). A Redis stream (``{prefix}:changes``), read by every
replica (no consumer group: each applies all of them), milliseconds after they are made.

A replica that was down misses none that matter: it loads the catalog's added items from the
store and forgets every user the store's erasure log names when it loads a model.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

APPLY_ATTEMPTS = 5  # a change that fails this often is skipped (logged), never retried forever


@dataclass(frozen=True)
class Change:
    """``kind`` "items" (catalog items ``items`` were added or updated: read them from the
    store) or "erase" (``user`` was erased), made by the replica ``origin``."""

    kind: str
    user: str | None = None
    origin: str = ""
    items: tuple[str, ...] = ()


class Changes:
    """The change stream of one deployment (``prefix``), keeping the newest ``keep``."""

    def __init__(self, client: redis.Redis, prefix: str = "driftrec", keep: int = 100_000) -> None:
        self.redis, self.key, self.keep = client, f"{prefix}:changes", keep
        self.origin = secrets.token_hex(8)  # this replica: it skips its own changes
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # follow from now: changes made while this replica loads its models are applied after
        # (applying one twice does no harm)
        exists = bool(client.exists(self.key))
        self._start = client.xinfo_stream(self.key)["last-generated-id"] if exists else "0"

    def publish(self, kind: str, user: str | None = None, items: Sequence[str] = ()) -> None:
        """Tell the other replicas of a change this one made."""
        fields = {"kind": kind, "origin": self.origin, "items": json.dumps(list(items))}
        if user is not None:
            fields["user"] = user
        self.redis.xadd(self.key, fields, maxlen=self.keep, approximate=True)

    def follow(
        self, apply: Callable[[Change], None], on_error: Callable[[Exception], None]
    ) -> None:
        """Apply the other replicas' changes in order, on a thread: a failed one is tried
        again (with a pause) up to `APPLY_ATTEMPTS` times before it is skipped."""

        def run() -> None:
            last, failures = self._start, 0
            while not self._stop.is_set():
                try:
                    for _, entries in self.redis.xread({self.key: last}, block=500, count=100):
                        for entry_id, fields in entries:
                            change = _change(fields)
                            if change.origin != self.origin:
                                apply(change)
                            last, failures = entry_id, 0
                except Exception as err:
                    on_error(err)
                    failures += 1
                    if failures >= APPLY_ATTEMPTS:  # skip the change that keeps failing
                        skipped = self.redis.xrange(self.key, f"({_text(last)}", "+", count=1)
                        last = skipped[0][0] if skipped else last
                        failures = 0
                    self._stop.wait(0.2 * 2**failures)

        self._thread = threading.Thread(target=run, name="driftrec-changes", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _change(fields: dict[bytes, bytes]) -> Change:
    return Change(
        fields[b"kind"].decode(),
        fields[b"user"].decode() if b"user" in fields else None,
        fields[b"origin"].decode(),
        tuple(json.loads(fields.get(b"items", b"[]"))),
    )


__all__ = ["Change", "Changes"]

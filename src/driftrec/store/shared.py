"""Users' live events in Redis, shared by every replica of the service (``--state redis://``).

The store (PostgreSQL) stays the record of every event; Redis holds, per user, the newest
``window`` stored events with their row ids, so any replica answers any user from the same
events without reading the store. Per user two keys, hash-tagged so a cluster keeps them in one
slot: ``{prefix}:{user}:s``, a hash with ``epoch`` (a token naming this copy of the list;
missing: no copy, build one from the store) and ``n`` (events appended, counted even while there
is no copy), and ``{prefix}:{user}:e``, the events in arrival order.

Every operation is one Lua script, so one round trip and atomic:
- `read` tells a replica holding (epoch, n) whether its copy is current, and if not sends the
  events appended since (or the whole list when the copy is another epoch or too far behind);
  many users' reads are pipelined into one round trip;
- `append` (after the store committed the events) counts them and adds them to the list when
  there is one;
- `fill` puts a list built from the store in place only when no event was counted since the
  builder read ``n``, so a list never misses an event that committed meanwhile; an event that
  committed just before the build and is appended just after it comes twice, and readers drop
  the repeat by row id;
- `erase` deletes the list and moves ``n`` on, so a build racing the erasure is refused.

Keys expire after ``ttl`` seconds without a write (rebuilt from the store on the next read);
Redis must not evict them otherwise (``maxmemory-policy noeviction`` or ``volatile-*``).
Catalog changes and erasures that every replica must apply (their models hold items and
training histories) go through a `Changes` stream.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from driftrec.data.events import Event
from driftrec.errors import InputError

DAY = 86_400

_READ = """
local h = redis.call('HMGET', KEYS[1], 'epoch', 'n')
local n = tonumber(h[2] or '0')
if not h[1] then return {false, n} end
if h[1] == ARGV[1] then
  local d = n - tonumber(ARGV[2])
  if d == 0 then return {h[1], n} end
  if d > 0 and d <= tonumber(ARGV[3]) then
    return {h[1], n, redis.call('LRANGE', KEYS[2], -d, -1), 0}
  end
end
return {h[1], n, redis.call('LRANGE', KEYS[2], 0, -1), 1}
"""

_PUSH = """
local function push(key, first)
  for i = first, #ARGV, 1000 do
    redis.call('RPUSH', key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
end
"""

_APPEND = (
    _PUSH
    + """
redis.call('HINCRBY', KEYS[1], 'n', #ARGV - 2)
if redis.call('HEXISTS', KEYS[1], 'epoch') == 1 then
  push(KEYS[2], 3)
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[1]), -1)
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
"""
)

_FILL = (
    _PUSH
    + """
local h = redis.call('HMGET', KEYS[1], 'epoch', 'n')
local n = tonumber(h[2] or '0')
if h[1] then return {h[1], n, redis.call('LRANGE', KEYS[2], 0, -1), 1} end
if n ~= tonumber(ARGV[1]) then return false end
redis.call('DEL', KEYS[2])
if #ARGV > 4 then
  push(KEYS[2], 5)
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[2], 'n', n)
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {ARGV[2], n}
"""
)

_DROP = """
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[1], 'epoch')
redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('EXPIRE', KEYS[1], ARGV[1])
"""

Row = tuple[str, Event]  # an event and the key that names it wherever it is copied


def row_key(row_id: int | None, event_id: str | None) -> str:
    """The key of a stored event: its event_id when it has one (what a stream carries before
    the store has a row), else its row id in the store."""
    return f"e:{event_id}" if event_id is not None else f"r:{row_id}"


@dataclass(frozen=True)
class Copy:
    """What `read` found for a user: ``epoch`` None when Redis holds no list (build one);
    ``rows`` None when the reader's copy is current, else the rows appended since it (or the
    whole list, ``whole``)."""

    epoch: str | None
    n: int
    rows: list[Row] | None = None
    whole: bool = False


def encode(key: str, e: Event) -> str:
    """A list entry: the event with its key."""
    return json.dumps([key, e.item, e.timestamp, e.event, e.value, e.text])


def _decode(raw: bytes) -> Row:
    key, item, timestamp, event, value, text = json.loads(raw)
    return key, Event(item, timestamp, event, value, text)


def connect(url: str) -> redis.Redis:
    """A Redis client for ``url`` (redis:// or rediss://), checked with a ping: a wrong URL is
    a one-line error at start, not a failure on the first request."""
    try:
        client = redis.Redis.from_url(url, health_check_interval=30)
        client.ping()
    except ValueError as err:
        raise InputError(f"state URL {url!r}: {err}") from None
    except redis.RedisError as err:
        raise InputError(f"state URL {url!r}: Redis does not answer ({err})") from None
    return client


class SharedState:
    """The newest ``window`` stored events of every user, in Redis (see the module's notes)."""

    def __init__(
        self,
        client: redis.Redis,
        window: int = 1_000,
        prefix: str = "driftrec",
        ttl: int = 30 * DAY,
    ) -> None:
        self.redis, self.window, self.prefix, self.ttl = client, window, prefix, ttl
        self._read = client.register_script(_READ)
        self._append = client.register_script(_APPEND)
        self._fill = client.register_script(_FILL)
        self._drop = client.register_script(_DROP)
        self.round_trips = 0  # a running count (GET /metrics): one per batch of reads or writes
        self._counting = threading.Lock()

    def count_round_trip(self) -> None:
        with self._counting:
            self.round_trips += 1

    def keys(self, user: str) -> list[str]:
        """The user's two keys: the hash (epoch, n) and the list of events."""
        return [f"{self.prefix}:{{{user}}}:s", f"{self.prefix}:{{{user}}}:e"]

    def read(self, held: Sequence[tuple[str, str | None, int]]) -> list[Copy]:
        """For each (user, epoch, n) a replica holds, what changed, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for user, epoch, n in held:
            self._read(self.keys(user), [epoch or "", n, self.window], client=pipe)
        self.count_round_trip()
        return [_copy(reply) for reply in pipe.execute()]

    def append(self, rows: Sequence[tuple[str, str, Event]]) -> None:
        """Count and add stored events (user, key, event), in one round trip."""
        by_user: dict[str, list[str]] = {}
        for user, key, event in rows:
            by_user.setdefault(user, []).append(encode(key, event))
        if not by_user:
            return
        pipe = self.redis.pipeline(transaction=False)
        for user, entries in by_user.items():
            self._append(self.keys(user), [self.window, self.ttl, *entries], client=pipe)
        self.count_round_trip()
        pipe.execute()

    def fill(self, user: str, seen: int, rows: Sequence[Row]) -> Copy | None:
        """Put ``rows`` (read from the store after `read` said ``n`` was ``seen``) in place as
        the user's list; None when events were counted meanwhile (read the store again). When
        another replica filled it first, its list is returned instead."""
        epoch = secrets.token_hex(8)
        entries = [encode(key, e) for key, e in rows]
        self.count_round_trip()
        reply = self._fill(self.keys(user), [seen, epoch, self.window, self.ttl, *entries])
        return None if reply is None else _copy(reply)

    def erase(self, user: str) -> None:
        """Drop the user's list; a build from before the erasure is refused."""
        self.drop([user])

    def drop(self, users: Sequence[str]) -> None:
        """Drop the users' lists (erased, or missing an event), in one round trip: each is
        built again from the store when next read, and a build from before is refused."""
        pipe = self.redis.pipeline(transaction=False)
        for user in users:
            self._drop(self.keys(user), [DAY], client=pipe)
        self.count_round_trip()
        pipe.execute()


def _copy(reply: list[Any]) -> Copy:
    epoch = reply[0].decode() if reply[0] else None
    rows = [_decode(raw) for raw in reply[2]] if len(reply) > 2 else None
    return Copy(epoch, int(reply[1]), rows, bool(len(reply) > 3 and reply[3]))


@dataclass(frozen=True)
class Change:
    """A change every replica applies to the models it holds: ``kind`` "items" (catalog items
    were added or updated: read them from the store) or "erase" (``user`` was erased)."""

    kind: str
    user: str | None = None
    origin: str = ""  # the replica that made it (it has applied it already)


class Changes:
    """A Redis stream of `Change`s, read by every replica from when it started (each replica
    reads all of them: no consumer group). A replica that was down reloads its models and
    catalog from their files and the store when it starts, so it needs none it missed."""

    def __init__(self, client: redis.Redis, prefix: str = "driftrec", keep: int = 100_000) -> None:
        self.redis, self.key, self.keep = client, f"{prefix}:changes", keep
        self.origin = secrets.token_hex(8)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # changes from now on: those made while this replica loads its models are applied
        # after (applying one twice does no harm)
        self._start = client.xinfo_stream(self.key)["last-generated-id"] if self._exists() else "0"

    def publish(self, kind: str, user: str | None = None) -> None:
        fields = {"kind": kind, "origin": self.origin, **({"user": user} if user else {})}
        self.redis.xadd(self.key, fields, maxlen=self.keep, approximate=True)

    def follow(
        self, apply: Callable[[Change], None], on_error: Callable[[Exception], None]
    ) -> None:
        """Apply other replicas' changes as they come, on a thread, from when this object
        was made."""

        def run() -> None:
            last = self._start
            while not self._stop.is_set():
                try:
                    replies = self.redis.xread({self.key: last}, block=500, count=100)
                    for _, entries in replies:
                        for entry_id, fields in entries:
                            last = entry_id
                            change = Change(
                                fields[b"kind"].decode(),
                                fields[b"user"].decode() if b"user" in fields else None,
                                fields[b"origin"].decode(),
                            )
                            if change.origin != self.origin:
                                apply(change)
                except Exception as err:  # a failed change must not stop the following ones
                    on_error(err)
                    self._stop.wait(1.0)

        self._thread = threading.Thread(target=run, name="driftrec-changes", daemon=True)
        self._thread.start()

    def _exists(self) -> bool:
        return bool(self.redis.exists(self.key))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


__all__ = ["Change", "Changes", "Copy", "SharedState", "connect"]

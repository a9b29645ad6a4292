"""Users' live events in Redis, shared by every replica of the service (``--state redis://``).

The store (PostgreSQL) stays the record of every event; Redis holds, per user, the newest
``window`` stored events, each with the key that names it (`row_key`), so any replica answers
any user from the same events without reading the store. Per user two keys: ``{prefix}:{user}:s``,
a hash with ``epoch`` (a token naming this copy of the list; missing: no copy, build one from
the store) and ``n`` (events appended, counted even while there is no copy), and
``{prefix}:{user}:e``, the events in arrival order. A single Redis primary (with replicas for
failover) holds them; scripts over several users' keys rule out Redis Cluster.

Every operation is one Lua script sent as one EVALSHA, so one round trip and atomic:
- `read` tells a replica holding (epoch, n) whether its copy is current, and if not sends the
  events appended since (or the whole list when the copy is another epoch or too far behind);
- `append` (after the store committed the events) counts them and adds them to the users'
  lists that exist;
- `fill` puts a list built from the store in place only when no event was counted since the
  builder read ``n``, so a list never misses an event that committed meanwhile; an event that
  committed just before the build and is appended just after it comes twice, and readers drop
  the repeat by its key;
- `drop` deletes lists and moves ``n`` on, so a build that read the store before is refused.

Keys expire after ``ttl`` seconds without a write (rebuilt from the store on the next read);
Redis must not evict them otherwise (``maxmemory-policy noeviction`` or ``volatile-*``).
Redis 7.0 or newer (XAUTOCLAIM's reply, MINID trimming).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

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

# Lua shared by the scripts that add events: entries ARGV[first..] go to users in turn, ARGV[at]
# holding each user's count; lists trimmed to ARGV[1] events, keys kept ARGV[2] seconds.
ADD = """
local window, ttl = tonumber(ARGV[1]), ARGV[2]
local function push(list, first, last)
  for i = first, last, 1000 do
    redis.call('RPUSH', list, unpack(ARGV, i, math.min(i + 999, last)))
  end
  redis.call('LTRIM', list, -window, -1)
  redis.call('EXPIRE', list, ttl)
end
"""

_APPEND = (
    ADD
    + """
local at = 3 + #KEYS / 2
for u = 1, #KEYS / 2 do
  local count = tonumber(ARGV[2 + u])
  redis.call('HINCRBY', KEYS[2 * u - 1], 'n', count)
  if redis.call('HEXISTS', KEYS[2 * u - 1], 'epoch') == 1 then
    push(KEYS[2 * u], at, at + count - 1)
  end
  redis.call('EXPIRE', KEYS[2 * u - 1], ttl)
  at = at + count
end
"""
)

_FILL = (
    ADD
    + """
local h = redis.call('HMGET', KEYS[1], 'epoch', 'n')
local n = tonumber(h[2] or '0')
if h[1] then return {h[1], n, redis.call('LRANGE', KEYS[2], 0, -1), 1} end
if n ~= tonumber(ARGV[3]) then return false end
redis.call('DEL', KEYS[2])
if #ARGV > 4 then push(KEYS[2], 5, #ARGV) end
redis.call('HSET', KEYS[1], 'epoch', ARGV[4], 'n', n)
redis.call('EXPIRE', KEYS[1], ttl)
return {ARGV[4], n}
"""
)

_DROP = """
for u = 1, #KEYS / 2 do
  redis.call('DEL', KEYS[2 * u])
  redis.call('HDEL', KEYS[2 * u - 1], 'epoch')
  redis.call('HINCRBY', KEYS[2 * u - 1], 'n', 1)
  redis.call('EXPIRE', KEYS[2 * u - 1], ARGV[1])
end
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
    a one-line error at start, not a failure on the first request. Timeouts and retries are
    short (a request waits at most a few seconds on a Redis that does not answer); a retried
    script is harmless, events being named by their keys."""
    try:
        client = redis.Redis.from_url(
            url,
            socket_timeout=5,
            socket_connect_timeout=2,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
            health_check_interval=30,
        )
        client.ping()
    except ValueError as err:
        raise InputError(f"state URL {url!r}: {err}") from None
    except redis.RedisError as err:
        raise InputError(f"state URL {url!r}: Redis does not answer ({err})") from None
    return client


def settled(client: redis.Redis, key: str, value: int) -> int:
    """The deployment's value of a setting every process must share (a window, a number of
    partitions): ``value`` when this process is the first to set it, else the one set first."""
    first = client.set(key, value, nx=True, get=True)
    return value if first is None else int(first)


def _args(by_user: dict[str, list[str]]) -> list[object]:
    """Each user's count, then every entry, user by user (the layout `ADD` reads)."""
    return [*(len(e) for e in by_user.values()), *(x for e in by_user.values() for x in e)]


class SharedState:
    """The newest ``window`` stored events of every user, in Redis (see the module's notes).
    ``round_trip`` is told of each round trip (the service counts them on /metrics)."""

    def __init__(
        self,
        client: redis.Redis,
        window: int = 1_000,
        prefix: str = "driftrec",
        ttl: int = 30 * DAY,
        round_trip: Callable[[], None] | None = None,
    ) -> None:
        self.redis, self.window, self.prefix, self.ttl = client, window, prefix, ttl
        self.round_trip = round_trip or (lambda: None)
        stored = settled(client, f"{prefix}:state:window", window)
        if stored != window:
            raise InputError(
                f"--window {window}: the shared state under prefix {prefix!r} keeps {stored}"
                " events per user (every replica must keep the same)"
            )
        self._read = client.register_script(_READ)
        self._append = client.register_script(_APPEND)
        self._fill = client.register_script(_FILL)
        self._drop = client.register_script(_DROP)

    def keys(self, user: str) -> list[str]:
        """The user's two keys: the hash (epoch, n) and the list of events."""
        return [f"{self.prefix}:{{{user}}}:s", f"{self.prefix}:{{{user}}}:e"]

    def read(self, user: str, epoch: str | None, n: int) -> Copy:
        """What changed for ``user`` since the copy (epoch, n) a replica holds."""
        self.round_trip()
        return _copy(self._read(self.keys(user), [epoch or "", n, self.window]))

    def append(self, rows: Sequence[tuple[str, str, Event]]) -> None:
        """Count and add stored events (user, key, event)."""
        by_user: dict[str, list[str]] = {}
        for user, key, event in rows:
            by_user.setdefault(user, []).append(encode(key, event))
        if not by_user:
            return
        keys = [k for user in by_user for k in self.keys(user)]
        self.round_trip()
        self._append(keys, [self.window, self.ttl, *_args(by_user)])

    def fill(self, user: str, seen: int, rows: Sequence[Row]) -> Copy | None:
        """Put ``rows`` (read from the store after `read` said ``n`` was ``seen``) in place as
        the user's list; None when events were counted meanwhile (read the store again). When
        another replica filled it first, its list is returned instead."""
        epoch = secrets.token_hex(8)
        entries = [encode(key, e) for key, e in rows]
        self.round_trip()
        reply = self._fill(self.keys(user), [self.window, self.ttl, seen, epoch, *entries])
        return None if reply is None else _copy(reply)

    def drop(self, users: Sequence[str]) -> None:
        """Drop the users' lists (erased, or missing an event): each is built again from the
        store when next read, and a build that read the store before is refused."""
        if not users:
            return
        self.round_trip()
        self._drop([k for user in users for k in self.keys(user)], [DAY])


def _copy(reply: list[Any]) -> Copy:
    epoch = reply[0].decode() if reply[0] else None
    rows = [_decode(raw) for raw in reply[2]] if len(reply) > 2 else None
    return Copy(epoch, int(reply[1]), rows, bool(len(reply) > 3 and reply[3]))


__all__ = [
    "ADD",
    "DAY",
    "Copy",
    "Row",
    "SharedState",
    "connect",
    "encode",
    "row_key",
    "settled",
]

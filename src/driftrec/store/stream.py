"""Ingest through an event stream (``driftrec serve --ingest stream``, ``driftrec consume``):
events are acknowledged once they are in the stream, and stream consumers store them.

The stream is partitioned by a hash of the user, so one consumer owns a user at a time and
applies their events in order. Redis Streams implement it here: one stream per partition
(``{prefix}:events:{p}``), one consumer group (``store``) over each. Consumers share the
partitions by leases (``{prefix}:events:lease:{p}``, renewed every step, ``lease`` seconds
long) and take a fair share each (partitions / live consumers); a consumer that takes over a
partition first claims the entries its previous owner read but did not acknowledge
(XAUTOCLAIM), then reads new ones. An entry is acknowledged after the store committed it, and
the store keeps one event per (user, event_id) (every streamed event has an event_id; the
publisher gives one to events that came without), so an entry delivered twice, after a crash
between the commit and the acknowledgement, is stored once: every acknowledged event is
applied exactly once.

The publisher appends each event to the user's live state in the same Lua script as to the
stream (`SharedState`), so the replica's next read reflects the event before any consumer
stored it. Kafka (key = user, a consumer group, offsets committed after the store's commit) or
NATS JetStream (a subject per partition, durable pull consumers with explicit ack) fit the same
`EventStream` interface (docs/scaling.md).
"""

from __future__ import annotations

import json
import secrets
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import redis

from driftrec.data.events import Event
from driftrec.errors import InputError
from driftrec.store.events import EventStore, StoredEvent
from driftrec.store.shared import ADD, DAY, SharedState, encode, row_key, settled

GROUP = "store"
PARTITIONS = 16
ERASE = "erase"  # an entry that erases its user: events before it in the partition go too

# ARGV: window, ttl, the number of users, each user's count, then per user their events' list
# entries and their stream payloads; KEYS: each user's hash and list, then each event's partition
_PUBLISH = (
    ADD
    + """
local users = tonumber(ARGV[3])
local missing = {}
for u = 1, users do
  if redis.call('HEXISTS', KEYS[2 * u - 1], 'epoch') == 0 then missing[#missing + 1] = u end
end
if #missing > 0 then return missing end
local at, s = 4 + users, 2 * users + 1
for u = 1, users do
  local count = tonumber(ARGV[3 + u])
  push(KEYS[2 * u], at, at + count - 1)
  for i = 0, count - 1 do
    redis.call('XADD', KEYS[s + i], '*', 'e', ARGV[at + count + i])
  end
  redis.call('HINCRBY', KEYS[2 * u - 1], 'n', count)
  redis.call('EXPIRE', KEYS[2 * u - 1], ttl)
  at, s = at + 2 * count, s + count
end
return missing
"""
)

# KEYS: the user's hash and list, their partition; ARGV: the erasure's payload, a new epoch,
# how long the empty list stands (past any consumer lag)
_ERASE = """
redis.call('XADD', KEYS[3], '*', 'e', ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'epoch', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class EventStream(Protocol):
    """What ingest through a stream needs of one (docs/scaling.md maps it onto Kafka and NATS
    JetStream): events published durably, in order per user, with the user's live state."""

    partitions: int

    def publish(self, events: Sequence[StoredEvent], shared: SharedState) -> list[str]:
        """Put ``events`` (each with an event_id) in their users' partitions and live states
        at once; returns the users whose live state must be built first (nothing published
        then)."""
        ...

    def erase(self, user: str, shared: SharedState) -> None:
        """Put an erasure of ``user`` in their partition, after their events, and empty their
        live state at once."""
        ...


def _payload(e: StoredEvent) -> str:
    ev = e.event
    return json.dumps(
        [e.user, ev.item, ev.timestamp, ev.event, ev.value, ev.text, e.event_id, e.request_id]
    )


def _entry(raw: bytes) -> StoredEvent | str:
    """An entry's event, or the user an erasure entry names."""
    fields = json.loads(raw)
    if fields[0] == ERASE:
        return str(fields[1])
    user, item, timestamp, event, value, text, event_id, request_id = fields
    return StoredEvent(user, Event(item, timestamp, event, value, text), event_id, request_id)


class RedisEventStream:
    """Partitioned event stream on Redis Streams (see the module's notes)."""

    def __init__(
        self, client: redis.Redis, prefix: str = "driftrec", partitions: int = PARTITIONS
    ) -> None:
        self.redis, self.prefix = client, prefix
        stored = settled(client, f"{prefix}:events:partitions", partitions)
        if stored != partitions:
            raise InputError(
                f"--partitions {partitions}: the stream under prefix {prefix!r} was created"
                f" with {stored}"
            )
        self.partitions = partitions
        self._publish = client.register_script(_PUBLISH)
        self._erase = client.register_script(_ERASE)
        for p in range(partitions):
            try:
                client.xgroup_create(self.key(p), GROUP, id="0", mkstream=True)
            except redis.ResponseError as err:
                if "BUSYGROUP" not in str(err):
                    raise

    def key(self, partition: int) -> str:
        """The stream of one partition."""
        return f"{self.prefix}:events:{partition}"

    def partition(self, user: str) -> int:
        """The user's partition: a stable hash, the same in every process."""
        return zlib.crc32(user.encode()) % self.partitions

    def publish(self, events: Sequence[StoredEvent], shared: SharedState) -> list[str]:
        by_user: dict[str, list[StoredEvent]] = {}
        for e in events:
            by_user.setdefault(e.user, []).append(e)
        users = list(by_user)
        keys = [k for u in users for k in shared.keys(u)]
        args: list[object] = [shared.window, shared.ttl, len(users)]
        args += [len(by_user[u]) for u in users]
        for user in users:
            mine = by_user[user]
            args += [encode(row_key(None, e.event_id), e.event) for e in mine]
            args += [_payload(e) for e in mine]
            keys += [self.key(self.partition(user))] * len(mine)
        shared.round_trip()
        missing = self._publish(keys, args)
        return [users[int(u) - 1] for u in missing]

    def erase(self, user: str, shared: SharedState) -> None:
        """Put the erasure in the user's partition and, at once, an empty list in the live
        state: events of theirs still in the stream are stored, then erased by it, and no
        replica rebuilds their list from the store in between."""
        shared.round_trip()
        self._erase(
            [*shared.keys(user), self.key(self.partition(user))],
            [json.dumps([ERASE, user]), secrets.token_hex(8), DAY],
        )


@dataclass
class Applied:
    """What one `StreamConsumer.step` did."""

    events: int = 0  # events stored (new)
    duplicates: int = 0  # entries whose event was stored already (redelivered)
    erasures: int = 0
    claimed: int = 0  # entries taken over from a consumer that stopped


class StreamConsumer:
    """Stores the events of the partitions it holds a lease on (see the module's notes)."""

    def __init__(
        self,
        stream: RedisEventStream,
        store: EventStore,
        name: str | None = None,
        lease: float = 10.0,
        batch: int = 1_000,
    ) -> None:
        self.stream, self.store = stream, store
        self.name = name or f"consumer-{secrets.token_hex(4)}"
        self.lease_ms, self.batch = int(lease * 1000), batch
        client = stream.redis
        self.redis = client
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self.members = f"{stream.prefix}:events:consumers"
        self.owned: set[int] = set()

    def _lease(self, partition: int) -> str:
        return f"{self.stream.prefix}:events:lease:{partition}"

    def balance(self) -> list[int]:
        """Renew this consumer's leases, give back those above its fair share, take free
        ones up to it; returns the partitions newly taken."""
        now = int(time.time() * 1000)
        self.redis.zadd(self.members, {self.name: now})
        self.redis.zremrangebyscore(self.members, "-inf", now - 10 * self.lease_ms)
        live = max(1, int(self.redis.zcount(self.members, now - self.lease_ms, "+inf")))
        share = -(-self.stream.partitions // live)
        for p in sorted(self.owned):
            if not self._renew([self._lease(p)], [self.name, self.lease_ms]):
                self.owned.discard(p)  # lost it (a pause longer than the lease)
        for p in sorted(self.owned, reverse=True)[: max(0, len(self.owned) - share)]:
            self._release([self._lease(p)], [self.name])
            self.owned.discard(p)
        taken = []
        start = zlib.crc32(self.name.encode()) % self.stream.partitions
        for step in range(self.stream.partitions):
            if len(self.owned) >= share:
                break
            p = (start + step) % self.stream.partitions
            if p not in self.owned and self.redis.set(
                self._lease(p), self.name, nx=True, px=self.lease_ms
            ):
                self.owned.add(p)
                taken.append(p)
        return taken

    def step(self, block: float = 0.2) -> Applied:
        """One round: balance, finish what previous owners of newly taken partitions left
        pending, store new entries (waiting up to ``block`` seconds for some)."""
        done = Applied()
        for p in self.balance():
            key = self.stream.key(p)
            # every entry read and not acknowledged is this consumer's now, oldest first
            start = "0-0"
            while True:
                start, claimed, _ = self.redis.xautoclaim(
                    key, GROUP, self.name, 0, start_id=start, count=self.batch
                )
                done.claimed += len(claimed)
                if start in (b"0-0", "0-0"):
                    break
            while p in self.owned:
                pending = self.redis.xreadgroup(GROUP, self.name, {key: "0"}, count=self.batch)
                entries = pending[0][1] if pending else []
                if not entries:
                    break
                self._apply(p, entries, done)
        if not self.owned:
            time.sleep(block)
            return done
        streams = {self.stream.key(p): ">" for p in sorted(self.owned)}
        replies = self.redis.xreadgroup(
            GROUP, self.name, streams, count=self.batch, block=int(block * 1000)
        )
        for key, entries in replies or []:
            name = key.decode() if isinstance(key, bytes) else key
            self._apply(int(name.rsplit(":", 1)[1]), entries, done)
        return done

    def _apply(
        self, partition: int, entries: list[tuple[bytes, dict[bytes, bytes]]], done: Applied
    ) -> None:
        """Store the entries in order (runs of events in one transaction, erasures between
        them), then acknowledge them and trim what every consumer is done with. The lease is
        renewed first; a partition lost meanwhile is left alone (its new owner claims the
        entries), so two consumers never store one partition at once while leases hold."""
        if not self._renew([self._lease(partition)], [self.name, self.lease_ms]):
            self.owned.discard(partition)
            return
        key = self.stream.key(partition)
        run: list[StoredEvent] = []

        def flush() -> None:
            if run:
                new = self.store.append(run)
                done.events += sum(new)
                done.duplicates += len(new) - sum(new)
                run.clear()

        for _, fields in entries:
            if not fields:
                continue  # trimmed while pending: acknowledged by a consumer before
            entry = _entry(fields[b"e"])
            if isinstance(entry, str):
                flush()
                self.store.delete_user(entry)
                done.erasures += 1
            else:
                run.append(entry)
        flush()
        ids = [entry_id for entry_id, _ in entries]
        pipe = self.redis.pipeline(transaction=False)
        pipe.xack(key, GROUP, *ids)
        pipe.xtrim(key, minid=ids[-1], approximate=True)  # all before it is acknowledged
        pipe.execute()

    def lag(self, most: int = 10_000) -> int:
        """Entries of every partition not yet acknowledged, read or not (each partition's
        unread ones counted up to ``most``)."""
        total = 0
        for p in range(self.stream.partitions):
            key = self.stream.key(p)
            for group in self.redis.xinfo_groups(key):
                if group["name"] in (GROUP, GROUP.encode()):
                    last = group["last-delivered-id"]
                    last = last.decode() if isinstance(last, bytes) else last
                    unread = self.redis.xrange(key, f"({last}", "+", count=most)
                    total += len(unread) + int(group["pending"])
        return total

    def close(self) -> None:
        """Give back the leases and leave the group's members (another takes over now)."""
        for p in self.owned:
            self._release([self._lease(p)], [self.name])
        self.owned.clear()
        self.redis.zrem(self.members, self.name)


__all__ = ["ERASE", "PARTITIONS", "Applied", "EventStream", "RedisEventStream", "StreamConsumer"]

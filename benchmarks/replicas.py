"""Scale-out of `driftrec serve` on this machine: 1 and 2 replicas behind the same PostgreSQL
and Redis, with in-process state as the baseline, and the per-component costs the capacity
plan (docs/scaling.md) starts from.

Run from the repository root:  .venv/bin/python benchmarks/replicas.py
Writes benchmarks/results/replicas.json and the "replicas" section of BENCHMARKS.md.

For each set-up (1 replica with in-process state, 1 replica with Redis state, 2 replicas with
Redis state; each on a fresh PostgreSQL schema and Redis key prefix) the replicas run as their
own processes and this script is the client (127.0.0.1 only, bounded in time):

- throughput: ``--clients`` closed-loop client threads in ``--client-processes`` processes,
  each with a kept-alive connection to every replica, requests spread round-robin over them,
  80% GET /users/{id}/recommendations and 20% POST /events (one event), for ``--seconds``;
- latency at a fixed load: GETs and POSTs (same mix) sent at ``--rate`` requests/s on a
  schedule (latency counted from the scheduled time, so a slow answer delays nobody unseen),
  p50 and p99;
- per request: Redis round trips (the service's own count, /metrics) on the read and the write
  path, server CPU milliseconds (the replicas' /proc CPU time over the requests served);
- state and store sizes: Redis bytes per user (MEMORY USAGE of the users' keys), PostgreSQL
  bytes per event (the events table with its indexes).

The model: the service's default (SASRec reading item text) trained on the synthetic
generator's 500 users, kept under runs/bench-replicas.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import random
import re
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis
import sqlalchemy as sa
from common import ROOT, markdown_table, update_markdown, write_results
from rich.console import Console
from rich.progress import track
from rich.table import Table

from driftrec.cli.process import ServiceProcess
from driftrec.cli.serve import default_model
from driftrec.data.dataset import Dataset
from driftrec.data.events import Event
from driftrec.store import EventStore, StoredEvent
from driftrec.store.shared import SharedState

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
HOME = ROOT / "runs" / "bench-replicas"
HELD = (10, 50, 200, 1_000)  # events in a user's list, for the Redis bytes per user
console = Console()


@contextmanager
def deployment() -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL schema and Redis prefix: (store URL, prefix)."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG)
    with admin.begin() as c:
        c.execute(sa.text(f"create schema {schema}"))
    try:
        yield f"{PG}?options=-csearch_path%3D{schema}", schema
    finally:
        with admin.begin() as c:
            c.execute(sa.text(f"drop schema {schema} cascade"))
        admin.dispose()
        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(f"{schema}:*", count=10_000))
        for n in range(0, len(keys), 10_000):
            client.delete(*keys[n : n + 10_000])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores, /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def metric(url: str, name: str) -> float:
    """The sum of a metric's samples on a replica's /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return sum(
        float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    )


class Load:
    """The request mix against the replicas: which request comes next, and sending it over
    a kept-alive `http.client` connection (httpx's own CPU per request would make the client
    the bottleneck on this machine)."""

    def __init__(self, urls: list[str], users: list[str], items: list[str], seed: int) -> None:
        self.urls, self.users, self.items = urls, users, items
        self.random = random.Random(seed)
        self.turn = 0
        self.lock = threading.Lock()

    def next(self) -> tuple[str, int, str, str]:
        """(kind, replica, user, item): 20% posts, replicas in turn."""
        with self.lock:
            self.turn += 1
            kind = "post" if self.random.random() < 0.2 else "get"
            return (
                kind,
                self.turn % len(self.urls),
                self.random.choice(self.users),
                self.random.choice(self.items),
            )

    def connections(self) -> list[http.client.HTTPConnection]:
        """One kept-alive connection per replica."""
        return [
            http.client.HTTPConnection(httpx.URL(u).host, httpx.URL(u).port, timeout=60)
            for u in self.urls
        ]

    @staticmethod
    def send(
        connections: list[http.client.HTTPConnection], kind: str, replica: int, user: str, item: str
    ) -> None:
        connection = connections[replica]
        if kind == "get":
            connection.request("GET", f"/users/{user}/recommendations?k=10")
        else:
            body = json.dumps({"user": user, "item": item, "timestamp": int(time.time())})
            connection.request(
                "POST", "/events", body, headers={"content-type": "application/json"}
            )
        answer = connection.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{kind} answered {answer.status}")


def _client_process(
    urls: list[str], users: list[str], items: list[str], threads: int, seconds: float, seed: int
) -> int:
    """A client process: ``threads`` closed loops for ``seconds``; the requests it made."""
    load = Load(urls, users, items, seed)
    stop = time.monotonic() + seconds

    def run(_: int) -> int:
        connections, made = load.connections(), 0
        while time.monotonic() < stop:
            load.send(connections, *load.next())
            made += 1
        return made

    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(run, range(threads)))


def closed_loop(load: Load, clients: int, processes: int, seconds: float) -> dict[str, float]:
    """``clients`` closed loops (threads spread over ``processes`` client processes)."""
    start = time.monotonic()
    with ProcessPoolExecutor(processes) as pool:
        made = sum(
            pool.map(
                _client_process,
                *zip(
                    *[
                        (load.urls, load.users, load.items, clients // processes, seconds, n)
                        for n in range(processes)
                    ],
                    strict=True,
                ),
            )
        )
    elapsed = time.monotonic() - start
    return {"requests": made, "seconds": elapsed, "per_second": made / elapsed}


def fixed_rate(load: Load, rate: float, seconds: float) -> dict[str, float]:
    """Requests sent on a schedule of ``rate`` per second by 32 threads with their own
    connections; each latency runs from the scheduled send, so queueing behind slow answers
    counts."""
    n = int(rate * seconds)
    pool_size = 32
    idle: queue.Queue[list[http.client.HTTPConnection]] = queue.Queue()
    for _ in range(pool_size):
        idle.put(load.connections())
    start = time.monotonic() + 0.5
    latencies: list[float] = []

    def one(k: int) -> None:
        due = start + k / rate
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        connections = idle.get()
        load.send(connections, *load.next())
        idle.put(connections)
        latencies.append(time.monotonic() - due)

    with ThreadPoolExecutor(pool_size) as pool:
        list(pool.map(one, range(n)))
    ms = np.sort(np.asarray(latencies)) * 1000
    return {
        "rate": rate,
        "requests": n,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def round_trips(servers: list[ServiceProcess], load: Load, kind: str, n: int) -> float:
    """Redis round trips per request of one kind, from the replicas' own counts."""
    before = sum(metric(s.url, "driftrec_state_round_trips_total") for s in servers)
    connections = load.connections()
    for _ in range(n):
        _, replica, user, item = load.next()
        load.send(connections, kind, replica, user, item)
    after = sum(metric(s.url, "driftrec_state_round_trips_total") for s in servers)
    return (after - before) / n


def run_setup(
    name: str, replicas: int, state: bool, model: Path, args: argparse.Namespace
) -> dict[str, Any]:
    data = Dataset.load(HOME / "data")
    users = [str(u) for u in data.user_ids]
    items = [str(i) for i in data.item_ids]
    with deployment() as (db, prefix):
        options = ["--state", REDIS, "--state-prefix", prefix] if state else []
        log = HOME / "logs" / f"{name}.log"
        servers = [
            ServiceProcess.start(["--model", str(model), "--db", db, *options], log)
            for _ in range(replicas)
        ]
        try:
            load = Load([s.url for s in servers], users, items, seed=0)
            warm = min(5.0, args.seconds)
            closed_loop(load, args.clients, args.client_processes, warm)  # every user built
            cpu = sum(cpu_seconds(s.process.pid) for s in servers)
            busy = machine_busy()
            served = closed_loop(load, args.clients, args.client_processes, args.seconds)
            cpu = sum(cpu_seconds(s.process.pid) for s in servers) - cpu
            busy = machine_busy() - busy
            latency = fixed_rate(load, args.rate, args.seconds)
            record: dict[str, Any] = {
                "setup": name,
                "replicas": replicas,
                "state": "redis" if state else "process",
                "clients": args.clients,
                "throughput_per_s": served["per_second"],
                "requests": served["requests"],
                "server_cpu_ms_per_request": 1000 * cpu / served["requests"],
                # everything: replicas, client processes, PostgreSQL, Redis
                "machine_cpu_ms_per_request": 1000 * busy / served["requests"],
                "machine_busy_cores": busy / served["seconds"],
                **{f"fixed_{k}": v for k, v in latency.items()},
            }
            if state:
                record["redis_round_trips_per_get"] = round_trips(servers, load, "get", 300)
                record["redis_round_trips_per_post"] = round_trips(servers, load, "post", 300)
                client = redis.Redis.from_url(REDIS)
                keys = list(client.scan_iter(f"{prefix}:{{*", count=10_000))
                held = {k.split(b"}")[0] for k in keys}
                size = sum(int(client.memory_usage(k) or 0) for k in keys)
                record["redis_users"] = len(held)
                record["redis_bytes_per_user"] = size / max(1, len(held))
                record["redis_events_per_user"] = sum(
                    int(client.llen(k)) for k in keys if k.endswith(b":e")
                ) / max(1, len(held))
            engine = sa.create_engine(db)
            with engine.connect() as c:
                rows = int(c.execute(sa.text("select count(*) from events")).scalar() or 0)
                size = int(
                    c.execute(sa.text("select pg_total_relation_size('events')")).scalar() or 0
                )
            engine.dispose()
            record["store_events"] = rows
            record["store_bytes_per_event"] = size / max(1, rows)
            return record
        finally:
            for s in servers:
                s.stop()


def sizes(events: int, held: tuple[int, ...]) -> dict[str, Any]:
    """Bytes per stored event in PostgreSQL (``events`` synthetic events, table and indexes)
    and Redis bytes per user's list holding each of ``held`` events."""
    out: dict[str, Any] = {}
    with deployment() as (db, prefix):
        store = EventStore(db)
        rng = np.random.default_rng(0)
        batch = 5_000
        for start in track(range(0, events, batch), description="store sizes"):
            store.insert(
                [
                    StoredEvent(
                        f"user-{rng.integers(events // 20):08d}",
                        Event(
                            f"item-{rng.integers(100_000):06d}", 1_700_000_000 + start + n, "click"
                        ),
                    )
                    for n in range(batch)
                ]
            )
        with store.engine.begin() as c:
            size = int(c.execute(sa.text("select pg_total_relation_size('events')")).scalar() or 0)
        out["store_events"] = events
        out["store_bytes_per_event"] = size / events
        store.close()
        client = redis.Redis.from_url(REDIS)
        shared = SharedState(client, window=max(held), prefix=prefix)
        for n in held:
            total = 0
            for u in range(100):
                user = f"user-{n}-{u:04d}"
                rows = [
                    (f"r:{10_000_000 + k}", Event(f"item-{k:06d}", 1_700_000_000 + k, "click"))
                    for k in range(n)
                ]
                shared.fill(user, 0, rows)
                total += sum(int(client.memory_usage(k) or 0) for k in shared.keys(user))
            out[f"redis_bytes_per_user_{n}_events"] = total / 100
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=60.0, help="requests/s of the fixed load")
    parser.add_argument("--rounds", type=int, default=2, help="set-ups alternated this often")
    parser.add_argument("--store-events", type=int, default=200_000)
    args = parser.parse_args()
    model = default_model(HOME)
    setups = [("1 replica, in-process state", 1, False), ("1 replica, Redis", 1, True),
              ("2 replicas, Redis", 2, True)]  # fmt: skip
    records = []
    for round_ in track(range(args.rounds), description="rounds"):
        for name, replicas, state in setups:
            record = run_setup(name, replicas, state, model, args)
            record["round"] = round_
            records.append(record)
            console.print(record)
    measured = sizes(args.store_events, HELD)
    records.append({"setup": "sizes", **measured})
    console.print(measured)
    path = write_results("replicas", records)

    def median(setup: str, key: str) -> float:
        return float(np.median([r[key] for r in records if r["setup"] == setup and key in r]))

    base = median(setups[1][0], "throughput_per_s")
    header = ["set-up", "requests/s", "× 1 replica (Redis)", f"p50 / p99 ms at {args.rate:g}/s",
              "replica CPU ms/request", "machine CPU ms/request (busy cores)",
              "Redis round trips GET / POST"]  # fmt: skip
    rows = []
    table = Table(title=f"Replicas (medians of {args.rounds} rounds, {args.clients} clients)")
    for column in header:
        table.add_column(column, justify="left" if column == "set-up" else "right")
    for name, _, state in setups:
        row = [
            name,
            f"{median(name, 'throughput_per_s'):.0f}",
            f"{median(name, 'throughput_per_s') / base:.2f}",
            f"{median(name, 'fixed_p50_ms'):.1f} / {median(name, 'fixed_p99_ms'):.1f}",
            f"{median(name, 'server_cpu_ms_per_request'):.2f}",
            f"{median(name, 'machine_cpu_ms_per_request'):.2f}"
            f" ({median(name, 'machine_busy_cores'):.2f})",
            f"{median(name, 'redis_round_trips_per_get'):.2f} /"
            f" {median(name, 'redis_round_trips_per_post'):.2f}"
            if state
            else "–",
        ]
        rows.append(row)
        table.add_row(*row)
    console.print(table)
    held = ", ".join(
        f"{n:,} events {measured[f'redis_bytes_per_user_{n}_events']:,.0f} B" for n in HELD
    )
    body = (
        "## Replicas: throughput and per-request costs (issue 17)\n\n"
        + markdown_table(header, rows)
        + f"\n\nMix: 80% GET top 10, 20% POST one event, {args.clients} closed-loop clients in"
        f" {args.client_processes} processes ({args.seconds:g} s per set-up, set-ups alternated"
        f" {args.rounds} times, medians); users of the 500-user synthetic set; the default"
        " model (SASRec reading text). Sizes: PostgreSQL"
        f" {measured['store_bytes_per_event']:,.0f} bytes per event (the events table with its"
        f" indexes, {args.store_events:,} events); Redis per user's list: {held} (MEMORY"
        " USAGE of both keys). The machine has 2 cores for the replicas, PostgreSQL, Redis and"
        " the client processes together: docs/scaling.md reads these figures into a capacity"
        f" plan. Results: `{path.relative_to(ROOT)}`."
    )
    update_markdown("replicas", body)


if __name__ == "__main__":
    main()

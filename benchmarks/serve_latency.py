"""Latency, recall, memory and ingest throughput of `driftrec serve`, driven over HTTP.

Run from the repository root:  .venv/bin/python benchmarks/serve_latency.py
(``--sizes 10000`` for the quick part only). Writes benchmarks/results/serve_latency.json and the
"serve_latency" section of BENCHMARKS.md.

For each catalog size the service runs as its own process (`driftrec serve`, one server process)
and this script, another process, is the client:

- pairs: post one event for a user, then get that user's top 10 (p50 / p99 of each call and of
  the pair), for users with a training history; the server-side time per stage (store write,
  state update, query vector, retrieval, serialisation) comes from the service's /metrics; the
  bare in-process `recommend` of the same model on the same histories is timed in this process;
- at sizes above the service's exact limit (50,000 items), the approximate index's recall@10
  against exact scoring of the same histories, seen items excluded;
- the server's resident memory;
- ingest (smallest size): 2 client processes posting batches of 500 events, then 4 and 16
  posting single events, for a fixed time, into SQLite and into PostgreSQL.

The models: SASRec trained briefly (latency depends on shapes, not on how well it ranks) on the
synthetic generator's users for 10k items; for 1M items on clustered random users (2,000
clusters of 500 items, 20,000 users with 40 events each), 1 epoch.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import sqlalchemy as sa
from common import ROOT, markdown_table, update_markdown, write_results
from rich.console import Console
from rich.progress import track

from driftrec.data.dataset import Dataset
from driftrec.data.events import Event
from driftrec.data.synthetic import SyntheticConfig, generate
from driftrec.models import create, load
from driftrec.models.base import read_config
from driftrec.paths import default_cache_dir

sys.path.insert(0, str(ROOT / "tests"))
from servers import free_port, start_server

WORK = ROOT / "runs" / "bench-serve"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# single-event clients: each waits for its answer, so with few of them the rate is bounded by
# the commit's latency (a sync to disk), with more by the server's CPU
SINGLE_CLIENTS = (4, 16)
console = Console()


# ---------------------------------------------------------------------------- models
def build_model(n_items: int) -> Path:
    """A SASRec model directory over ``n_items`` items, reused when already built."""
    directory = WORK / f"sasrec-{n_items}"
    if (directory / "config.json").is_file():
        return directory
    start = time.perf_counter()
    if n_items <= 100_000:
        data = generate(SyntheticConfig(n_users=2_000, n_items=n_items, seed=0))
        data.save(WORK / f"data-{n_items}")
        dataset, info = data.dataset, {"dataset": str(WORK / f"data-{n_items}")}
        epochs = 3
    else:
        dataset, info, epochs = _clustered(n_items), {}, 1
    console.print(f"training SASRec on {dataset.n_events:,} events over {n_items:,} items")
    model = create("sasrec", epochs=epochs, progress=True).fit(dataset)
    info["how"] = f"{epochs} epoch(s) on {dataset.n_events:,} events, {dataset.n_users:,} users"
    model.save(directory, info=info)
    console.print(f"  trained in {time.perf_counter() - start:.0f} s")
    return directory


def _clustered(n_items: int, users: int = 20_000, per_user: int = 40) -> Dataset:
    rng = np.random.default_rng(0)
    cluster_size = 500
    clusters = n_items // cluster_size
    chosen = rng.integers(0, clusters, (users, 2))  # each user likes two clusters
    pick = rng.integers(0, 2, (users, per_user))
    cluster = np.take_along_axis(chosen, pick, axis=1)
    items = cluster * cluster_size + rng.integers(0, cluster_size, (users, per_user))
    events = pd.DataFrame(
        {
            "user": np.repeat([f"u{u}" for u in range(users)], per_user),
            "item": [f"i{i}" for i in items.ravel()],
            "timestamp": 1_700_000_000 + np.tile(np.arange(per_user) * 60, users),
        }
    )
    catalog = pd.DataFrame({"item": [f"i{i}" for i in range(n_items)]})
    return Dataset.from_frames(events, items=catalog, name=f"clustered-{n_items}")


# ---------------------------------------------------------------------------- measuring
def percentiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values) * 1e3
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "mean_ms": float(a.mean()), "n": len(a)}  # fmt: skip


def timed_pair(http: httpx.Client, event: dict[str, Any]) -> tuple[float, float]:
    """Post one event, then get that user's top 10: the seconds each call took."""
    t0 = time.perf_counter()
    response = http.post("/events", json=event)
    t1 = time.perf_counter()
    answer = http.get(f"/users/{event['user']}/recommendations", params={"k": 10})
    t2 = time.perf_counter()
    assert response.status_code == 200 and answer.status_code == 200, answer.text
    return t1 - t0, t2 - t1


def pair_figures(times: list[tuple[float, float]]) -> dict[str, dict[str, float]]:
    """Percentiles of the post, of the get and of the pair, from `timed_pair`s."""
    return {
        "post_event": percentiles([post for post, _ in times]),
        "get_top10": percentiles([get for _, get in times]),
        "pair": percentiles([post + get for post, get in times]),
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stage_means(metrics: str) -> dict[str, float]:
    """Mean server-side milliseconds per stage, from the Prometheus histograms."""
    sums = dict(re.findall(r'driftrec_stage_seconds_sum\{stage="(\w+)"\} ([\d.e+-]+)', metrics))
    counts = dict(re.findall(r'driftrec_stage_seconds_count\{stage="(\w+)"\} ([\d.e+-]+)', metrics))
    return {s: 1e3 * float(sums[s]) / float(counts[s]) for s in sums if float(counts[s]) > 0}


def latency(model_dir: Path, pairs: int, recall_users: int) -> dict[str, Any]:
    model = load(model_dir)
    n_items = model.n_items
    rng = np.random.default_rng(1)
    users = [str(u) for u in rng.choice(model.user_ids_, min(500, len(model.user_ids_)), False)]
    db = WORK / f"latency-{n_items}.db"
    db.unlink(missing_ok=True)
    indexes = len(list(default_cache_dir().glob("ivf-*.faiss")))
    console.print(f"starting the service on {n_items:,} items")
    start = time.perf_counter()
    server = start_server(
        model_dir, f"sqlite:///{db}", WORK / f"server-{n_items}.log", timeout=3_600
    )
    started = time.perf_counter() - start
    index_built = len(list(default_cache_dir().glob("ivf-*.faiss"))) > indexes
    posted: dict[str, list[Event]] = {}
    pair_t: list[tuple[float, float]] = []
    first_t = []
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for u in track(users, description="first request of each user"):
                t0 = time.perf_counter()  # the user's state is built from model and store
                http.get(f"/users/{u}/recommendations", params={"k": 10})
                first_t.append(time.perf_counter() - t0)
            for n in track(range(pairs), description=f"pairs at {n_items:,} items"):
                user = users[n % len(users)]
                history = model.history_events(user)
                item = history[int(rng.integers(len(history)))].item  # the user's own taste
                event = {"user": user, "item": item, "timestamp": 1_900_000_000 + n}
                pair_t.append(timed_pair(http, event))
                posted.setdefault(user, []).append(Event(item, 1_900_000_000 + n))
            metrics = http.get("/metrics").text
            health = http.get("/health").json()
            served = {}
            for user in users[:recall_users]:
                served[user] = [
                    i["item"]
                    for i in http.get(f"/users/{user}/recommendations", params={"k": 10}).json()[
                        "items"
                    ]
                ]
        memory = rss_mb(server.process.pid)
    finally:
        server.stop()
    # the same histories, in this process: bare recommend, and exact top 10 for recall
    rows = {u: model.history_events(u) + posted.get(u, []) for u in users[:recall_users]}
    bare = []
    for events in list(rows.values())[:200]:
        t0 = time.perf_counter()
        model.recommend(events=[events], k=10)
        bare.append(time.perf_counter() - t0)
    exact = {u: list(model.recommend(events=[e], k=10).item_ids[0]) for u, e in rows.items()}
    recall = float(np.mean([len(set(served[u]) & set(exact[u])) / 10 for u in rows]))
    return {
        "items": n_items,
        "model": model.name,
        "model_made": read_config(model_dir)["info"].get("how", ""),
        "index": health["index"],
        "startup_s": started,
        "startup_built_index": index_built,
        "first_get_top10": percentiles(first_t[10:]),  # the first ones also warm code paths
        **pair_figures(pair_t),
        "bare_recommend": percentiles(bare),
        "server_stages_mean_ms": stage_means(metrics),
        "recall@10_vs_exact": recall,
        "recall_users": len(rows),
        "server_rss_mb": memory,
    }


def floor(pairs: int, seconds: float) -> dict[str, Any]:
    """The stack alone (benchmarks/floor_app.py: FastAPI, pydantic, uvicorn, no work): pairs
    and single-event requests per second, the same way as the service's."""
    port = free_port()
    log = (WORK / "floor.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "floor_app:app", "--app-dir", str(ROOT / "benchmarks"),
         "--port", str(port), "--no-access-log", "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{url}/docs", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        with httpx.Client(base_url=url, timeout=60) as http:
            pair_t = [
                timed_pair(http, {"user": "u", "item": "i1", "timestamp": n}) for n in range(pairs)
            ]
        single = {}
        for clients in SINGLE_CLIENTS:
            with multiprocessing.get_context("fork").Pool(clients) as pool:
                start = time.perf_counter()
                done = pool.map(_post_loop, [(url, ["i1"], 1, seconds, w) for w in range(clients)])
                single[str(clients)] = sum(d[1] for d in done) / (time.perf_counter() - start)
    finally:
        process.terminate()
        process.wait(30)
    return {**pair_figures(pair_t), "single_requests_per_s_by_clients": single}


def _post_loop(args: tuple[str, list[str], int, float, int]) -> tuple[int, int]:
    """One load-generating client: posts events for ``seconds`` over one kept-alive connection.
    It uses the standard library's `http.client` rather than httpx, whose own CPU per request
    (on the 2 cores the server shares) would otherwise be much of what is measured."""
    url, items, batch, seconds, worker = args
    rng = np.random.default_rng(worker)
    sent = requests = 0
    deadline = time.monotonic() + seconds
    address = httpx.URL(url)
    connection = http.client.HTTPConnection(address.host, address.port, timeout=60)
    headers = {"Content-Type": "application/json"}
    try:
        while time.monotonic() < deadline:
            events = [
                {"user": f"w{worker}-{int(u)}", "item": items[int(i)], "timestamp": 1_900_000_000}
                for u, i in zip(rng.integers(0, 1_000, batch), rng.integers(0, len(items), batch),
                                strict=True)
            ]  # fmt: skip
            body = {"events": events} if batch > 1 else events[0]
            connection.request("POST", "/events", json.dumps(body), headers)
            response = connection.getresponse()
            answer = response.read()
            assert response.status == 200, answer
            sent += json.loads(answer)["accepted"]
            requests += 1
    finally:
        connection.close()
    return sent, requests


def ingest(model_dir: Path, store: str, seconds: float) -> list[dict[str, Any]]:
    items = [str(i) for i in load(model_dir).item_ids_[:5_000]]
    schema = None
    if store == "sqlite":
        db = WORK / "ingest.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{db}"
    else:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(PG)
        with admin.begin() as c:
            c.execute(sa.text(f"create schema {schema}"))
        url = f"{PG}?options=-csearch_path%3D{schema}"
    server = start_server(model_dir, url, WORK / f"ingest-{store}.log", "--max-batch", "500")
    results = []
    try:
        for batch, clients in ((500, 2), *((1, c) for c in SINGLE_CLIENTS)):
            with multiprocessing.get_context("fork").Pool(clients) as pool:
                start = time.perf_counter()
                done = pool.map(
                    _post_loop, [(server.url, items, batch, seconds, w) for w in range(clients)]
                )
                elapsed = time.perf_counter() - start
            events = sum(d[0] for d in done)
            requests = sum(d[1] for d in done)
            results.append({
                "store": store, "batch": batch, "clients": clients, "seconds": elapsed,
                "events_per_s": events / elapsed, "requests_per_s": requests / elapsed,
            })  # fmt: skip
            console.print(
                f"  {store} batch {batch}: {events / elapsed:,.0f} events/s,"
                f" {requests / elapsed:,.0f} requests/s"
            )
    finally:
        server.stop()
        if schema is not None:
            with admin.begin() as c:
                c.execute(sa.text(f"drop schema {schema} cascade"))
            admin.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 1_000_000])
    parser.add_argument("--pairs", type=int, default=1_000)
    parser.add_argument("--recall-users", type=int, default=300)
    parser.add_argument("--ingest-seconds", type=float, default=10.0)
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DRIFTREC_CACHE", str(WORK / "cache"))
    records: list[dict[str, Any]] = []
    models = {n: build_model(n) for n in args.sizes}
    for model_dir in models.values():
        record = latency(model_dir, args.pairs, args.recall_users)
        records.append({"kind": "latency", **record})
        console.print(record)
    base = floor(args.pairs, args.ingest_seconds)
    records.append({"kind": "floor", **base})
    console.print(base)
    smallest = models[min(models)]
    for store in args.stores:
        records += [{"kind": "ingest", **r} for r in ingest(smallest, store, args.ingest_seconds)]
    write_results("serve_latency", records)
    lat = [r for r in records if r["kind"] == "latency"]

    def pct(d: dict[str, float]) -> str:
        return f"{d['p50_ms']:.1f} / {d['p99_ms']:.1f}"

    rows = [
        [f"{r['items']:,}", r["index"], pct(r["post_event"]), pct(r["get_top10"]),
         f"**{pct(r['pair'])}**", pct(r["bare_recommend"]), pct(r["first_get_top10"]),
         f"{r['recall@10_vs_exact']:.3f}", f"{r['server_rss_mb']:,.0f}",
         f"{r['startup_s']:.0f}" + (" (index built)" if r["startup_built_index"] else "")]
        for r in lat
    ]  # fmt: skip
    rows.append(["floor: the stack doing no work", "", pct(base["post_event"]),
                 pct(base["get_top10"]), pct(base["pair"]), "", "", "", "", ""])  # fmt: skip
    stages = sorted({s for r in lat for s in r["server_stages_mean_ms"]})
    stage_rows = [
        [f"{r['items']:,}"]
        + [f"{r['server_stages_mean_ms'].get(s, float('nan')):.2f}" for s in stages]
        for r in lat
    ]  # fmt: skip
    ing = [r for r in records if r["kind"] == "ingest"]
    ingest_rows = [
        [r["store"], str(r["batch"]), str(r["clients"]), f"{r['events_per_s']:,.0f}",
         f"{r['requests_per_s']:,.0f}"]
        for r in ing
    ]  # fmt: skip
    ingest_rows += [
        ["floor: the stack doing no work", "1", clients, f"{rate:,.0f}", f"{rate:,.0f}"]
        for clients, rate in base["single_requests_per_s_by_clients"].items()
    ]
    body = "\n\n".join([
        "## Service latency, recall, memory and ingest (issue 14)",
        f"SASRec served by one `driftrec serve` process; this script is the HTTP client in"
        f" another process, on the same machine. {args.pairs} post-then-recommend pairs per"
        " size, users with a training history. Models: "
        + "; ".join(f"{r['items']:,} items: {r['model_made']}" for r in lat) + ".",
        markdown_table(["items", "index", "POST /events p50/p99 ms", "GET top-10 p50/p99 ms",
                        "pair p50/p99 ms", "bare recommend p50/p99 ms",
                        "a user's first GET p50/p99 ms", "recall@10 vs exact", "server RSS MB",
                        "start-up s"], rows),
        "Pairs run once every user has been served (their state is live); a user's first"
        " request builds that state from the model's history and the store, timed apart.",
        "Server-side mean milliseconds per stage (from /metrics):",
        markdown_table(["items", *stages], stage_rows),
        f"Ingest ({args.ingest_seconds:.0f} s per row, client processes posting concurrently,"
        " each over one kept-alive connection with the standard library's http.client, each"
        " waiting for its answer before the next request):",
        markdown_table(["store", "events per request", "client processes", "events/s",
                        "requests/s"], ingest_rows),
    ])  # fmt: skip
    update_markdown("serve_latency", body)
    console.print(body)


if __name__ == "__main__":
    main()

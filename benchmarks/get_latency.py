"""GET /users/{id}/recommendations latency against a running `driftrec serve`, from several
client threads: p50 and p99 in milliseconds, after a warm-up pass of the same size.

Used to compare two versions of the service over the same model (issue 16: what request ids and
the served-list log cost a GET): start each in turn on the same model with a fresh store and
alternate them a few times, e.g.

  .venv/bin/python -m driftrec.cli.main serve --model runs/simulate/models/gru4rec \\
      --db sqlite:////tmp/lat.db --port 8001 &
  .venv/bin/python benchmarks/get_latency.py http://127.0.0.1:8001 --users 150 -n 2000 -t 4

Users are asked for in turn as u0000, u0001, ... (the synthetic generator's ids). Targets only
the URL given (127.0.0.1 in every documented use) and stops after ``-n`` requests.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx


def _client(url: str, users: int, requests: int, offset: int) -> list[float]:
    seconds = []
    with httpx.Client(base_url=url) as client:
        for j in range(requests):
            user = f"u{(offset * 997 + j) % users:04d}"
            start = time.perf_counter()
            answer = client.get(f"/users/{user}/recommendations", params={"k": 10})
            seconds.append(time.perf_counter() - start)
            answer.raise_for_status()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--users", type=int, default=150)
    parser.add_argument("-n", "--requests", type=int, default=2000)
    parser.add_argument("-t", "--threads", type=int, default=4)
    args = parser.parse_args()
    each = args.requests // args.threads

    def run_all() -> list[float]:
        with ThreadPoolExecutor(args.threads) as pool:
            runs = pool.map(lambda t: _client(args.url, args.users, each, t), range(args.threads))
            return sorted(s for run in runs for s in run)

    run_all()  # the first pass warms the service's caches
    latency = run_all()
    print(
        json.dumps(
            {
                "requests": len(latency),
                "threads": args.threads,
                "p50_ms": 1000 * latency[len(latency) // 2],
                "p99_ms": 1000 * latency[int(len(latency) * 0.99)],
            }
        )
    )


if __name__ == "__main__":
    main()

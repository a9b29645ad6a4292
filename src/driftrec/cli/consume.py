"""`driftrec consume`: a stream consumer that stores the events replicas published with
``--ingest stream`` (store/stream.py), until stopped (SIGTERM, Ctrl-C) or, with ``until_idle``,
until the stream is drained."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from driftrec.cli.output import console
from driftrec.store import EventStore
from driftrec.store.shared import connect
from driftrec.store.stream import RedisEventStream, StreamConsumer

REPORT_EVERY = 10.0  # seconds between progress lines
log = logging.getLogger("driftrec.consume")


def consume(
    db_url: str,
    state_url: str,
    prefix: str,
    partitions: int,
    name: str | None,
    lease: float,
    until_idle: bool,
) -> dict[str, int]:
    """Run a consumer; returns what it stored, erased and took over."""
    store = EventStore(db_url)
    stream = RedisEventStream(connect(state_url), prefix, partitions)
    consumer = StreamConsumer(stream, store, name, lease)
    stop = threading.Event()

    def stopping(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    totals = {"events": 0, "duplicates": 0, "erasures": 0, "claimed": 0}
    console.print(f"consumer {consumer.name}: storing {prefix}'s event stream into the store")
    reported = time.monotonic()
    failures = 0
    try:
        while not stop.is_set():
            try:
                done = consumer.step()
                failures = 0
            except Exception as err:  # the store or Redis away: wait, then carry on
                failures += 1
                log.error("consumer step failed (%s); retrying", err, exc_info=err)
                stop.wait(min(10.0, 0.2 * 2**failures))
                continue
            for key in totals:
                totals[key] += getattr(done, key)
            if time.monotonic() - reported > REPORT_EVERY:
                reported = time.monotonic()
                console.print(
                    f"{consumer.name}: partitions {sorted(consumer.owned)}, stored"
                    f" {totals['events']:,} events ({totals['duplicates']:,} redelivered),"
                    f" {totals['erasures']:,} erasures"
                )
            if until_idle and not done.events + done.erasures + done.claimed and not consumer.lag():
                break
    finally:
        consumer.close()
        store.close()
    return totals


__all__ = ["consume"]

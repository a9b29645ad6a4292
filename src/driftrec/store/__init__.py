"""Where events live once accepted: the event store (knows nothing of models)."""

from driftrec.store.events import EventStore, StoredEvent

__all__ = ["EventStore", "StoredEvent"]

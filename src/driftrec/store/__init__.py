"""Where events and client-added items live once accepted (knows nothing of models)."""

from driftrec.store.events import CatalogItem, EventStore, StoredEvent

__all__ = ["CatalogItem", "EventStore", "StoredEvent"]

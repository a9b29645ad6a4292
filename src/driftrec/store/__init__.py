"""Where events and client-added items live once accepted, with the lists served and shown
(knows nothing of models)."""

from driftrec.store.events import CatalogItem, EventStore, StoredEvent
from driftrec.store.feedback import Impression, Served

__all__ = ["CatalogItem", "EventStore", "Impression", "Served", "StoredEvent"]

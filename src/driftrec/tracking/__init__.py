"""Following users live: their recent events, interest profiles, drift and explanations, and the
tracker that answers for them from a model, an index and the event store. The service and
replay (streaming evaluation) both go through `Tracker`, so they track users the same way."""

from driftrec.tracking.catalog import Catalog
from driftrec.tracking.engine import Engine, model_version
from driftrec.tracking.topics import Topics
from driftrec.tracking.tracker import Tracker

__all__ = ["Catalog", "Engine", "Topics", "Tracker", "model_version"]

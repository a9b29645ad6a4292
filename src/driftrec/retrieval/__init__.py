"""Finding a query's best items without scoring the whole catalog: exact and approximate indexes
over the item vectors of a factorised model (`models.capabilities.Factorised`)."""

from driftrec.retrieval.index import ApproximateIndex, ExactIndex, ItemIndex, Retrieved

__all__ = ["ApproximateIndex", "ExactIndex", "ItemIndex", "Retrieved"]

"""Language-model text features: a cached sentence encoder, item texts and multi-hot features."""

from driftrec.text.cache import EmbeddingCache, text_hash
from driftrec.text.encoder import (
    DEFAULT_TEXT_MODEL,
    EncodeStats,
    TextEncoder,
    default_cache_dir,
    get_encoder,
    resolve_model,
)
from driftrec.text.items import (
    FEATURE_KINDS,
    empty_text_count,
    item_features,
    item_text,
    item_texts,
    multi_hot,
    multi_hot_columns,
)

__all__ = [
    "DEFAULT_TEXT_MODEL",
    "FEATURE_KINDS",
    "EmbeddingCache",
    "EncodeStats",
    "TextEncoder",
    "default_cache_dir",
    "empty_text_count",
    "get_encoder",
    "item_features",
    "item_text",
    "item_texts",
    "multi_hot",
    "multi_hot_columns",
    "resolve_model",
    "text_hash",
]

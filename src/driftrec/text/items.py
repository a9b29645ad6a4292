"""Item features from the catalog: one readable text per item for the language model, and the
multi-hot category/tag vectors that serve as the no-language-model baseline."""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftrec.data.dataset import Dataset
from driftrec.data.fields import split_categories
from driftrec.errors import InputError
from driftrec.text.encoder import DEFAULT_TEXT_MODEL, get_encoder

log = logging.getLogger(__name__)

FEATURE_KINDS = ("text", "multihot")
MAX_TEXT_TAGS = 20  # tags written into an item text (importers list the most used first)
MAX_DENSE_BYTES = 4 << 30  # a dense multi-hot matrix larger than this is refused


def _column(items: pd.DataFrame, name: str) -> list[Any]:
    column = items.get(name)
    return [None] * len(items) if column is None else list(column)


def _mentions(text: str, term: str) -> bool:
    """Whether ``term`` appears in ``text`` as a whole word/phrase (case-insensitive)."""
    return re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, flags=re.IGNORECASE) is not None


def _sentence(part: str) -> str:
    part = part.strip()
    return part if not part or part[-1] in ".!?" else part + "."


def _unmentioned(values: list[str], text: str) -> list[str]:
    seen: set[str] = set()
    out = []
    for value in values:
        key = value.casefold()
        if key not in seen and not _mentions(text, value):
            out.append(value)
        seen.add(key)
    return out


def item_text(title: str, text: str, categories: list[str], tags: list[str]) -> str:
    """Title, categories, description and tags as one text, without repeating what the
    description already says (a description that starts with the title keeps it first). The
    one home of the text a language model reads for an item: importers keep the parts in
    their columns and never compose it themselves."""
    title, text = title.strip(), text.strip()
    bare_title = title.rstrip(".").strip()
    has_title = (
        bool(bare_title)
        and re.match(rf"{re.escape(bare_title)}(?!\w)", text, flags=re.IGNORECASE) is not None
    )
    cats = _unmentioned(categories, text)
    # a tag that repeats a category or the description adds nothing
    tag_list = _unmentioned(tags[:MAX_TEXT_TAGS], " | ".join([text, *categories]))
    cat_part = f"Categories: {', '.join(cats)}." if cats else ""
    tag_part = f"Tags: {', '.join(tag_list)}." if tag_list else ""
    if has_title:  # the description leads with the title: keep it first, add what it lacks
        parts = [_sentence(text), cat_part, tag_part]
    else:
        parts = [_sentence(bare_title), cat_part, _sentence(text), tag_part]
    return " ".join(p for p in parts if p)


def item_texts(dataset: Dataset) -> list[str]:
    """One text per item index for the language model ("" for an item the catalog says nothing
    about; count those with `empty_text_count`)."""
    items = dataset.items
    n = dataset.n_items
    titles = _column(items, "title")
    texts = _column(items, "text")
    categories = _column(items, "categories")
    tags = _column(items, "tags")
    return [
        item_text(
            "" if titles[i] is None or titles[i] != titles[i] else str(titles[i]),
            "" if texts[i] is None or texts[i] != texts[i] else str(texts[i]),
            split_categories(categories[i]),
            split_categories(tags[i]),
        )
        for i in range(n)
    ]


def empty_text_count(texts: list[str]) -> int:
    """How many items have no text at all: they all get the same (uninformative) vector."""
    return sum(1 for t in texts if not t.strip())


def multi_hot_columns(dataset: Dataset, min_count: int = 1) -> list[str]:
    """Names of the `multi_hot` columns, in column order."""
    return _multi_hot(dataset, min_count)[1]


def _multi_hot(dataset: Dataset, min_count: int) -> tuple[np.ndarray, list[str]]:
    items = dataset.items
    rows: list[set[str]] = []
    for cats, tags in zip(_column(items, "categories"), _column(items, "tags"), strict=True):
        features = {f"category:{c}" for c in split_categories(cats)}
        features |= {f"tag:{t.lower()}" for t in split_categories(tags)}
        rows.append(features)
    counts = Counter(f for row in rows for f in row)
    keep = [f for f, c in counts.items() if c >= max(1, min_count)]
    # categories first, then tags; each alphabetically, so the columns are reproducible
    columns = sorted(keep, key=lambda f: (not f.startswith("category:"), f))
    size = dataset.n_items * len(columns) * 4
    if size > MAX_DENSE_BYTES:
        raise InputError(
            f"multi-hot features would take {size / 2**30:.1f} GiB ({dataset.n_items} items x "
            f"{len(columns)} features); raise min_count to drop rare tags"
        )
    index = {f: j for j, f in enumerate(columns)}
    matrix = np.zeros((dataset.n_items, len(columns)), np.float32)
    for i, row in enumerate(rows):
        cols = [index[f] for f in row if f in index]
        if cols:
            matrix[i, cols] = 1.0 / np.sqrt(len(cols))  # unit rows: every item weighs the same
    return matrix, columns


def multi_hot(dataset: Dataset, min_count: int = 1) -> np.ndarray:
    """(n_items, n_features) float32 one-hot categories and tags, L2-normalised rows (zero rows
    for items with none); features on fewer than ``min_count`` items are dropped. The baseline
    item features that need no language model."""
    return _multi_hot(dataset, min_count)[0]


def item_features(
    dataset: Dataset,
    kind: str,
    text_model: str = DEFAULT_TEXT_MODEL,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> np.ndarray:
    """(n_items, dim) float32 item features: ``"text"`` (language-model embeddings of
    `item_texts`) or ``"multihot"`` (`multi_hot`)."""
    if kind == "text":
        texts = item_texts(dataset)
        empty = empty_text_count(texts)
        if empty:
            log.warning("%d of %d items have no text; they share one vector", empty, len(texts))
        return get_encoder(text_model, cache_dir).encode(texts, progress=progress)
    if kind == "multihot":
        return multi_hot(dataset)
    raise InputError(
        f"unknown item feature kind {kind!r}; choose one of: {', '.join(FEATURE_KINDS)}"
    )

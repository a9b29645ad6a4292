"""The item catalog the service shows: titles, texts and categories by item id, grown by clients.

A model knows items by index only; answers name them with what the training dataset said about
them and what clients have put since (`PUT /items`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from driftrec.data.dataset import Dataset
from driftrec.store import CatalogItem
from driftrec.text.items import item_text


class Catalog:
    """Titles, texts and categories of items, looked up by id (an unknown id has none)."""

    def __init__(self, items: Sequence[CatalogItem] = ()) -> None:
        self._items: dict[str, CatalogItem] = {}
        self.put(items)

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> Catalog:
        frame = dataset.items
        return cls(
            CatalogItem(
                str(item),
                str(frame["title"].iat[i]),
                str(frame["text"].iat[i]),
                tuple(str(c) for c in frame["categories"].iat[i]),
            )
            for i, item in enumerate(dataset.item_ids)
        )

    def put(self, items: Sequence[CatalogItem]) -> None:
        self._items.update({i.item: i for i in items})

    def get(self, item: str) -> CatalogItem:
        return self._items.get(item) or CatalogItem(item)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def categories(self, item_ids: Sequence[str] | np.ndarray) -> list[tuple[str, ...]]:
        return [self.get(str(i)).categories for i in item_ids]

    def text(self, item: str) -> str:
        """The text a language model reads for the item (title, categories, description)."""
        i = self.get(item)
        return item_text(i.title, i.text, list(i.categories), [])


__all__ = ["Catalog"]

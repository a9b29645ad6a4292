"""Item vectors of the neural models: a learned id embedding, plus content when there is some.

With content features (frozen language-model embeddings of the item text, or multi-hot genres and
tags), an item's vector is ``id_embedding + adapter(features)``. The adapter is trained, the
features are not. An item without training events (a cold item, or one added after training with
`add_items`) has no trained id embedding, so its id part is zero and it is scored from its
content alone. During training the id part of every item is dropped at random (``id_dropout``) so
the adapter learns to stand on its own for such items.
"""

from __future__ import annotations

import torch
from torch import nn


def small_init(embedding: nn.Embedding) -> None:
    """Normal(0, 0.02) weights, as in GPT-2/SASRec, keeping the padding row at zero."""
    nn.init.normal_(embedding.weight, std=0.02)
    if embedding.padding_idx is not None:
        with torch.no_grad():
            embedding.weight[embedding.padding_idx].zero_()


class ItemEmbedding(nn.Module):
    """(n_items + 1, d) item table, row 0 = padding; call it with indices like nn.Embedding."""

    def __init__(
        self,
        n_items: int,
        d: int,
        features: torch.Tensor | None = None,
        known: torch.Tensor | None = None,
        id_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.ids = nn.Embedding(n_items + 1, d, padding_idx=0)
        small_init(self.ids)
        self.id_dropout = id_dropout
        self.adapter: nn.Module | None = None
        if features is not None:
            if len(features) != n_items:
                raise ValueError(f"{len(features)} feature rows for {n_items} items")
            width = features.shape[1]
            # Padding row of zeros first; features are fixed inputs, saved with the model's state.
            padded = torch.cat([torch.zeros(1, width), features.float()])  # (n_items + 1, f)
            self.register_buffer("features", padded, persistent=False)
            self.adapter = nn.Sequential(nn.Linear(width, d), nn.GELU(), nn.Linear(d, d))
            known = torch.ones(n_items, dtype=torch.bool) if known is None else known
            # Only items with training events have a trained id embedding.
            mask = torch.cat([torch.zeros(1, dtype=torch.bool), known.bool()]).float()
            self.register_buffer("known", mask, persistent=False)  # (n_items + 1,)

    def _keep(self) -> torch.Tensor:
        """(n_items + 1,) 1 where an item's id part is used: known items, minus id dropout."""
        if self.training and self.id_dropout > 0:
            return self.known * (torch.rand_like(self.known) >= self.id_dropout)
        return self.known

    def _vectors(self, items: torch.Tensor) -> torch.Tensor:
        content = self.adapter(self.features[items]) * (items > 0).unsqueeze(-1)  # (..., d)
        return self.ids(items) * self._keep()[items].unsqueeze(-1) + content

    @property
    def weight(self) -> torch.Tensor:
        """(n_items + 1, d) every item's vector, as the output layer uses it."""
        if self.adapter is None:
            return self.ids.weight
        return self._vectors(torch.arange(self.ids.num_embeddings))

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """Vectors of the given item indices (any shape), padding (0) gives zeros."""
        return self.ids(items) if self.adapter is None else self._vectors(items)

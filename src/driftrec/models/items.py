"""Item vectors of the neural models: a learned id embedding, plus content when there is some.

With content features (frozen language-model embeddings of the item text, or multi-hot genres and
tags), an item with training events is ``id_embedding + adapter(features)``. An item without any
(a cold item, or one added after training with `add_items`) has no trained id embedding; its
vector comes from `ColdItems`: a second adapter of the features, calibrated, standing in for the
whole vector. Its logit also gets a popularity prior: how popular the items nearest to it in
content are (`neighbour_popularity`), which the adapter, fitted to the ids it has, misses.

The cold adapter learns in an auxiliary loss (see `NeuralSequenceModel._loss`): the same softmax,
with a random share (``cold_share``) of the items swapped for their cold vectors, and the user
side and the warm vectors held fixed. So a cold item is scored against real warm vectors (its
score is comparable with theirs) while the warm model trains exactly as without cold items. The
calibration (a scale and an offset of the cold logits) is fitted in the same term, on items the
cold adapter never learns from, because that is what a cold item is to it.
"""

from __future__ import annotations

import torch
from torch import nn

from driftrec.models.training import train_apart

PRIOR_NEIGHBOURS = 10  # known items a cold item's popularity prior averages over


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
        popularity: torch.Tensor | None = None,
        warm_content: bool = True,
    ) -> None:
        """``known`` (n_items,) marks the items with training events; ``popularity`` (n_items,)
        is their log(1 + training events), the source of the cold items' prior; without
        ``warm_content`` an item with training events is its id embedding alone (the content
        only serves the cold items, and `init_ids_from`)."""
        super().__init__()
        self.ids = nn.Embedding(n_items + 1, d, padding_idx=0)
        small_init(self.ids)
        self.adapter: nn.Module | None = None
        self.warm_content = warm_content
        if features is not None:
            if len(features) != n_items:
                raise ValueError(f"{len(features)} feature rows for {n_items} items")
            width = features.shape[1]
            # Padding row of zeros first; features are fixed inputs, saved with the model's state.
            padded = torch.cat([torch.zeros(1, width), features.float()])  # (n_items + 1, f)
            self.register_buffer("features", padded, persistent=False)
            self.adapter = _adapter(width, d)
            # Trained by its own loss term, with its gradients clipped on their own.
            self.cold = train_apart(ColdItems(width, d))
            known = torch.ones(n_items, dtype=torch.bool) if known is None else known
            # Only items with training events have a trained id embedding.
            mask = torch.cat([torch.zeros(1, dtype=torch.bool), known.bool()]).float()
            self.register_buffer("known", mask, persistent=False)  # (n_items + 1,)
            popularity = torch.zeros(n_items) if popularity is None else popularity.float()
            self.register_buffer("popularity", popularity, persistent=False)  # (n_items,)
            prior = neighbour_popularity(features, popularity, known.bool())
            self.register_buffer("prior", torch.cat([torch.zeros(1), prior]), persistent=False)

    @torch.no_grad()
    def init_ids_from(self, content: torch.Tensor) -> None:
        """Start the id embeddings (n_items, f) from the items' ``content``: its first principal
        components, scaled to `small_init`'s spread, so items described alike start close and
        a rare item starts where its text puts it (as LLMInit and LLM-ESR initialise SASRec
        from language-model embeddings). Dimensions beyond the components keep their draw."""
        x = content.float() - content.float().mean(dim=0)  # (n_items, f)
        u, s, _ = torch.linalg.svd(x, full_matrices=False)
        k = min(self.ids.embedding_dim, len(s))
        z = u[:, :k] * s[:k]  # (n_items, k) coordinates on the principal axes
        self.ids.weight[1:, :k] = z * (0.02 / z.std().clamp_min(1e-12))

    def _vectors(self, items: torch.Tensor) -> torch.Tensor:
        f = self.features[items]  # (..., f)
        vectors = self.ids(items)  # (..., d)
        if self.warm_content:
            vectors = vectors + self.adapter(f)
        cold = (self.known[items] == 0) & (items > 0)  # (...,)
        if bool(cold.any()):  # never for training inputs, which hold known items only
            vectors = torch.where(cold.unsqueeze(-1), self.cold(f), vectors)
        return vectors * (items > 0).unsqueeze(-1)

    def cold_vectors(self) -> torch.Tensor:
        """(n_items + 1, d) every item's vector as if it had no training events, before
        calibration (row 0 zeros)."""
        rows = torch.arange(len(self.features))
        return self.cold.adapter(self.features) * (rows > 0).unsqueeze(-1)

    def logit_bias(self, boost: float = 0.0) -> torch.Tensor | None:
        """(n_items + 1,) what scoring adds to each item's logit: for items without training
        events the cold offset, their weighted popularity prior and ``boost``; 0 for the others;
        None without content."""
        if self.adapter is None:
            return None
        rows = torch.arange(len(self.known))
        return (self.cold.bias(self.prior) + boost) * ((self.known == 0) & (rows > 0))

    @property
    def weight(self) -> torch.Tensor:
        """(n_items + 1, d) every item's vector, as the output layer uses it."""
        if self.adapter is None:
            return self.ids.weight
        return self._vectors(torch.arange(self.ids.num_embeddings))

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """Vectors of the given item indices (any shape), padding (0) gives zeros."""
        return self.ids(items) if self.adapter is None else self._vectors(items)


class ColdItems(nn.Module):
    """The vector of an item without training events, from its content alone.

    Logits of these vectors are ``scale * (h · adapter(features)) + offset + prior_weight *
    prior``, the prior being the item's `neighbour_popularity`. The adapter fits the
    items it is trained on, content and all, so its raw logits are over-confident on items it has
    never seen, which is what a cold item is: left so, cold items crowd warm ones out of the top
    of the ranking. ``scale`` and ``offset`` are fitted on calibration items the adapter never
    learns from (see `NeuralSequenceModel._loss`), so they correct exactly that; the prior's
    weight is fitted there too, so the prior counts as much as it predicts.
    """

    def __init__(self, width: int, d: int) -> None:
        super().__init__()
        self.adapter = _adapter(width, d)
        self.scale = nn.Parameter(torch.ones(()))
        self.offset = nn.Parameter(torch.zeros(()))
        self.prior_weight = nn.Parameter(torch.zeros(()))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(..., f) features to (..., d) calibrated vectors (the offset is added to logits)."""
        return self.scale * self.adapter(features)

    def bias(self, prior: torch.Tensor) -> torch.Tensor:
        """What is added to the logits of cold items with this popularity ``prior`` (any shape)."""
        return self.offset + self.prior_weight * prior


def neighbour_popularity(
    features: torch.Tensor,
    popularity: torch.Tensor,
    known: torch.Tensor,
    k: int = PRIOR_NEIGHBOURS,
    batch: int = 2048,
) -> torch.Tensor:
    """(n,) for every item, the mean ``popularity`` of the ``k`` known items most similar to it
    in content (cosine of ``features``, never the item itself), standardised over the known items.

    An item without training events has no popularity of its own, but the items nearest to it
    in content do (the same series, genre and period), and on MovieLens that predicts which
    cold item gets watched. Computed from known items only, so items added later change nobody
    else's prior."""
    n = len(features)
    index = torch.nonzero(known).squeeze(1)  # (n_known,)
    k = min(k, len(index) - 1)
    if k < 1:
        return torch.zeros(n)
    unit = nn.functional.normalize(features.float(), dim=1)
    out = torch.empty(n)
    for lo in range(0, n, batch):
        rows = torch.arange(lo, min(lo + batch, n))
        sim = unit[rows] @ unit[index].T  # (b, n_known)
        sim[rows[:, None] == index[None, :]] = -torch.inf  # never the item itself
        top = sim.topk(k, dim=1).indices  # (b, k)
        out[rows] = popularity[index][top].mean(dim=1)
    ref = out[index]
    return (out - ref.mean()) / ref.std().clamp_min(1e-6)


def _adapter(width: int, d: int) -> nn.Module:
    """Features (..., width) to item space (..., d): a small two-layer MLP."""
    return nn.Sequential(nn.Linear(width, d), nn.GELU(), nn.Linear(d, d))

"""GRU4Rec: a recurrent network over the recent events (short-term interest).

Hidasi et al., "Session-based Recommendations with Recurrent Neural Networks", ICLR 2016, here
trained like the other neural models: next-item cross-entropy at every position of the same
windows, with the output layer sharing the item embedding.
"""

from __future__ import annotations

import torch
from torch import nn

from driftrec.models.items import ItemEmbedding
from driftrec.models.neural import NeuralSequenceModel
from driftrec.text.encoder import DEFAULT_TEXT_MODEL


class GRU4RecNet(nn.Module):
    def __init__(self, item_emb: ItemEmbedding, d: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.item_emb = item_emb
        self.drop = nn.Dropout(dropout)
        self.gru = nn.GRU(
            d, d, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.ln_f = nn.LayerNorm(d)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        items = batch["items"]  # (B, L), left-padded
        length = items.shape[1]
        real = (items > 0).sum(dim=1)  # (B,)
        # Rotate each row so its events come first, run the GRU over real events only (packed),
        # rotate back: the state at an event never depends on how much padding came before it.
        shift = (torch.arange(length) + (length - real)[:, None]) % length  # (B, L)
        x = self.drop(self.item_emb(items.gather(1, shift)))  # (B, L, d), events first
        packed = nn.utils.rnn.pack_padded_sequence(
            x, real.clamp(min=1), batch_first=True, enforce_sorted=False
        )
        h, _ = nn.utils.rnn.pad_packed_sequence(
            self.gru(packed)[0], batch_first=True, total_length=length
        )
        back = (torch.arange(length) - (length - real)[:, None]) % length
        h = h.gather(1, back[..., None].expand(-1, -1, h.shape[2]))  # (B, L, d), left-padded
        return self.ln_f(self.drop(h))


class GRU4Rec(NeuralSequenceModel):
    """Recurrent next-item model over the last ``max_len`` events."""

    name = "gru4rec"

    def __init__(
        self,
        hidden: int = 64,
        layers: int = 1,
        max_len: int = 50,
        dropout: float | str = "auto",
        repeat_bias: bool = True,
        features: str = "none",
        text_fusion: str = "init",
        text_model: str = DEFAULT_TEXT_MODEL,
        cold_share: float = 0.5,
        cold_boost: float = 0.0,
        cold_budget: float | None = 0.02,
        cold_prior_weight: float | None = None,
        loss: str = "auto",
        negatives: int = 1024,
        gbce_t: float = 0.75,
        epochs: int = 200,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        warmup_steps: int = 100,
        patience: int = 20,
        time_budget: float | None = None,
        seed: int = 0,
        threads: int | None = None,
        checkpoint_dir: str | None = None,
        progress: bool = True,
    ) -> None:
        self._configure(locals())

    def _build(self, item_emb: ItemEmbedding) -> GRU4RecNet:
        return GRU4RecNet(item_emb, self.hidden, self.layers, self.dropout_used_)

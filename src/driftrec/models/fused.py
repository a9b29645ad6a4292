"""Long + short interest, fused by a learned gate.

The short-term side is a SASRec Transformer over the last ``max_len`` events. The long-term side
pools a separate item embedding over a much longer window (``long_len`` events before the recent
window plus the recent window itself): a FISM-style, order-free summary of lasting taste that needs
no per-user parameters, so it answers for any history. A gate g in (0, 1) at every position mixes
the two: h = g·short + (1 - g)·long. A user whose taste just changed should be served by the short
side (g near 1), a stable user by both; `gate(histories)` reports g per user as a drift signal.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from driftrec.data.histories import Histories
from driftrec.models.batching import padded, training_windows
from driftrec.models.items import ItemEmbedding, small_init
from driftrec.models.neural import NeuralSequenceModel
from driftrec.models.sasrec import SASRec, SASRecNet
from driftrec.params import NON_NEGATIVE, POSITIVE_INT, SIZE, Rule
from driftrec.text.encoder import DEFAULT_TEXT_MODEL


class FusedNet(nn.Module):
    def __init__(
        self, item_emb: ItemEmbedding, d: int, layers: int, heads: int, max_len: int, dropout: float
    ) -> None:
        super().__init__()
        self.short = SASRecNet(item_emb, d, layers, heads, max_len, dropout, False, False)
        self.item_emb = item_emb  # output layer shared with the short side
        self.long_emb = nn.Embedding(item_emb.ids.num_embeddings, d, padding_idx=0)
        self.long_proj = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))
        self.gate = nn.Linear(2 * d, 1)
        self.drop = nn.Dropout(dropout)
        small_init(self.long_emb)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, L, d) fused hidden state at every position."""
        return self.fuse(batch)[0]

    def fuse(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, d) fused hidden states and the (B, L) gate: the weight of the short side."""
        items, prefix = batch["items"], batch["prefix"]  # (B, L), (B, P)
        short = self.short(batch)  # (B, L, d)
        # Running mean of long-term embeddings over the prefix and the window up to each position.
        running = torch.cumsum(self.long_emb(items), dim=1)  # (B, L, d)
        counts = torch.cumsum((items > 0).float(), dim=1)  # (B, L)
        prefix_sum = self.long_emb(prefix).sum(dim=1, keepdim=True)  # (B, 1, d)
        prefix_count = (prefix > 0).float().sum(dim=1, keepdim=True)  # (B, 1)
        mean = (running + prefix_sum) / (counts + prefix_count).clamp(min=1.0).unsqueeze(-1)
        long = self.long_proj(self.drop(mean))  # (B, L, d)
        g = torch.sigmoid(self.gate(torch.cat([short, long], dim=-1)))  # (B, L, 1)
        return g * short + (1 - g) * long, g.squeeze(-1)


class FusedInterest(NeuralSequenceModel):
    """Gated fusion of a long pooled history and a short self-attentive window."""

    name = "fused"
    param_rules: ClassVar[dict[str, Rule]] = {
        **NeuralSequenceModel.param_rules,
        "heads": POSITIVE_INT,
        "long_len": SIZE,
        "gate_balance": NON_NEGATIVE,
    }
    param_constraints = SASRec.param_constraints  # the short side is a SASRec network

    def __init__(
        self,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 2,
        max_len: int = 50,
        long_len: int = 200,
        dropout: float | str = "auto",
        repeat_bias: bool = True,
        features: str = "none",
        text_fusion: str = "init",
        text_model: str = DEFAULT_TEXT_MODEL,
        cold_share: float = 0.5,
        cold_boost: float = 0.0,
        cold_budget: float | None = 0.02,
        cold_prior_weight: float | None = None,
        gate_balance: float = 1.0,
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

    def _build(self, item_emb: ItemEmbedding) -> FusedNet:
        return FusedNet(
            item_emb, self.hidden, self.layers, self.heads, self.max_len, self.dropout_used_
        )

    @property
    def history_window(self) -> int:
        return self.long_len + self.max_len

    def _batch(self, histories: Histories) -> dict[str, torch.Tensor]:
        full = padded(histories, self.long_len + self.max_len)
        batch = {name: t[:, self.long_len :] for name, t in full.items()}
        batch["prefix"] = full["items"][:, : self.long_len]
        return batch

    def _training_tensors(self) -> dict[str, torch.Tensor]:
        return training_windows(self.history_, self.max_len, prefix_len=self.long_len)

    @torch.no_grad()
    def gate(self, histories: Histories) -> np.ndarray:
        """(n,) weight of the short-term side at each row's newest event: near 1 means the recent
        window decides (interest has moved), near 0 that lasting taste does."""
        self.net_.eval()
        return self.net_.fuse(self._batch(histories))[1][:, -1].numpy()

    def _training_pass(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Hidden states, and the penalty ``gate_balance`` * mean (g - 1/2)^2 over real
        positions: where both sides predict equally well (a stable user) nothing else moves the
        gate, and without the pull to the middle it drifts to one side for everyone and says
        nothing about drift."""
        hidden, gate = self.net_.fuse(batch)
        if self.gate_balance == 0:
            return hidden, None
        real = batch["items"] > 0
        return hidden, self.gate_balance * ((gate[real] - 0.5) ** 2).mean()

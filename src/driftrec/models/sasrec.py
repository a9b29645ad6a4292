"""SASRec: a causal Transformer over the last events (short-term interest).

Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018, trained with cross-entropy
over the full catalog at every position (or sampled softmax for large catalogs). Item, position
and optional time-gap and event-type embeddings are summed; the output layer shares the item
embedding. The attention weights of the last forward pass can be kept to explain a ranking.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from driftrec.data.dataset import Dataset
from driftrec.data.histories import Histories
from driftrec.data.split import EvalSet
from driftrec.models.batching import N_TIME_BUCKETS, padded
from driftrec.models.items import ItemEmbedding, small_init
from driftrec.models.neural import NeuralSequenceModel
from driftrec.params import FLAG, POSITIVE_INT, Rule, choice, divisible
from driftrec.text.encoder import DEFAULT_TEXT_MODEL


class CausalSelfAttention(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.dropout = dropout

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, keep: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, L, d) output, and the (B, heads, L, L) attention weights when ``keep``."""
        b, length, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        # (B, L, d) -> (B, heads, L, d / heads)
        q, k, v = (
            t.view(b, length, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v)
        )
        att = None
        if keep:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)  # (B, heads, L, L)
            att = torch.softmax(att.masked_fill(~mask, -torch.inf), dim=-1)
            y = att @ v
        else:
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
            )
        return self.proj(y.transpose(1, 2).reshape(b, length, d)), att


class Block(nn.Module):
    """Pre-norm Transformer block (nanoGPT layout); ``gated``: LiGR's gated residuals, each
    branch's output scaled by a sigmoid gate read from the same normalised input, as eSASRec
    uses them (Tikhonov et al., RecSys 2025, after LinkedIn's LiGR)."""

    def __init__(self, d: int, heads: int, dropout: float, gated: bool = False) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, heads, dropout)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(
            nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d), nn.Dropout(dropout)
        )
        self.drop = nn.Dropout(dropout)
        self.gates = nn.ModuleList([nn.Linear(d, d), nn.Linear(d, d)]) if gated else None

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, keep: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.ln1(x)  # (B, L, d)
        y, att = self.attn(h, mask, keep)
        if self.gates is not None:
            y = torch.sigmoid(self.gates[0](h)) * y
        x = x + self.drop(y)
        h = self.ln2(x)
        z = self.mlp(h)
        if self.gates is not None:
            z = torch.sigmoid(self.gates[1](h)) * z
        return x + z, att


class SASRecNet(nn.Module):
    def __init__(
        self,
        item_emb: ItemEmbedding,
        d: int,
        layers: int,
        heads: int,
        max_len: int,
        dropout: float,
        time_embedding: bool,
        event_embedding: bool,
        n_event_types: int = 128,
        gated: bool = False,
    ) -> None:
        super().__init__()
        self.item_emb = item_emb
        self.pos_emb = nn.Embedding(max_len, d)
        self.time_emb = nn.Embedding(N_TIME_BUCKETS, d, padding_idx=0) if time_embedding else None
        self.event_emb = (
            nn.Embedding(n_event_types + 1, d, padding_idx=0) if event_embedding else None
        )
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d, heads, dropout, gated) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        for emb in (self.pos_emb, self.time_emb, self.event_emb):
            if emb is not None:  # small, like the item embedding, so no input drowns the others
                small_init(emb)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, L, d) hidden state at every position."""
        return self.run(batch, keep_attention=False)[0]

    def run(
        self, batch: dict[str, torch.Tensor], keep_attention: bool
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, L, d) hidden states, and each layer's (B, heads, L, L) attention weights when
        ``keep_attention`` (returned, never stored: concurrent calls do not interfere)."""
        items = batch["items"]  # (B, L), 0 = padding on the left
        length = items.shape[1]
        x = self.item_emb(items) + self.pos_emb.weight[-length:]  # (B, L, d)
        if self.time_emb is not None:
            x = x + self.time_emb(batch["times"])
        if self.event_emb is not None:
            x = x + self.event_emb(batch["events"])
        x = self.drop(x * (items > 0).unsqueeze(-1))
        # Attend to earlier real events; every position may attend to itself, so an all-padding
        # row still has one key and stays finite.
        causal = torch.ones(length, length, dtype=torch.bool).tril()
        real = (items > 0)[:, None, None, :]  # (B, 1, 1, L) keys
        mask = causal & (real | torch.eye(length, dtype=torch.bool))  # (B, 1, L, L)
        weights = []
        for block in self.blocks:
            x, att = block(x, mask, keep_attention)
            if att is not None:
                weights.append(att)
        return self.ln_f(x), weights  # (B, L, d)


class SASRec(NeuralSequenceModel):
    """Self-attentive next-item model over the last ``max_len`` events."""

    name = "sasrec"
    param_rules: ClassVar[dict[str, Rule]] = {
        **NeuralSequenceModel.param_rules,
        "heads": POSITIVE_INT,
        "time_embedding": FLAG,
        "event_embedding": FLAG,
        "block": choice("prenorm", "ligr"),
    }
    param_constraints = (divisible("hidden", "heads"),)  # each head attends in hidden / heads

    def __init__(
        self,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 2,
        max_len: int = 50,
        dropout: float | str = "auto",
        time_embedding: bool = False,
        event_embedding: bool = False,
        block: str = "prenorm",
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

    def _fit(self, dataset: Dataset, valid: EvalSet | None = None) -> None:
        if self.time_embedding:
            dataset.require_timestamps("a time-gap embedding (use time_embedding=False)")
        super()._fit(dataset, valid)

    def _build(self, item_emb: ItemEmbedding) -> SASRecNet:
        return SASRecNet(
            item_emb,
            self.hidden,
            self.layers,
            self.heads,
            self.max_len,
            self.dropout_used_,
            self.time_embedding,
            self.event_embedding,
            gated=self.block == "ligr",
        )

    def attention(self, histories: Histories) -> list[torch.Tensor]:
        """Attention weights of every layer for these histories: each (n, heads, L, L), row -1 is
        the position that produced the recommendation. Which past events drove it is the last
        row, averaged over heads and layers, against the padded input."""
        with torch.no_grad():
            self.net_.eval()
            return self.net_.run(padded(histories, self.max_len), keep_attention=True)[1]

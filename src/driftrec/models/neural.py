"""What every neural sequence model shares: the loss, scoring, cold items, state (the tensors it
learns from are made in `batching`).

A subclass only builds its network (`_build`) around the shared item table (`ItemEmbedding`),
whose forward pass turns a padded batch into hidden states (B, L, d). Items are shifted by one
inside the network so that 0 is padding; sequences are left-padded, so the newest event is always
the last position. With ``features="text"`` (or ``"multihot"``) item vectors also carry the item's
content, so items without training events can be ranked and `add_items` grows the catalog.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, fields, replace
from typing import Any, ClassVar, Self

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from driftrec.data.dataset import Dataset
from driftrec.data.histories import Histories
from driftrec.data.split import EvalSet
from driftrec.errors import DataFormatError, InputError
from driftrec.models.base import Recommender, SavedState, read_only
from driftrec.models.batching import (
    length_batches,
    padded,
    seen_index,
    training_windows,
    trim_padding,
    window_times,
)
from driftrec.models.items import ItemEmbedding
from driftrec.models.softmax import softmax_cross_entropy
from driftrec.models.training import TrainConfig, TrainLog, fit_network, set_threads
from driftrec.params import (
    BATCH,
    FLAG,
    LAYERS,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY,
    SEED,
    SIZE,
    TEXT,
    THREADS,
    Rule,
    auto_or,
    choice,
    integer,
    number,
    optional,
)
from driftrec.text import FEATURE_KINDS as CONTENT_KINDS
from driftrec.text import get_encoder, item_features, item_texts

FEATURE_KINDS = ("none", *CONTENT_KINDS)  # item content the item table adds to the id
# How item text (features="text") enters a known item's vector: added through an adapter
# ("sum"), as the starting point of its id embedding ("init"), or both. Items without training
# events read it through the cold adapter in every case (see `ItemEmbedding`); multi-hot
# features are always added ("sum").
TEXT_FUSIONS = ("sum", "init", "both")
LOSSES = ("ce", "sampled", "gbce")  # what loss="auto" can resolve to, and the other choices
# "auto" loss: full cross-entropy up to this many items. Chunked (`softmax`), it costs about 2.2x
# sampled softmax per epoch on Amazon Beauty's 12k items and is about 9% more accurate there.
CE_MAX_ITEMS = 32_768
OLD_CE_MAX_NEGATIVES = 4  # before: "ce" up to 4 x negatives items (models saved then say so)
# "auto" dropout: heavier where users have short histories (see `_dropout_rule`)
SPARSE_DROPOUT = 0.5
DENSE_DROPOUT = 0.2
DENSE_EVENTS_PER_USER = 30.0
CALIBRATION_SHARE = 0.1  # of the known items, held out of the cold adapter's training
COLD_SHIFTS = torch.arange(-6.0, 3.01, 0.25)  # cold-logit shifts `_cold_shift` chooses from
# `partial_fit`'s defaults: at most this many epochs, stopping after this many without a better
# validation score (it starts from a trained model), on the new windows and this many replayed
# older windows per new one (chosen on ml-100k: benchmarks/incremental.py, BENCHMARKS.md)
INCREMENTAL_EPOCHS = 20
INCREMENTAL_PATIENCE = 5
INCREMENTAL_REPLAY = 3.0


def seen_pairs(items: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The (position, item) pairs where the repeat bias applies: for each target position of
    padded windows ``items`` (B, L) (``real`` (B, L) marks them, N in all, in row-major order),
    each item that occurred at that position or before, once. Returns (P,) position numbers
    0..N-1, sorted, and (P,) item columns."""
    b, length = items.shape
    earlier = torch.ones(length, length, dtype=torch.bool).tril(-1)  # [s, s'] = s' < s
    repeated = ((items[:, :, None] == items[:, None, :]) & earlier).any(dim=2)  # (B, L)
    first = (items > 0) & ~repeated  # (B, L) an item's first occurrence in its window
    row = torch.arange(b)[:, None].expand(b, length)[real]  # (N,) window of each position
    t = torch.arange(length).expand(b, length)[real]  # (N,) its step
    upto = torch.arange(length)[None, :] <= t[:, None]  # (N, L) steps at or before it
    pair_rows, steps = (first[row] & upto).nonzero(as_tuple=True)
    return pair_rows, items[row[pair_rows], steps]


def _finite_or_none(value: Any) -> Any:
    """``value``, or None when it is a float JSON cannot hold (NaN, inf)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _calibration_items(known: np.ndarray, generator: torch.Generator) -> torch.Tensor:
    """(n_items + 1,) bool, padding first: a random ``CALIBRATION_SHARE`` of the known items,
    on which the cold items' scale and offset are fitted (see `ColdItems`)."""
    index = torch.from_numpy(np.flatnonzero(known))
    chosen = index[torch.randperm(len(index), generator=generator)]
    mask = torch.zeros(len(known) + 1, dtype=torch.bool)
    mask[chosen[: round(CALIBRATION_SHARE * len(index))] + 1] = True
    return mask


class NeuralSequenceModel(Recommender):
    """Base of the neural models: trains with `fit_network`, scores the last position."""

    stops_early: ClassVar[bool] = True
    # The parameters every neural model shares; each subclass adds those of its network.
    param_rules: ClassVar[dict[str, Rule]] = {
        "hidden": SIZE,
        "layers": LAYERS,
        "max_len": SIZE,
        "dropout": auto_or(number(0, 1, high_open=True)),
        "repeat_bias": FLAG,
        "features": choice(*FEATURE_KINDS),
        "text_fusion": choice(*TEXT_FUSIONS),
        "text_model": TEXT,
        "cold_share": PROBABILITY,
        "cold_boost": number(),
        "cold_budget": optional(PROBABILITY),
        "cold_prior_weight": optional(number()),
        "loss": choice("auto", *LOSSES),
        "negatives": BATCH,
        "gbce_t": PROBABILITY,
        "epochs": POSITIVE_INT,
        "batch_size": BATCH,
        "learning_rate": POSITIVE,
        "weight_decay": NON_NEGATIVE,
        "warmup_steps": integer(0),
        "patience": POSITIVE_INT,
        "time_budget": optional(POSITIVE),
        "seed": SEED,
        "threads": optional(THREADS),
        "checkpoint_dir": optional(TEXT),
        "progress": FLAG,
    }

    hidden: int
    max_len: int
    dropout: float | str
    repeat_bias: bool
    loss: str
    negatives: int
    gbce_t: float
    features: str
    text_fusion: str
    text_model: str
    loss_used_: str  # what "auto" resolved to at fit
    dropout_used_: float
    cold_share: float
    cold_boost: float
    cold_budget: float | None
    cold_prior_weight: float | None
    train_config: TrainConfig

    def _configure(self, params: dict[str, Any]) -> None:
        """Keep the constructor arguments (scikit-learn style) and derive the training config."""
        params = {k: v for k, v in params.items() if k not in ("self", "__class__")}
        for key, value in params.items():
            setattr(self, key, value)
        names = {f.name for f in fields(TrainConfig)}
        self.train_config = TrainConfig(**{k: v for k, v in params.items() if k in names})

    def _params_changed(self) -> None:
        self._configure(self.get_params())

    def _build(self, item_emb: ItemEmbedding) -> nn.Module:
        raise NotImplementedError

    def _hidden(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, L, d) hidden state at every position of a padded batch."""
        return self.net_(batch)

    def _training_pass(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One forward pass for training: (B, L, d) hidden states and a penalty the model adds
        to its loss (None: none)."""
        return self._hidden(batch), None

    def _item_embeddings(self) -> torch.Tensor:
        """(n_items + 1, d) output embeddings; row 0 is padding."""
        return self.net_.item_emb.weight

    def _batch(self, histories: Histories) -> dict[str, torch.Tensor]:
        """The network's input for scoring the last position of each row."""
        return padded(histories, self.max_len)

    def _training_tensors(self) -> dict[str, torch.Tensor]:
        return training_windows(self.history_, self.max_len)

    # ------------------------------------------------------------------ learning
    # (network, its output item vectors), see _serving_embeddings
    _serving_cache: tuple[nn.Module, torch.Tensor] | None = None

    def _fit(self, dataset: Dataset, valid: EvalSet | None = None) -> None:
        self._resolve_settings()
        counts = np.bincount(self.history_.items, minlength=dataset.n_items).astype(np.float64)
        features = None
        if self.features != "none":
            features = torch.from_numpy(
                item_features(dataset, self.features, self.text_model, progress=self.progress)
            )
        torch.manual_seed(self.train_config.seed)
        self._draw_calibration(counts > 0)
        self.net_ = self._network(
            dataset.n_items,
            features,
            torch.from_numpy(counts > 0),
            torch.from_numpy(np.log1p(counts)).float(),
        )
        if self.features == "text" and self.text_fusion in ("init", "both"):
            self.net_.item_emb.init_ids_from(features)
        self._set_sampling(counts)
        tensors = self._training_tensors()
        self.log_ = self._train(tensors, valid, self.train_config, f"training {self.name}")
        self.cold_shift_ = self._shift_cold(valid)

    def _draw_calibration(self, known: np.ndarray) -> None:
        """The cold adapter's own random stream and its calibration items, drawn among the
        ``known`` (n_items,) items: not saved, so drawn again when training continues."""
        self.cold_generator_ = torch.Generator().manual_seed(self.train_config.seed)
        self.calibration_items_ = _calibration_items(known, self.cold_generator_)

    def _set_sampling(self, counts: np.ndarray) -> None:
        """Sampling distribution for sampled softmax from (n_items,) training event counts:
        popularity^0.75, as in word2vec. With content features, items without training events
        are not drawn (see `_loss`)."""
        q = np.concatenate([[0.0], (counts + 1.0) ** 0.75])
        if self.net_.item_emb.adapter is not None:
            q[1:][self.net_.item_emb.known[1:].numpy() == 0] = 0.0
        self.sample_probs_ = torch.from_numpy(q / q.sum()).float()

    def _train(
        self,
        tensors: dict[str, torch.Tensor],
        valid: EvalSet | None,
        config: TrainConfig,
        description: str,
        keep_start: bool = False,
    ) -> TrainLog:
        """`fit_network` on these training windows, stopping early on ``valid``."""
        validate = None if valid is None else lambda: self.validation_ndcg(valid)
        return fit_network(
            self.net_,
            tensors,
            self._loss,
            validate,
            config,
            description,
            sizes=(tensors["targets"] > 0).sum(dim=1),
            keep_start=keep_start,
        )

    def _shift_cold(self, valid: EvalSet | None) -> float:
        """Shift the cold items' offset by `_cold_shift` (with content features and a
        ``cold_budget``, when some items have no training events); returns the shift."""
        item_emb = self.net_.item_emb
        if item_emb.adapter is None or self.cold_budget is None:
            return 0.0
        absent = item_emb.known[1:] == 0  # (n_items,)
        if not bool(absent.any()):
            return 0.0
        # The rows whose top 10 the budget protects: the validation rows when given (with
        # what those users really consumed), else every user's next request.
        if valid is None:
            rows, seen = self.history_, self.history_
        else:
            rows, seen = valid.histories, valid.histories if valid.seen is None else valid.seen
        shift = self._cold_shift(rows, seen, absent)
        with torch.no_grad():
            item_emb.cold.offset += shift
        return shift

    def partial_fit(
        self,
        dataset: Dataset,
        since: int | None = None,
        valid: EvalSet | None = None,
        *,
        epochs: int = INCREMENTAL_EPOCHS,
        patience: int = INCREMENTAL_PATIENCE,
        replay: float = INCREMENTAL_REPLAY,
        learning_rate: float | None = None,
    ) -> Self:
        """Continue training on ``dataset``: what the model learned from plus newer events,
        new users and items listed after the known ones (`Dataset.reindexed`). A full retrain
        learns every window again from a random start; this starts from the learned weights and
        trains only on what is new, so it takes a fraction of the time.

        New items get embedding rows initialised as `fit` initialises them (and, where the
        model reads content, their features). Then at most ``epochs`` epochs on the training
        windows whose newest event is after ``since`` (default `trained_until_`), plus
        ``replay`` times as many older windows drawn at random so that it does not forget,
        stopping early on ``valid`` as `fit` does (after ``patience`` epochs without a better
        score), and keeping the starting weights unless an epoch beats them on ``valid``.
        ``learning_rate`` defaults to the model's."""
        integer(1).check(epochs, "epochs")
        integer(1).check(patience, "patience")
        NON_NEGATIVE.check(replay, "replay")
        if learning_rate is not None:
            POSITIVE.check(learning_rate, "learning_rate")
        since = self.trained_until_ if since is None else since
        history = self._growth(dataset, since)
        newest = window_times(history, self.max_len)  # (n_windows,)
        fresh = np.flatnonzero(newest > since)
        if len(fresh) == 0:
            raise InputError(
                f"dataset {dataset.name!r}: no user has an event after time {since} that"
                " follows another of theirs, so there is no new transition to learn from"
            )
        item_emb = self.net_.item_emb
        content = None
        if item_emb.adapter is not None:  # before anything changes: it may refuse the dataset
            content = torch.from_numpy(self._new_item_features(dataset, item_emb.features[1:]))
        self._adopt(dataset, history)
        counts = np.bincount(history.items, minlength=self.n_items).astype(np.float64)
        features = known = None
        if content is not None:
            features = torch.cat([item_emb.features[1:], content])
            known = torch.cat([item_emb.known[1:] > 0, torch.zeros(len(content), dtype=torch.bool)])
            known |= torch.from_numpy(counts > 0)
        torch.manual_seed(self.train_config.seed)  # new rows drawn as `fit` draws them
        self.net_ = self._grown(
            len(counts), features, known, torch.from_numpy(np.log1p(counts)).float()
        )
        if content is not None:
            with torch.no_grad():  # the calibrated offset; shifted again after training
                self.net_.item_emb.cold.offset -= self.cold_shift_ or 0.0
        self._draw_calibration(counts > 0 if known is None else known.numpy())
        self._set_sampling(counts)
        tensors = self._training_tensors()  # every window; those chosen below are trained
        older = np.flatnonzero(newest <= since)
        draw = np.random.default_rng(self.train_config.seed)
        replayed = draw.choice(older, min(len(older), round(replay * len(fresh))), replace=False)
        rows = torch.from_numpy(np.sort(np.concatenate([fresh, replayed])))
        batch = self.train_config.batch_size
        config = replace(
            self.train_config,
            epochs=epochs,
            patience=patience,
            # a warm start needs no long warm-up: at most one epoch of these fewer windows
            warmup_steps=min(self.train_config.warmup_steps, math.ceil(len(rows) / batch)),
            learning_rate=self.train_config.learning_rate
            if learning_rate is None
            else learning_rate,
            checkpoint_dir=None,  # the checkpoints of `fit` are not this run's
        )
        self.log_ = self._train(
            {k: v[rows] for k, v in tensors.items()},
            valid,
            config,
            f"continuing {self.name}",
            keep_start=True,
        )
        self.cold_shift_ = self._shift_cold(valid)
        return self

    def _new_item_features(self, dataset: Dataset, features: torch.Tensor) -> np.ndarray:
        """(n_new, f) content features of ``dataset``'s items after the (n_known, f) known
        ``features``: language-model embeddings of their texts, or their multi-hot rows, which
        must keep the columns the model learned (an `InputError` when new categories or tags
        change them)."""
        known = len(features)
        if known == len(dataset.item_ids):
            return np.zeros((0, features.shape[1]), np.float32)
        if self.features == "text":
            texts = item_texts(dataset)[known:]
            return get_encoder(self.text_model).encode(texts, progress=self.progress)
        rows = item_features(dataset, self.features, self.text_model, progress=self.progress)
        if rows.shape[1] != features.shape[1] or not np.allclose(rows[:known], features.numpy()):
            raise InputError(
                f"dataset {dataset.name!r}: its categories and tags give other multi-hot"
                " features than the model learned; train it again from scratch"
            )
        return rows[known:]

    def _grown(
        self,
        n_items: int,
        features: torch.Tensor | None,
        known: torch.Tensor | None,
        popularity: torch.Tensor,
        zero_new: bool = False,
    ) -> nn.Module:
        """A network for a catalog of ``n_items`` (no fewer than now) holding every trained
        weight of the current one. Rows of new items are as a new network initialises them, or
        zero (``zero_new``: items added without training, ranked from content alone)."""
        old = self.net_.state_dict()
        net = self._network(n_items, features, known, popularity)
        grown = net.state_dict()
        for name, tensor in grown.items():  # copy every trained weight
            if tensor.shape == old[name].shape:
                tensor.copy_(old[name])
            else:  # (n_items + 1, ...) tables: old rows first
                if zero_new:
                    tensor.zero_()
                tensor[: len(old[name])] = old[name]
        net.load_state_dict(grown)
        net.eval()
        return net

    def _dropout_rule(self) -> float:
        """The dropout "auto" resolves to, from the training data: `SPARSE_DROPOUT` when users
        have fewer than `DENSE_EVENTS_PER_USER` training events on average (short histories,
        as in 5-core Amazon reviews: each window holds little context and the model overfits
        it), `DENSE_DROPOUT` otherwise (MovieLens). docs/sequence-models.md has the evidence."""
        if self.dropout != "auto":
            return float(self.dropout)
        per_user = len(self.history_.items) / max(len(self.history_), 1)
        return SPARSE_DROPOUT if per_user < DENSE_EVENTS_PER_USER else DENSE_DROPOUT

    def _loss_rule(self) -> str:
        """The loss "auto" resolves to: full cross-entropy while the catalog has at most
        `CE_MAX_ITEMS` items, sampled softmax beyond, where the full softmax's cost per position
        (it grows with the catalog) outweighs its accuracy (docs/sequence-models.md)."""
        if self.loss != "auto":
            return self.loss
        return "ce" if self.n_items <= CE_MAX_ITEMS else "sampled"

    def _resolve_settings(self) -> None:
        """Fix what the "auto" settings mean for this model, once, at `fit`: histories that
        change later (`update_histories`, `partial_fit`) do not change the network's dropout
        or the loss it continues training with."""
        self.loss_used_ = self._loss_rule()
        self.dropout_used_ = self._dropout_rule()

    def _network(
        self,
        n_items: int,
        features: torch.Tensor | None = None,
        known: torch.Tensor | None = None,
        popularity: torch.Tensor | None = None,
    ) -> nn.Module:
        """The subclass's network plus the learned repeat bias (0 and frozen when disabled).

        ``features`` (n_items, f) are the frozen item contents; ``known`` (n_items,) marks items
        with training events, the only ones whose id embedding is trained; ``popularity``
        (n_items,) is log(1 + training events), for the cold items' prior."""
        warm_content = self.features != "text" or self.text_fusion != "init"
        item_emb = ItemEmbedding(n_items, self.hidden, features, known, popularity, warm_content)
        net = self._build(item_emb)
        net.repeat_bias = nn.Parameter(torch.zeros(()), requires_grad=self.repeat_bias)
        if features is not None and self.cold_prior_weight is not None:
            # A fixed weight of the popularity prior: calibrated around, never fitted.
            prior_weight = item_emb.cold.prior_weight.requires_grad_(False)
            with torch.no_grad():
                prior_weight.fill_(self.cold_prior_weight)
        return net

    @property
    def history_window(self) -> int:
        return self.max_len

    def add_items(self, item_ids: Sequence[str], texts: Sequence[str]) -> Self:
        """Grow the catalog without retraining: new items get no id embedding and are ranked from
        their text alone (zero-shot). Needs ``features="text"``; ids must be new."""
        if self.features != "text":
            raise InputError(f"add_items needs features='text'; this model has {self.features!r}")
        ids = self._new_item_ids(item_ids, texts)
        vectors = get_encoder(self.text_model).encode(list(texts), progress=self.progress)
        item_emb = self.net_.item_emb
        features = torch.cat([item_emb.features[1:], torch.from_numpy(vectors)])
        known = torch.cat([item_emb.known[1:] > 0, torch.zeros(len(ids), dtype=torch.bool)])
        popularity = torch.cat([item_emb.popularity, torch.zeros(len(ids))])
        net = self._grown(len(features), features, known, popularity, zero_new=True)
        self.net_ = net  # a request sees the old network or the new one, never a half-built one
        self.item_ids_ = np.concatenate([self.item_ids_, ids])
        self.sample_probs_ = torch.cat([self.sample_probs_, torch.zeros(len(ids))])
        return self

    def _text_space(self) -> tuple[str, np.ndarray] | None:
        if self.features != "text":
            return None
        return self.text_model, self.net_.item_emb.features[1:].numpy()

    def _loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy of the next item at every non-padded position.

        Every logit gets ``repeat_bias`` added when its item already occurred earlier in the
        window: the model learns whether people in this data come back to items (music) or never
        do (movie ratings), instead of the evaluation having to mask seen items for it.

        With content features, a second term trains the cold adapter (see `ItemEmbedding`): the
        same softmax with a share ``cold_share`` of the items replaced by their cold vectors,
        everything else detached, so it cannot change how warm items are ranked.
        """
        batch = trim_padding(batch)
        hidden, penalty = self._training_pass(batch)  # (B, L, d)
        loss = self._next_item_loss(batch, hidden)
        return loss if penalty is None else loss + penalty

    def _next_item_loss(self, batch: dict[str, torch.Tensor], hidden: torch.Tensor) -> torch.Tensor:
        """The loss of `_loss` (`loss_used_`) for the hidden states of a trimmed batch."""
        items, targets = batch["items"], batch["targets"]  # (B, L)
        b, length = items.shape
        real = targets > 0
        h = hidden[real]  # (N, d)
        y = targets[real]  # (N,)
        emb = self._item_embeddings()  # (n_items + 1, d)
        item_emb = self.net_.item_emb
        if self.loss_used_ == "ce":
            pair_rows, pair_cols = seen_pairs(items, real)
            # Padding and items without training events are not in the catalog while training:
            # as never-positive negatives, the adapter would learn to push their content down.
            left_out = torch.zeros(emb.shape[0])
            left_out[0] = -torch.inf
            if item_emb.adapter is not None:
                left_out[item_emb.known == 0] = -torch.inf

            def objective(
                h: torch.Tensor, table: torch.Tensor, beta: torch.Tensor, bias: torch.Tensor
            ) -> torch.Tensor:
                return softmax_cross_entropy(
                    h, table, bias + left_out, beta, y, pair_rows, pair_cols
                )

        else:
            # Negatives shared by the batch. Sampled softmax: drawn by popularity^0.75, logits
            # corrected by log q (logQ). gBCE (gSASRec): drawn uniformly, binary cross-entropy
            # with the positive's probability raised to the power beta, which undoes the
            # overconfidence that sampling negatives teaches (Petrov & Macdonald, RecSys 2023).
            q = self.sample_probs_
            gbce = self.loss_used_ == "gbce"
            if gbce:
                drawable = int((q > 0).sum())  # the items negatives come from
                q = (q > 0).float() / drawable
                # share of the catalog drawn as negatives; at 1 (they cover it) beta is 1, plain
                # binary cross-entropy, where the formula would amplify the positive instead
                alpha = min(1.0, self.negatives / max(drawable - 1, 1))
                power = alpha * (self.gbce_t * (1.0 - 1.0 / alpha) + 1.0 / alpha)  # gSASRec's beta
            neg = torch.multinomial(q, self.negatives, replacement=True)  # (K,)
            positions = torch.arange(length, dtype=torch.int16).expand(b, length)
            row = torch.arange(b)[:, None].expand(b, length)[real]  # (N,) window of each position
            t = positions[real][:, None]  # (N, 1)
            # First position of each item in each window; an item is "seen" at t if first <= t.
            first = torch.full((b, emb.shape[0]), length, dtype=torch.int16)
            first.scatter_reduce_(1, items, positions, reduce="amin")
            pos_seen = first[row, y][:, None] <= t  # (N, 1)
            neg_seen = first[row[:, None], neg[None, :]] <= t  # (N, K), never (N, n_items)
            accidental = neg[None, :] == y[:, None]  # (N, K) the positive drawn as a negative

            def logits_of(
                h: torch.Tensor, table: torch.Tensor, beta: torch.Tensor, bias: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
                pos_logit = (h * table[y]).sum(-1, keepdim=True) + bias[y, None] + beta * pos_seen
                neg_logits = h @ table[neg].T + bias[neg] + beta * neg_seen  # (N, K)
                return pos_logit, neg_logits  # (N, 1), (N, K)

            if gbce:
                kept = (~accidental).float()

                def objective(
                    h: torch.Tensor, table: torch.Tensor, beta: torch.Tensor, bias: torch.Tensor
                ) -> torch.Tensor:
                    pos_logit, neg_logits = logits_of(h, table, beta, bias)
                    positive = power * F.logsigmoid(pos_logit).sum()
                    negative = (F.logsigmoid(-neg_logits) * kept).sum()
                    # per position, as cross-entropy is: a mean over every logit would make
                    # gradients so small that Adam's epsilon damps them
                    return -(positive + negative) / len(y)

            else:
                log_q = torch.log(q[torch.cat([y[:, None], neg.expand(len(y), -1)], 1)])
                masked = torch.cat([torch.zeros_like(pos_seen), accidental], 1)  # (N, 1 + K)
                zeros = torch.zeros(len(y), dtype=torch.long)

                def objective(
                    h: torch.Tensor, table: torch.Tensor, beta: torch.Tensor, bias: torch.Tensor
                ) -> torch.Tensor:
                    logits = torch.cat(logits_of(h, table, beta, bias), dim=1) - log_q
                    return F.cross_entropy(logits.masked_fill(masked, -torch.inf), zeros)

        beta = self.net_.repeat_bias
        loss = objective(h, emb, beta, torch.zeros(emb.shape[0]))
        if item_emb.adapter is None or self.cold_share == 0:
            return loss
        # Own generator: the warm model's random stream (dropout, negatives) stays as without it.
        draw = torch.rand(emb.shape[0], 1, generator=self.cold_generator_)  # (n_items + 1, 1)
        dropped = draw < self.cold_share
        # Calibration items train only the cold scale, offset and prior weight, never the adapter.
        calibrating = dropped & self.calibration_items_[:, None]  # (n_items + 1, 1)
        raw = item_emb.cold_vectors()
        cold = torch.where(calibrating, item_emb.cold.scale * raw.detach(), raw)
        table = torch.where(dropped, cold, emb.detach())
        bias = item_emb.cold.bias(item_emb.prior) * calibrating[:, 0]  # (n_items + 1,)
        return loss + objective(h.detach(), table, beta.detach(), bias)

    # ------------------------------------------------------------------ answering
    def _serving_embeddings(self) -> torch.Tensor:
        """(n_items + 1, d) output item vectors, computed once per model version (fit, load,
        add_items) instead of on every request: with content features they run the adapter over
        the whole catalog."""
        net, cache = self.net_, self._serving_cache
        if cache is None or cache[0] is not net:  # a new network (add_items, load) or none yet
            with torch.no_grad():
                net.eval()
                cache = (net, net.item_emb.weight.detach().clone())
            self._serving_cache = cache
        return cache[1]

    @torch.no_grad()
    def _score_tensor(
        self, histories: Histories, embeddings: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(n, n_items) scores from the last position of each row; ``embeddings`` are the
        precomputed output item vectors (None: computed now, as training needs while the weights
        move)."""
        self.net_.eval()
        if embeddings is None:
            embeddings = self._item_embeddings()
        bias = self.net_.item_emb.logit_bias(self.cold_boost)  # (n_items + 1,): cheap
        scores = self._last_hidden(histories) @ embeddings.T  # (n, n_items + 1)
        scores = (scores if bias is None else scores + bias)[:, 1:]
        seen = seen_index(histories)
        scores[seen] += self.net_.repeat_bias
        return scores

    def _state_items(self) -> int:
        return self.net_.item_emb.ids.num_embeddings - 1  # row 0 is padding

    @torch.no_grad()
    def _last_hidden(self, histories: Histories) -> torch.Tensor:
        """(n, d) hidden state at the newest event of each row: the query vector."""
        self.net_.eval()
        # Padding shared by the whole batch changes no output (tests/test_neural.py): drop it.
        return self._hidden(trim_padding(self._batch(histories)))[:, -1]

    # the retrieval contract (capabilities.Factorised); seen items also get `repeat_bias`
    def query_vectors(self, histories: Histories, batch_size: int = 1024) -> np.ndarray:
        out = np.zeros((len(histories), self.hidden), np.float32)
        for rows in length_batches(histories, batch_size):
            out[rows] = self._last_hidden(histories.take(rows)).numpy()
        return out

    def item_vectors(self) -> np.ndarray:
        return read_only(self._serving_embeddings()[1:].numpy())

    @torch.no_grad()
    def item_bias(self) -> np.ndarray | None:
        bias = self.net_.item_emb.logit_bias(self.cold_boost)
        return None if bias is None else bias[1:].numpy()

    def score(self, histories: Histories, batch_size: int = 1024) -> np.ndarray:
        embeddings = self._serving_embeddings()
        out = np.zeros((len(histories), self.n_items), np.float32)
        for rows in length_batches(histories, batch_size):
            out[rows] = self._score_tensor(histories.take(rows), embeddings).numpy()
        return out

    @torch.no_grad()
    def validation_ndcg(self, valid: EvalSet, k: int = 10, batch_size: int = 1024) -> float:
        """Mean NDCG@k over the validation rows, seen items excluded (the early-stopping score).

        Items without training events are left out too: how they rank is the cold adapter's
        business, which does not change the warm model being selected. A validation target can
        be one (an item whose only events were held out: 3% of ml-latest-small's leave-one-out
        validation targets); its row then scores 0 for every warm model alike."""
        total, rows = 0.0, 0
        absent = None if self.features == "none" else self.net_.item_emb.known[1:] == 0
        for batch in length_batches(valid.histories, batch_size):
            part = valid.take(batch)
            scores = self._score_tensor(part.histories)
            k = min(k, scores.shape[1])  # a catalog smaller than k
            discounts = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float32))
            scores[seen_index(part.histories)] = -torch.inf
            if absent is not None:
                scores[:, absent] = -torch.inf
            targets = torch.from_numpy(part.target_matrix(scores.shape[1]))
            top = torch.topk(scores, k, dim=1).indices
            hits = targets.gather(1, top).float()
            ideal = torch.cumsum(discounts, 0)[torch.clamp(targets.sum(1), 1, k) - 1]
            total += float(((hits * discounts).sum(1) / ideal).sum())
            rows += len(part)
        return total / max(rows, 1)

    @torch.no_grad()
    def _cold_shift(
        self, histories: Histories, seen: Histories, absent: torch.Tensor, batch_size: int = 1024
    ) -> float:
        """The largest shift of the cold items' logits (from `COLD_SHIFTS`) at which they are
        expected to take at most ``cold_budget`` of the warm hits in these rows' top 10.

        The calibrated offset makes cold scores right on average, which maximises hits over cold
        and warm targets together; a catalog owner usually wants warm accuracy kept and new items
        shown only where that costs little, so the trade-off is set here. The cost is the
        model's own expectation: each row's warm items carry the probability the model gives
        them (softmax of its scores over the warm candidates), a shift loses the probability of
        the warm top-10 items that cold items push out, and the cost is what is lost over all
        rows divided by the warm top-10 probability over all rows (HR@10, relative). Every row
        contributes its whole top 10, not only the few whose held-out target sits near rank 10,
        so the estimate is smooth on a few hundred rows, and it needs no targets. Items in
        ``seen`` (what the users really consumed, even where ``histories`` hides it) are not
        candidates. ``absent``: (n_items,) the items without training events."""
        k = min(10, int((~absent).sum()))
        kept = torch.zeros(len(COLD_SHIFTS), dtype=torch.float64)
        total = 0.0
        for batch in length_batches(histories, batch_size):
            scores = self._score_tensor(histories.take(batch))  # (B, n_items)
            scores[:, absent] -= self.cold_boost  # the boost is a ranking knob on top of this
            scores[seen_index(seen.take(batch))] = -torch.inf
            warm = scores.masked_fill(absent, -torch.inf)
            live = torch.isfinite(warm).any(dim=1)  # rows with a warm candidate left
            warm, scores = warm[live], scores[live]
            top, index = torch.topk(warm, k, dim=1)  # (B, k), best first
            p = torch.softmax(warm, dim=1).gather(1, index)  # (B, k)
            cold = torch.sort(scores[:, absent], dim=1).values.contiguous()  # (B, n_cold)
            rank = torch.arange(k)
            for i, shift in enumerate(COLD_SHIFTS):
                # Cold items above each warm top-k item once shifted; it stays if rank + that < k.
                above = cold.shape[1] - torch.searchsorted(cold, top - shift, right=True)
                kept[i] += float((p * (rank + above < k)).sum())
            total += float(p.sum())
        allowed = kept >= (1.0 - self.cold_budget) * total
        if not bool(allowed.any()):
            return float(COLD_SHIFTS[0])
        return float(COLD_SHIFTS[allowed].max())

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        state = {f"net.{k}": v.detach().numpy() for k, v in self.net_.state_dict().items()}
        state["sample_probs"] = self.sample_probs_.numpy()
        item_emb = self.net_.item_emb
        if item_emb.adapter is not None:  # frozen content is not a parameter: saved apart
            state["item_features"] = item_emb.features[1:].numpy()
            state["item_known"] = item_emb.known[1:].numpy()
            state["item_popularity"] = item_emb.popularity.numpy()
        return state

    def _set_state(self, state: SavedState) -> None:
        features, known = state.pop("item_features", None), state.pop("item_known", None)
        popularity = state.pop("item_popularity", None)
        self.net_ = self._network(
            len(state["sample_probs"]) - 1,
            None if features is None else torch.from_numpy(features),
            None if known is None else torch.from_numpy(known) > 0,
            None if popularity is None else torch.from_numpy(popularity),
        )
        weights = {}
        for key, tensor in self.net_.state_dict().items():
            saved = state[f"net.{key}"]  # a DataFormatError naming the file when absent
            shape = tuple(tensor.shape) or (1,)  # `save` writes a scalar as one element
            if saved.shape != shape:
                raise DataFormatError(
                    f"{state.path}: network weights {key!r} are {saved.shape}, but the network"
                    f" config.json describes needs {shape}"
                )
            weights[key] = torch.from_numpy(saved).reshape(tensor.shape)
        self.net_.load_state_dict(weights)
        self.net_.eval()
        set_threads(self.train_config.threads)  # once, not on every request
        self.sample_probs_ = torch.from_numpy(state["sample_probs"])

    def _get_fitted(self) -> dict[str, Any]:
        log = asdict(self.log_)  # a score of -inf or a NaN loss is null: standard JSON
        log["best_score"] = _finite_or_none(log["best_score"])
        log["epochs"] = [{k: _finite_or_none(v) for k, v in e.items()} for e in log["epochs"]]
        if log["distributed"] is None:  # one process: the config.json of before
            del log["distributed"]
        settings = {"loss": self.loss_used_, "dropout": self.dropout_used_}
        return {"log": log, "cold_shift": self.cold_shift_, "settings": settings}

    def _set_fitted(self, fitted: dict[str, Any]) -> None:
        """Restore the training log, the cold shift and the resolved settings; `load` calls it
        before `_set_state`, which builds the network with that dropout."""
        settings = fitted.get("settings")
        if settings is None:  # saved before they were recorded: the rules of then
            old_loss = "ce" if self.n_items <= OLD_CE_MAX_NEGATIVES * self.negatives else "sampled"
            self.loss_used_ = old_loss if self.loss == "auto" else self.loss
            self.dropout_used_ = self._dropout_rule()  # a number then: no rule involved
        elif (
            not isinstance(settings, dict)
            or settings.get("loss") not in LOSSES
            or not PROBABILITY.allows(settings.get("dropout"))
        ):
            raise InputError(f"malformed 'settings' in 'fitted': {settings!r}")
        else:
            self.loss_used_, self.dropout_used_ = settings["loss"], float(settings["dropout"])
        if not fitted:  # a model saved before its training log was: nothing to report
            self.log_, self.cold_shift_ = TrainLog(), None
            return
        log = fitted.get("log")
        epochs = log.get("epochs") if isinstance(log, dict) else None
        if not isinstance(epochs, list) or not all(isinstance(e, dict) for e in epochs):
            raise InputError("'fitted' must hold a training log with a list of epochs")
        try:
            best = log.get("best_score")
            self.log_ = TrainLog(**{**log, "best_score": -math.inf if best is None else best})
            self.cold_shift_ = float(fitted["cold_shift"])
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"a malformed 'fitted' entry ({err})") from None

    def training_summary(self) -> dict[str, Any]:
        """Epochs run, best epoch and score, and training seconds (for results JSON); the same
        after `save` and `load`."""
        log = self.log_
        if not log.epochs:  # a model saved before its training log was
            return {"cold_shift": self.cold_shift_, **self._cold_calibration()}
        return {
            "epochs_run": len(log.epochs),
            "best_epoch": log.best_epoch,
            "best_valid_ndcg@10": log.best_score if log.epochs[-1]["valid"] is not None else None,
            "train_seconds": log.seconds,
            "trained_positions": log.positions * len(log.epochs),
            "stopped_early": log.stopped_early,
            "loss_used": self.loss_used_,
            "dropout_used": self.dropout_used_,
            **({} if log.start_score is None else {"start_valid_ndcg@10": log.start_score}),
            **({} if log.distributed is None else {"distributed": log.distributed}),
            "cold_shift": self.cold_shift_,
            **self._cold_calibration(),
        }

    def _cold_calibration(self) -> dict[str, float]:
        """The fitted scalars of the cold items' logits (none without content)."""
        if self.net_.item_emb.adapter is None:
            return {}
        cold = self.net_.item_emb.cold
        return {f"cold_{k}": getattr(cold, k).item() for k in ("scale", "offset", "prior_weight")}

"""The neural sequence models: input tensors, causality, learning, early stopping, persistence."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from driftrec import models
from driftrec.data.dataset import Dataset
from driftrec.data.events import Event
from driftrec.data.histories import Histories
from driftrec.data.split import EvalSet, leave_one_out
from driftrec.errors import DataFormatError, InputError, UnknownIdError
from driftrec.models.batching import N_TIME_BUCKETS, padded, time_buckets, training_windows
from driftrec.models.capabilities import Factorised
from driftrec.models.fused import FusedInterest
from driftrec.models.gru4rec import GRU4Rec
from driftrec.models.neural import DENSE_DROPOUT, SPARSE_DROPOUT, NeuralSequenceModel
from driftrec.models.sasrec import SASRec

N = 20  # items in the walk: item k is always followed by item k + 1 (mod N)
COLD = ["20", "21"]  # catalog items nobody ever consumed
GAP = 60  # seconds between a user's events

FAST = {
    "hidden": 16,
    "max_len": 5,
    "dropout": 0.0,
    "epochs": 40,
    "batch_size": 64,
    "learning_rate": 1e-2,
    "warmup_steps": 5,
    "progress": False,
    "threads": 1,
}


def _walks(n_users: int = 40, length: int = 8) -> Dataset:
    """User u consumes items u, u+1, ..., u+length-1 (mod N), one minute apart, so the next item
    is always the successor and never one already in the history."""
    rows = [
        (f"u{u:02d}", str((u + t) % N), 10_000 * u + GAP * t)
        for u in range(n_users)
        for t in range(length)
    ]
    events = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    catalog = pd.DataFrame({"item": [str(j) for j in range(N)] + COLD})
    return Dataset.from_frames(events, items=catalog)


def _make(name: str, **overrides) -> NeuralSequenceModel:
    params = {**FAST, **overrides}
    if name == "sasrec":
        return SASRec(**{"heads": 2, "layers": 2, **params})
    if name == "sasrec-time":  # time-gap and event-type embeddings on
        return SASRec(
            **{"heads": 2, "layers": 2, "time_embedding": True, "event_embedding": True, **params}
        )
    if name == "sasrec-sampled":
        return SASRec(**{"heads": 1, "layers": 1, "loss": "sampled", "negatives": 5, **params})
    if name == "sasrec-ligr":  # gated residuals (eSASRec's LiGR layers)
        return SASRec(**{"heads": 2, "layers": 2, "block": "ligr", **params})
    if name == "sasrec-gbce":  # binary cross-entropy learns the walk more slowly than softmax
        params = {**params, "epochs": 150}
        return SASRec(**{"heads": 1, "layers": 1, "loss": "gbce", "negatives": 8, **params})
    if name == "gru4rec":
        return GRU4Rec(**params)
    if name == "fused":
        return FusedInterest(**{"heads": 1, "layers": 1, "long_len": 4, **params})
    raise ValueError(name)


# these learn the walk
NAMES = ["sasrec", "sasrec-sampled", "sasrec-gbce", "sasrec-ligr", "gru4rec", "fused"]


@pytest.fixture(scope="module")
def walks() -> Dataset:
    return _walks()


@pytest.fixture(scope="module")
def fitted(walks: Dataset) -> dict[str, NeuralSequenceModel]:
    return {name: _make(name).fit(walks) for name in [*NAMES, "sasrec-time"]}


def _probe() -> Histories:
    """For every k, a fresh three-event session ending in item k."""
    return Histories.from_sequences(
        [[(k - 2) % N, (k - 1) % N, k] for k in range(N)],
        timestamps=[[0, GAP, 2 * GAP]] * N,
    )


# ---------------------------------------------------------------------- time_buckets / padded


def test_time_buckets_by_hand() -> None:
    minute = 60
    gaps = np.array(
        [
            0,  # log2(1) = 0 -> 1
            30,  # half a minute: log2(1.5) -> 1
            59,  # just under a minute -> 1
            minute,  # log2(2) = 1 -> 2
            2 * minute,  # log2(3) -> 2
            3 * minute,  # log2(4) = 2 -> 3
            60 * minute,  # log2(61) -> 6
            -50,  # negative gaps count as 0 -> 1
            (2**21 - 1) * minute,  # log2(2^21) = 21 -> 22
            (2**22 - 1) * minute,  # 23, the last bucket
            10**12,  # capped at N_TIME_BUCKETS - 1
        ]
    )
    expected = [1, 1, 1, 2, 2, 3, 6, 1, 22, 23, 23]
    got = time_buckets(gaps)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.int64
    assert N_TIME_BUCKETS - 1 == 23
    assert got.min() >= 1  # 0 is reserved for padding


def test_padded_by_hand() -> None:
    h = Histories(
        indptr=np.array([0, 2, 2, 7], np.int64),
        items=np.array([4, 0, 1, 2, 3, 4, 5], np.int32),
        timestamps=np.array([100, 160, 0, 60, 180, 3780, 3780], np.int64),
        events=np.array([0, 2, 0, 1, 2, 3, 4], np.int8),
        values=np.ones(7, np.float32),
        users=np.array([0, 1, 2], np.int64),
    )
    out = padded(h, 3)
    assert set(out) == {"items", "times", "events"}
    for t in out.values():
        assert t.dtype == torch.int64
        assert t.shape == (3, 3)
    # Row 0 (2 events) is left-padded; row 1 is empty; row 2 keeps its newest 3 of 5 events.
    np.testing.assert_array_equal(out["items"], [[0, 5, 1], [0, 0, 0], [4, 5, 6]])
    np.testing.assert_array_equal(out["events"], [[0, 1, 3], [0, 0, 0], [3, 4, 5]])
    # Row 0: first event has no gap (bucket 1), then 60 s (bucket 2).
    # Row 2: the kept events' gaps to their predecessors are 120 s, 3600 s and 0 s.
    np.testing.assert_array_equal(out["times"], [[0, 1, 2], [0, 0, 0], [2, 6, 1]])

    # Long enough for everything: row 2's first event starts the user and has gap 0.
    out = padded(h, 6)
    np.testing.assert_array_equal(out["items"][2], [0, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(out["events"][2], [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(out["times"][2], [0, 1, 2, 2, 6, 1])
    np.testing.assert_array_equal(out["items"][0], [0, 0, 0, 0, 5, 1])

    empty = padded(Histories.empty(0), 4)
    assert all(t.shape == (0, 4) for t in empty.values())


# ---------------------------------------------------------------------- training_windows


def _seven() -> Histories:
    return Histories.from_sequences(
        [[10, 11, 12, 13, 14, 15, 16]],
        timestamps=[[0, 60, 180, 600, 4000, 4060, 100_000]],
    )


def test_training_windows_by_hand() -> None:
    w = training_windows(_seven(), 3)
    assert set(w) == {"items", "times", "events", "targets"}
    # Newest window first: events 3..6 (inputs 13, 14, 15 -> targets 14, 15, 16), then events
    # 0..3 (inputs 10, 11, 12 -> targets 11, 12, 13); event 3 is shared. Items shifted by one.
    np.testing.assert_array_equal(w["items"], [[14, 15, 16], [11, 12, 13]])
    np.testing.assert_array_equal(w["targets"], [[15, 16, 17], [12, 13, 14]])
    np.testing.assert_array_equal(w["events"], [[1, 1, 1], [1, 1, 1]])
    # Gaps in the oldest window: 0 s, 60 s, 120 s.
    np.testing.assert_array_equal(w["times"][1], [1, 2, 2])
    # Second and third inputs of the newest window: 3400 s (56.7 min) and 60 s.
    np.testing.assert_array_equal(w["times"][0, 1:], [6, 2])


def test_training_windows_short_sequence_is_left_padded() -> None:
    h = Histories.from_sequences([[3, 4], [7], [], [1, 2, 3, 4, 5]])
    w = training_windows(h, 3)
    # [3, 4]: one transition; [7] and []: none; [1..5] with length 3: events 1..4, then 0..1.
    np.testing.assert_array_equal(w["items"], [[0, 0, 4], [3, 4, 5], [0, 0, 2]])
    # No target at a padding input: the first item of a user is never predicted from nothing.
    np.testing.assert_array_equal(w["targets"], [[0, 0, 5], [4, 5, 6], [0, 0, 3]])
    np.testing.assert_array_equal(w["times"][0], [0, 0, 1])
    np.testing.assert_array_equal(w["events"][0], [0, 0, 1])


@pytest.mark.parametrize("length", [1, 2, 3, 4, 10])
def test_training_windows_cover_every_transition_once(length: int) -> None:
    lengths = [0, 1, 2, 3, 4, 5, 7, 8, 10, 13]
    # Distinct items everywhere (user * 100 + position), so a transition names its place.
    seqs = [[100 * u + p for p in range(n)] for u, n in enumerate(lengths)]
    w = training_windows(Histories.from_sequences(seqs), length)
    inputs, targets = w["items"].numpy(), w["targets"].numpy()
    assert (
        inputs.shape
        == targets.shape
        == (sum(math.ceil((n - 1) / length) for n in lengths if n > 1), length)
    )
    real = inputs > 0
    assert ((targets > 0) == real).all()  # a target exactly where there is an input
    pairs = sorted(zip(inputs[real] - 1, targets[real] - 1, strict=True))
    expected = sorted((s[i], s[i + 1]) for s in seqs for i in range(len(s) - 1))
    assert pairs == expected  # every transition exactly once, nothing else
    # Left padding: once a row's real inputs start, they continue to the end.
    assert (np.diff(real.astype(int), axis=1) >= 0).all()
    # Windows from the newest end backwards, consecutive ones sharing one event.
    row_of = {item: u for u, s in enumerate(seqs) for item in s}
    for newer, older, older_targets in zip(inputs[:-1], inputs[1:], targets[1:], strict=True):
        if row_of[newer[-1] - 1] == row_of[older[-1] - 1]:
            # The older window's last target is the newer window's first input.
            assert older_targets[-1] == newer[newer > 0][0]
            assert older[-1] < newer[-1]
    # Within a window, each target is the next position's input.
    inner = real[:, :-1]
    np.testing.assert_array_equal(targets[:, :-1][inner], inputs[:, 1:][inner])


def test_training_windows_prefix() -> None:
    w = training_windows(_seven(), 3, prefix_len=2)
    # The newest window starts at event 3: the two events before it are items 11 and 12.
    np.testing.assert_array_equal(w["prefix"], [[12, 13], [0, 0]])
    w = training_windows(_seven(), 3, prefix_len=5)
    np.testing.assert_array_equal(w["prefix"], [[0, 0, 11, 12, 13], [0, 0, 0, 0, 0]])
    assert w["prefix"].dtype == torch.int64
    np.testing.assert_array_equal(w["items"], training_windows(_seven(), 3)["items"])

    two = Histories.from_sequences([[1, 2, 3, 4, 5, 6, 7, 8], [9, 8]])
    w = training_windows(two, 2, prefix_len=3)
    # Row 0: windows start at events 5, 3, 1, 0; row 1: one window.
    np.testing.assert_array_equal(
        w["prefix"], [[4, 5, 6], [2, 3, 4], [0, 0, 2], [0, 0, 0], [0, 0, 0]]
    )


def test_training_window_times_match_the_scoring_input() -> None:
    # The newest window's inputs are events 3, 4, 5; padded() of the history up to event 5
    # is exactly what the model sees when it scores there.
    window = training_windows(_seven(), 3)["times"][0]
    history = Histories.from_sequences(
        [[10, 11, 12, 13, 14, 15]], timestamps=[[0, 60, 180, 600, 4000, 4060]]
    )
    np.testing.assert_array_equal(window, padded(history, 3)["times"][0])  # [4, 6, 2]


# ---------------------------------------------------------------------- the networks


def _net_batch(items: list[list[int]], prefix_len: int = 4) -> dict[str, torch.Tensor]:
    batch = padded(Histories.from_sequences(items), len(items[0]))
    batch["items"] = torch.tensor(items)  # keep 0s exactly where given
    batch["prefix"] = torch.tensor([[0, 3, 4, 5][-prefix_len:]] * len(items))
    return batch


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "fused"])
def test_networks_are_causal(name: str) -> None:
    model = _make("sasrec-time" if name == "sasrec" else name)
    torch.manual_seed(0)
    model.dropout_used_ = 0.0  # what fit resolves FAST's dropout to
    net = model._network(N).eval()
    batch = _net_batch([[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]])
    batch["items"][1, -1] = 9  # a different newest event in row 1
    batch["times"][1, -1] = 7
    with torch.no_grad():
        out = net(batch)
    assert out.shape == (2, 5, 16)
    torch.testing.assert_close(out[0, :-1], out[1, :-1], rtol=0, atol=1e-6)
    assert not torch.allclose(out[0, -1], out[1, -1])


def test_sasrec_left_padding_does_not_change_real_positions() -> None:
    model = _make("sasrec-time")
    torch.manual_seed(0)
    model.dropout_used_ = 0.0  # what fit resolves FAST's dropout to
    net = model._network(N).eval()
    h = Histories.from_sequences([[3, 7, 5]], timestamps=[[0, 100, 5000]])
    h.events[:] = [0, 2, 1]
    with torch.no_grad():
        short = net(padded(h, 3))
        long = net(padded(h, 5))
    # Position embeddings count from the newest event, so the real events line up.
    torch.testing.assert_close(long[:, 2:], short, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", [*NAMES, "sasrec-time"])
def test_scores_do_not_depend_on_batch_companions(name: str, fitted) -> None:
    model = fitted[name]
    seq = [4, 5, 6, 7]
    alone = model.score(Histories.from_sequences([seq]))
    together = model.score(
        Histories.from_sequences(
            [[], [1] * 9, seq, [3, 2]], timestamps=[[], list(range(9)), [0, 1, 2, 3], [0, 1]]
        )
    )
    assert together.shape == (4, N + len(COLD))
    assert together.dtype == np.float32
    assert np.isfinite(together).all()  # the empty history too
    np.testing.assert_allclose(together[2], alone[0], rtol=1e-5, atol=1e-5)
    # Scoring in small batches gives the same answers.
    np.testing.assert_allclose(
        model.score(_probe(), batch_size=3), model.score(_probe()), rtol=1e-5, atol=1e-5
    )
    assert model.score(Histories.empty(0)).shape == (0, N + len(COLD))


def _module_attributes(net: torch.nn.Module) -> dict[tuple[str, str], int]:
    """Every plain attribute of every submodule, by identity (parameters live elsewhere)."""
    return {
        (name, key): id(value)
        for name, m in net.named_modules()
        for key, value in vars(m).items()
        if not key.startswith("_")
    }


@pytest.mark.parametrize("name", ["sasrec", "fused"])
def test_no_state_is_written_during_a_forward_pass(fitted, name: str) -> None:
    """Two requests scored at once must not see each other's intermediate results."""
    model = fitted[name]
    before = _module_attributes(model.net_)
    h = Histories.from_sequences([[1, 2, 3], [4, 5]])
    model.score(h)
    if name == "sasrec":
        model.attention(h)
    else:
        model.gate(h)
    assert _module_attributes(model.net_) == before


def test_sasrec_attention(fitted) -> None:
    model = fitted["sasrec"]
    h = Histories.from_sequences([[1, 2, 3], [], [4, 5, 6, 7, 8, 9, 10]])
    weights = model.attention(h)
    assert len(weights) == 2  # one per layer
    length = model.max_len
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    for att in weights:
        assert att.shape == (3, 2, length, length)
        assert (att >= 0).all()
        torch.testing.assert_close(att.sum(-1), torch.ones(3, 2, length))
        assert (att[..., ~causal] == 0).all()  # never a future key
        # Row 0 has two padding positions: no real query looks at them, they see only themselves.
        assert (att[0, :, 2:, :2] == 0).all()
        torch.testing.assert_close(att[0, :, :2, :2], torch.eye(2).expand(2, 2, 2))
        # The empty row: every (padding) position sees only itself.
        torch.testing.assert_close(att[1], torch.eye(length).expand(2, length, length))
        # The newest position of the full row spreads its attention over real earlier events.
        assert (att[2, :, -1] > 0).all()


# ---------------------------------------------------------------------- learning


@pytest.mark.parametrize("name", NAMES)
def test_models_learn_the_successor(name: str, fitted) -> None:
    model = fitted[name]
    losses = [e["loss"] for e in model.log_.epochs]
    assert len(losses) == model.get_params()["epochs"]
    assert losses[-1] < 0.5 * losses[0]
    top = model.score(_probe())[:, :N].argmax(axis=1)
    hits = top == (np.arange(N) + 1) % N
    assert hits.mean() >= 0.8, top
    # The same through the public interface, with external ids.
    recs = model.recommend(sequences=[["3", "4", "5"]], k=3)
    assert recs.item_ids[0, 0] == "6"


def test_sasrec_with_time_and_event_embeddings_learns_the_successor(fitted) -> None:
    top = fitted["sasrec-time"].score(_probe())[:, :N].argmax(axis=1)
    assert (top == (np.arange(N) + 1) % N).mean() >= 0.8


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "fused"])
def test_items_never_seen_in_training_get_finite_scores(name: str, fitted) -> None:
    model = fitted[name]
    cold = [N, N + 1]
    scores = model.score(Histories.from_sequences([[1, 2], [N], [3, N + 1, 4]]))
    assert np.isfinite(scores).all()
    assert np.isfinite(scores[:, cold]).all()
    # Never a positive example, so never ranked above the successor of a known item.
    assert (scores[0, cold] < scores[0, 3]).all()


def test_validation_stops_early_and_keeps_the_best_epoch(walks: Dataset) -> None:
    split = leave_one_out(walks)
    model = _make("sasrec-sampled", epochs=60, patience=5).fit(split.train, split.valid)
    summary = model.training_summary()
    valid = [e["valid"] for e in model.log_.epochs]
    assert summary["stopped_early"]
    assert summary["epochs_run"] == len(valid) < 60
    assert summary["best_epoch"] == 1 + int(np.argmax(valid))  # first epoch with the top score
    assert summary["epochs_run"] == summary["best_epoch"] + 5
    assert summary["best_valid_ndcg@10"] == max(valid)
    assert summary["best_valid_ndcg@10"] > 0.5
    assert summary["train_seconds"] > 0
    json.dumps(summary)  # fit for a results file
    # The weights of the best epoch are the ones kept.
    assert model.validation_ndcg(split.valid) == pytest.approx(max(valid), abs=1e-6)


def test_validation_ndcg_by_hand() -> None:
    model = SASRec(progress=False)
    # Two users over 5 items. Row 0 has seen item 0, its target is 3; row 1 has seen 1 and 2,
    # its targets are 0 and 4.
    valid = EvalSet(
        histories=Histories.from_sequences([[0], [1, 2]]),
        target_indptr=np.array([0, 1, 3]),
        target_items=np.array([3, 0, 4], np.int32),
        target_values=np.ones(3, np.float32),
    )
    scores = torch.tensor([[9.0, 1.0, 7.0, 6.0, 0.0], [1.0, 9.0, 8.0, 5.0, 3.0]])
    model._score_tensor = lambda histories: scores[: len(histories)].clone()
    # Seen items are excluded. Row 0 ranks 2, 3, 1: its target is 2nd. Row 1 ranks 3, 4, 0.
    row0 = 1 / math.log2(3)
    row1 = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert model.validation_ndcg(valid, k=3) == pytest.approx((row0 + row1) / 2, rel=1e-6)
    assert model.validation_ndcg(valid, k=1) == pytest.approx(0.0)


def test_validation_on_a_catalog_smaller_than_k() -> None:
    rows = [(f"u{u}", str((u + t) % 6), t) for u in range(6) for t in range(5)]
    split = leave_one_out(
        Dataset.from_frames(pd.DataFrame(rows, columns=["user", "item", "timestamp"]))
    )
    model = SASRec(hidden=8, heads=1, layers=1, max_len=4, epochs=2, progress=False, threads=1)
    model.fit(split.train, split.valid)
    assert 0.0 <= model.training_summary()["best_valid_ndcg@10"] <= 1.0


# ---------------------------------------------------------------------- gate, persistence, config


def test_fused_gate_is_one_value_in_0_1_per_row(walks: Dataset, fitted) -> None:
    h = Histories.from_sequences([[1, 2, 3], [], list(range(15)), [7]])
    model = _make("fused", epochs=1).fit(walks)
    gate = model.gate(h)
    assert gate.shape == (4,)
    assert gate.dtype == np.float32
    assert ((gate > 0) & (gate < 1)).all()
    assert model.gate(h.take([2]))[0] == pytest.approx(gate[2], abs=1e-6)
    # Trained on the walk, only the recent window matters: the gate may saturate in float32.
    gate = fitted["fused"].gate(h)
    assert gate.shape == (4,)
    assert ((gate >= 0) & (gate <= 1)).all()


@pytest.mark.parametrize("name", [*NAMES, "sasrec-time"])
def test_save_load_round_trip_gives_identical_scores(name: str, fitted, tmp_path: Path) -> None:
    model = fitted[name]
    back = models.load(model.save(tmp_path / name))
    assert type(back) is type(model)
    assert back.get_params() == model.get_params()
    probe = _probe()
    np.testing.assert_array_equal(back.score(probe), model.score(probe))
    torch.testing.assert_close(back.sample_probs_, model.sample_probs_, rtol=0, atol=0)
    assert back.training_summary() == model.training_summary()  # the training log is saved too
    assert back.event_types_ == model.event_types_  # live events are coded as in training
    if name == "fused":
        np.testing.assert_array_equal(back.gate(probe), model.gate(probe))


def test_sampling_distribution_is_smoothed_popularity(fitted, walks: Dataset) -> None:
    q = fitted["sasrec-sampled"].sample_probs_.numpy()
    counts = np.bincount(walks.histories().items, minlength=N + len(COLD))
    expected = np.concatenate([[0.0], (counts + 1.0) ** 0.75])
    np.testing.assert_allclose(q, expected / expected.sum(), rtol=1e-6)
    assert q[0] == 0  # padding is never a negative


def test_checkpoint_dir_writes_checkpoints_and_resumes(walks: Dataset, tmp_path: Path) -> None:
    ckpt = tmp_path / "sasrec"
    model = _make("sasrec", layers=1, epochs=3, checkpoint_dir=str(ckpt)).fit(walks)
    assert {p.name for p in ckpt.iterdir()} >= {
        "last.safetensors",
        "best.safetensors",
        "optimizer.pt",
        "trainer_state.json",
    }
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert [e["epoch"] for e in state["log"]["epochs"]] == [1, 2, 3]

    # Continue to 5 epochs from the checkpoint: same as training 5 epochs in one go.
    resumed = _make("sasrec", layers=1, epochs=5, checkpoint_dir=str(ckpt)).fit(walks)
    assert resumed.log_.resumed_from == 3
    assert resumed.training_summary()["epochs_run"] == 5
    straight = _make("sasrec", layers=1, epochs=5).fit(walks)
    np.testing.assert_array_equal(resumed.score(_probe()), straight.score(_probe()))
    assert not np.array_equal(model.score(_probe()), straight.score(_probe()))


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="'loss' of model 'sasrec' must be"):
        models.create("sasrec", loss="bpr")
    with pytest.raises(ValueError, match="divisible"):
        models.create("sasrec", hidden=10, heads=3)
    with pytest.raises(ValueError, match="divisible"):
        models.create("fused", hidden=10, heads=4)
    model = GRU4Rec(hidden=8, epochs=7, seed=3, threads=1, progress=False, patience=2)
    config = model.train_config
    assert (config.epochs, config.seed, config.threads, config.patience) == (7, 3, 1, 2)
    assert config.progress is False


def test_the_shared_parameters_have_one_default_across_the_neural_models() -> None:
    """scikit-learn needs each model's parameters spelled out in its own constructor, so the
    shared ones are written three times; this keeps the copies from drifting apart."""
    shared = set(NeuralSequenceModel.param_rules)
    defaults = [cls().get_params() for cls in (SASRec, GRU4Rec, FusedInterest)]
    for params in defaults:
        assert shared <= set(params)
    differing = {k for k in shared if len({repr(d[k]) for d in defaults}) > 1}
    assert differing == {"layers"}  # a GRU stacks fewer layers than a Transformer, on purpose


@pytest.mark.parametrize("name", NAMES)
def test_the_retrieval_contract_reproduces_the_scores(fitted, name: str) -> None:
    """query @ items + bias is the score of every unseen item, so an index can serve it."""
    model = fitted[name]
    assert isinstance(model, Factorised)
    probe = _probe()
    bias = model.item_bias()
    inner = model.query_vectors(probe) @ model.item_vectors().T + (0.0 if bias is None else bias)
    scores = model.score(probe)
    unseen = np.ones_like(scores, bool)
    unseen[probe.event_rows(), probe.items] = False
    np.testing.assert_allclose(inner[unseen], scores[unseen], rtol=1e-5, atol=1e-5)


def test_live_events_reach_the_model_as_training_events_did(walks: Dataset, fitted) -> None:
    """A time-gap and event-type model scores a live request on the times and types of its
    events, as in training; bare item sequences stand positions in for times."""
    model = fitted["sasrec-time"]
    h = walks.histories([3])
    live = [
        Event(str(walks.item_ids[i]), int(t), walks.event_types[e], float(v))
        for i, t, e, v in zip(h.items, h.timestamps, h.events, h.values, strict=True)
    ]
    live.append(Event(None, int(h.timestamps[-1]), "search", text="jazz"))  # stays out, as in fit
    as_unknown = Histories(h.indptr, h.items, h.timestamps, h.events, h.values, np.array([-1]))
    from_events = model.query_histories(events=[live[::-1]])  # any order: sorted by time
    np.testing.assert_array_equal(model.score(from_events), model.score(as_unknown))
    positions = model.query_histories(sequences=[[str(walks.item_ids[i]) for i in h.items]])
    assert not np.allclose(model.score(positions), model.score(as_unknown))
    recs = model.recommend(events=[live], k=3)
    assert recs.items.shape == (1, 3) and not set(recs.items[0]) & set(h.items.tolist())
    with pytest.raises(InputError, match="unknown event type 'teleport'"):
        model.recommend(events=[[Event(str(walks.item_ids[0]), 1, "teleport")]])
    with pytest.raises(UnknownIdError, match="nope"):
        model.recommend(events=[[Event("nope", 1)]])


def test_live_event_types_and_times_are_coded_as_in_training(fitted) -> None:
    """Several event types, equal times (kept in the order given) and bad events refused."""
    model = fitted["sasrec-time"]
    names = ["click", "view", "purchase"]
    live = [Event(str(i), 1_000 + 60 * (i // 2), names[i % 3], 2.0) for i in range(6)]
    built = model.query_histories(events=[live])
    codes = [model.event_types_.index(names[i % 3]) for i in range(6)]
    assert built.events.tolist() == codes and built.items.tolist() == list(range(6))
    assert built.timestamps.tolist() == [1_000 + 60 * (i // 2) for i in range(6)]
    expected = Histories(
        built.indptr,
        np.arange(6, dtype=np.int32),
        built.timestamps,
        np.array(codes, np.int8),
        np.full(6, 2.0, np.float32),
        np.array([-1]),
    )
    np.testing.assert_array_equal(model.score(built), model.score(expected))
    for bad in (Event("1", 10**20), Event("1", float("nan")), Event("1", 1, value=None)):
        with pytest.raises(InputError):
            model.query_histories(events=[[bad]])
    with pytest.raises(InputError, match="event type"):  # a search's type is checked too
        model.query_histories(events=[[Event(None, 1, "teleport", text="x")]])


def test_refit_and_item_vectors_never_serve_a_stale_or_writable_table(walks: Dataset) -> None:
    model = _make("sasrec", seed=0).fit(walks)
    probe = _probe()
    model.score(probe)  # fills the cache
    model.fit(walks.with_events(walks.events.iloc[: len(walks.events) // 2]))
    fresh = _make("sasrec", seed=0).fit(
        walks.with_events(walks.events.iloc[: len(walks.events) // 2])
    )
    np.testing.assert_allclose(model.score(probe), fresh.score(probe), rtol=1e-5, atol=1e-6)
    vectors = model.item_vectors()
    with pytest.raises(ValueError, match="read-only"):
        vectors /= 2.0


def test_models_saved_before_fitted_state_and_event_types_still_load(fitted, tmp_path) -> None:
    model = fitted["sasrec"]
    path = model.save(tmp_path / "old")
    config = json.loads((path / "config.json").read_text())
    del config["fitted"]
    (path / "config.json").write_text(json.dumps(config))
    ids = json.loads((path / "ids.json").read_text())
    del ids["event_types"]
    (path / "ids.json").write_text(json.dumps(ids))
    back = models.load(path)
    probe = _probe()
    np.testing.assert_array_equal(back.score(probe), model.score(probe))
    assert back.training_summary()["cold_shift"] is None  # unknown, not a made-up 0
    config["fitted"] = {"log": {"epochs": [1, 2]}}
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataFormatError, match=r"config\.json"):
        models.load(path)


def test_auto_dropout_follows_the_training_events_per_user(tmp_path) -> None:
    """dropout="auto" is heavier where users have short histories, and a saved model rebuilds
    its network with the dropout it was trained with."""
    short = _walks(length=8)  # 8 events a user: under 30
    long = _walks(n_users=10, length=40)  # 40 events a user: over 30
    auto = {"dropout": "auto", "epochs": 1}
    for data, expected in ((short, SPARSE_DROPOUT), (long, DENSE_DROPOUT)):
        model = _make("sasrec", **auto).fit(data)
        assert model.dropout_used_ == expected
        assert model.training_summary()["dropout_used"] == expected
        assert model.net_.drop.p == expected
        again = models.load(model.save(tmp_path / f"m{expected}"))
        assert again.dropout_used_ == expected and again.net_.drop.p == expected
        # the same users with histories for which the rule says otherwise: fixed at fit
        users = len(data.user_ids)
        model.update_histories(_walks(n_users=users, length=8 if data is long else 40))
        assert model.dropout_used_ == expected
    assert _make("sasrec", dropout=0.1, epochs=1).fit(short).net_.drop.p == 0.1

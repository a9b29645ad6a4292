"""fit_network: the training loop every neural model shares, on toy torch modules."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from driftrec.models.training import TrainConfig, TrainLog, _lr_factor, fit_network, set_threads

TRUE_W = torch.tensor([1.0, -2.0, 0.5])
TRUE_B = 0.3


def _regression(n: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    """y = x·[1, -2, 0.5] + 0.3, no noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return {"x": x, "y": x @ TRUE_W + TRUE_B}


def _linear(init_seed: int = 0) -> torch.nn.Linear:
    torch.manual_seed(init_seed)
    return torch.nn.Linear(3, 1)


def _mse(net: torch.nn.Module) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    return lambda batch: ((net(batch["x"]).squeeze(-1) - batch["y"]) ** 2).mean()


def _config(**overrides) -> TrainConfig:
    base = {
        "epochs": 5,
        "batch_size": 16,
        "learning_rate": 0.05,
        "warmup_steps": 0,
        "patience": 3,
        "progress": False,
        "threads": 1,
    }
    return TrainConfig(**{**base, **overrides})


def _state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Scripted:
    """A validate() that returns the given scores in turn and snapshots the weights each call."""

    def __init__(self, net: torch.nn.Module, scores: Sequence[float]) -> None:
        self.net, self.scores, self.snapshots = net, list(scores), []

    def __call__(self) -> float:
        self.snapshots.append(_state(self.net))
        return self.scores[len(self.snapshots) - 1]


def _strict_json(text: str) -> dict:
    def reject(token: str) -> float:
        raise ValueError(f"not valid JSON: {token}")

    return json.loads(text, parse_constant=reject)


# ---------------------------------------------------------------------- learning


def test_loss_goes_down_and_recovers_the_linear_map() -> None:
    net = _linear()
    log = fit_network(net, _regression(), _mse(net), None, _config(epochs=40))
    losses = [e["loss"] for e in log.epochs]
    assert losses[-1] < losses[0] / 100
    assert all(math.isfinite(x) for x in losses)
    torch.testing.assert_close(net.weight.detach().squeeze(0), TRUE_W, atol=0.05, rtol=0)
    assert abs(net.bias.item() - TRUE_B) < 0.05
    assert not net.training  # left in eval mode


def test_without_validate_every_epoch_runs_and_the_last_is_kept() -> None:
    net = _linear()
    seen: list[dict[str, torch.Tensor]] = []
    tensors = _regression()

    def loss(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        seen.append(_state(net))
        return _mse(net)(batch)

    log = fit_network(net, tensors, loss, None, _config(epochs=7, patience=1))
    assert isinstance(log, TrainLog)
    assert [e["epoch"] for e in log.epochs] == list(range(1, 8))
    assert not log.stopped_early
    assert log.best_epoch == 7
    assert log.resumed_from == 0
    assert all(e["valid"] is None for e in log.epochs)  # JSON null: no validation ran
    assert all(e["seconds"] >= 0 for e in log.epochs)
    assert log.seconds == pytest.approx(sum(e["seconds"] for e in log.epochs))
    # 64 rows in batches of 16: four optimiser steps per epoch; the weights are the trained ones.
    assert len(seen) == 7 * 4
    assert not _same(_state(net), seen[0])


def test_every_row_is_used_once_per_epoch_in_a_shuffled_order() -> None:
    net = _linear()
    tensors = {"x": torch.zeros(10, 3), "y": torch.zeros(10), "row": torch.arange(10)}
    batches: list[list[int]] = []

    def loss(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        assert batch["x"].shape[0] == batch["row"].shape[0] == batch["y"].shape[0]
        batches.append(batch["row"].tolist())
        return _mse(net)(batch)

    fit_network(net, tensors, loss, None, _config(epochs=2, batch_size=4))
    assert [len(b) for b in batches] == [4, 4, 2, 4, 4, 2]
    epoch1 = batches[0] + batches[1] + batches[2]
    epoch2 = batches[3] + batches[4] + batches[5]
    assert sorted(epoch1) == sorted(epoch2) == list(range(10))
    assert epoch1 != epoch2  # reshuffled every epoch


# ---------------------------------------------------------------------- early stopping


def test_early_stopping_restores_the_best_epoch() -> None:
    net = _linear()
    # Epoch 2 is best; 3 is worse, 4 only ties (not an improvement), 5 is worse: stop after 5.
    validate = Scripted(net, [0.1, 0.5, 0.3, 0.5, 0.2, 0.9, 0.9])
    log = fit_network(net, _regression(), _mse(net), validate, _config(epochs=20, patience=3))
    assert log.stopped_early
    assert len(log.epochs) == 5 == len(validate.snapshots)
    assert [e["valid"] for e in log.epochs] == [0.1, 0.5, 0.3, 0.5, 0.2]
    assert log.best_epoch == 2
    assert log.best_score == 0.5
    assert _same(_state(net), validate.snapshots[1])
    assert not _same(_state(net), validate.snapshots[-1])


def test_patience_counts_epochs_since_the_last_improvement() -> None:
    net = _linear()
    validate = Scripted(net, [0.1, 0.2, 0.1, 0.3, 0.2, 0.1, 0.9])
    log = fit_network(net, _regression(), _mse(net), validate, _config(epochs=20, patience=2))
    assert log.stopped_early
    assert len(log.epochs) == 6
    assert log.best_epoch == 4
    assert log.best_score == 0.3
    assert _same(_state(net), validate.snapshots[3])


def test_no_early_stop_while_the_score_keeps_improving() -> None:
    net = _linear()
    validate = Scripted(net, [0.1, 0.2, 0.3, 0.4])
    log = fit_network(net, _regression(), _mse(net), validate, _config(epochs=4, patience=1))
    assert not log.stopped_early
    assert len(log.epochs) == 4
    assert log.best_epoch == 4
    assert _same(_state(net), validate.snapshots[-1])


def test_no_early_stop_while_scores_below_the_best_still_rise() -> None:
    """A run that improves more slowly than its noise goes on while the scores of its patience
    window rise, and stops once they fall, or after twice the patience in any case."""
    net = _linear()
    scores = [0.5, 0.1, 0.2, 0.3, 0.4, 0.6, 0.5, 0.4, 0.3, 0.9]
    log = fit_network(net, _regression(), _mse(net), Scripted(net, scores), _config(epochs=20))
    assert log.stopped_early  # patience 3: epochs 2-5 rise, 6 is best, 7-9 fall
    assert [e["valid"] for e in log.epochs] == scores[:9]
    assert log.best_epoch == 6
    net = _linear()
    rising = [0.9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    log = fit_network(
        net, _regression(), _mse(net), Scripted(net, rising), _config(epochs=20, patience=2)
    )
    assert log.stopped_early and len(log.epochs) == 5  # 2 x 2 epochs without a better score


def test_validate_sees_the_network_in_eval_mode() -> None:
    net = _linear()
    modes: list[bool] = []

    def validate() -> float:
        modes.append(net.training)
        return float(len(modes))

    fit_network(net, _regression(), _mse(net), validate, _config(epochs=3))
    assert modes == [False, False, False]


# ---------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_weights_and_losses() -> None:
    runs = []
    for _ in range(2):
        net = _linear(init_seed=0)
        log = fit_network(net, _regression(), _mse(net), None, _config(epochs=4, seed=7))
        runs.append((_state(net), [e["loss"] for e in log.epochs]))
    assert _same(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]

    # Another seed shuffles the batches differently, so the weights differ.
    net = _linear(init_seed=0)
    fit_network(net, _regression(), _mse(net), None, _config(epochs=4, seed=8))
    assert not _same(_state(net), runs[0][0])


def test_set_threads() -> None:
    assert set_threads(1) == 1
    assert torch.get_num_threads() == 1


# ---------------------------------------------------------------------- warm-up and clipping


def test_lr_factor_is_linear_warm_up() -> None:
    assert [_lr_factor(s, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert _lr_factor(0, 0) == 1.0
    assert _lr_factor(1000, 0) == 1.0


class Scalar(torch.nn.Module):
    def __init__(self, size: int = 1) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(size))


def test_warm_up_scales_the_learning_rate_of_each_step() -> None:
    # Constant gradient: every Adam step moves the weight by exactly the current learning rate,
    # so the per-epoch change (one step per epoch) shows the warm-up factor.
    net = Scalar()
    trace: list[float] = []

    def validate() -> float:
        trace.append(net.w.item())
        return float(len(trace))

    tensors = {"row": torch.zeros(1)}
    config = _config(epochs=6, learning_rate=0.1, warmup_steps=4)
    fit_network(net, tensors, lambda b: net.w.sum(), validate, config)
    steps = [-(b - a) for a, b in zip([0.0, *trace[:-1]], trace, strict=True)]
    expected = [0.025, 0.05, 0.075, 0.1, 0.1, 0.1]
    for got, want in zip(steps, expected, strict=True):
        assert got == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize(("clip_norm", "norm"), [(1.0, 1.0), (0.5, 0.5), (0.0, 200.0)])
def test_clip_norm_caps_the_gradient_norm(clip_norm: float, norm: float) -> None:
    # Gradient of 100·sum(w) over 4 weights has norm 200; the last step's gradient stays on .grad.
    net = Scalar(size=4)
    config = _config(epochs=1, clip_norm=clip_norm)
    fit_network(net, {"row": torch.zeros(1)}, lambda b: 100 * net.w.sum(), None, config)
    assert net.w.grad is not None
    assert net.w.grad.norm().item() == pytest.approx(norm, rel=1e-4)


# ---------------------------------------------------------------------- checkpoints


def _resume_config(tmp: Path | None, epochs: int, **overrides) -> TrainConfig:
    return _config(
        epochs=epochs,
        warmup_steps=20,  # 4 steps an epoch: warm-up runs across the interruption at epoch 3
        weight_decay=0.01,
        seed=3,
        checkpoint_dir=None if tmp is None else str(tmp),
        **overrides,
    )


def test_interrupted_run_resumes_and_matches_an_uninterrupted_one(tmp_path: Path) -> None:
    tensors = _regression()
    full_net = _linear()
    full = fit_network(full_net, tensors, _mse(full_net), None, _resume_config(None, 6))

    first_net = _linear()
    first = fit_network(first_net, tensors, _mse(first_net), None, _resume_config(tmp_path, 3))
    assert len(first.epochs) == 3
    assert first.resumed_from == 0

    net = _linear(init_seed=99)  # a fresh network: its start comes from the checkpoint
    log = fit_network(net, tensors, _mse(net), None, _resume_config(tmp_path, 6))
    assert log.resumed_from == 3
    assert len(log.epochs) == 6
    assert [e["epoch"] for e in log.epochs] == [1, 2, 3, 4, 5, 6]
    assert [e["loss"] for e in log.epochs] == [e["loss"] for e in full.epochs]
    assert log.best_epoch == 6
    assert _same(_state(net), _state(full_net))

    # A run that is already complete trains no further and returns the same weights.
    again_net = _linear(init_seed=5)
    again = fit_network(again_net, tensors, _mse(again_net), None, _resume_config(tmp_path, 6))
    assert again.resumed_from == 6
    assert len(again.epochs) == 6
    assert _same(_state(again_net), _state(full_net))


def test_resume_keeps_the_best_epoch_and_patience(tmp_path: Path) -> None:
    tensors = _regression()
    scores = [0.1, 0.5, 0.3, 0.2, 0.1]
    ref_net = _linear()
    ref_validate = Scripted(ref_net, [*scores, 0.9])
    ref = fit_network(ref_net, tensors, _mse(ref_net), ref_validate, _resume_config(None, 10))
    assert ref.stopped_early and ref.best_epoch == 2 and len(ref.epochs) == 5

    net = _linear()
    fit_network(net, tensors, _mse(net), Scripted(net, scores[:3]), _resume_config(tmp_path, 3))
    net = _linear(init_seed=42)
    validate = Scripted(net, [*scores[3:], 0.9])
    log = fit_network(net, tensors, _mse(net), validate, _resume_config(tmp_path, 10))
    # One bad epoch before the interruption, two after it: patience 3 is used up at epoch 5.
    assert log.resumed_from == 3
    assert log.stopped_early
    assert len(validate.snapshots) == 2
    assert [e["valid"] for e in log.epochs] == scores
    assert log.best_epoch == 2
    assert log.best_score == 0.5
    assert _same(_state(net), ref_validate.snapshots[1])
    assert _same(_state(net), _state(ref_net))


def _safetensors_keys(path: Path) -> set[str]:
    """Parse the safetensors header by hand: 8-byte little-endian length, then JSON."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    return set(header) - {"__metadata__"}


def test_checkpoint_files(tmp_path: Path) -> None:
    net = _linear()
    validate = Scripted(net, [0.2, 0.4, 0.1])
    config = _config(epochs=3, checkpoint_dir=str(tmp_path / "ckpt"), patience=5)
    log = fit_network(net, _regression(), _mse(net), validate, config)
    ckpt = tmp_path / "ckpt"
    assert {p.name for p in ckpt.iterdir()} == {
        "last.safetensors",
        "best.safetensors",
        "optimizer.pt",
        "trainer_state.json",
    }  # the temporary file is renamed, not left behind

    state = _strict_json((ckpt / "trainer_state.json").read_text())
    assert state["config"] == asdict(config)
    assert state["bad_epochs"] == 1
    assert state["log"]["best_epoch"] == 2
    assert state["log"]["best_score"] == 0.4
    assert [e["epoch"] for e in state["log"]["epochs"]] == [1, 2, 3]
    assert [e["valid"] for e in state["log"]["epochs"]] == [0.2, 0.4, 0.1]
    assert [e["loss"] for e in state["log"]["epochs"]] == [e["loss"] for e in log.epochs]

    keys = set(net.state_dict())
    assert _safetensors_keys(ckpt / "last.safetensors") == keys
    assert _safetensors_keys(ckpt / "best.safetensors") == keys
    last = load_file(str(ckpt / "last.safetensors"))
    best = load_file(str(ckpt / "best.safetensors"))
    assert _same(last, validate.snapshots[2])  # weights after the final epoch
    assert _same(best, validate.snapshots[1])  # weights of the best epoch
    assert _same(best, _state(net))


def test_trainer_state_is_strict_json_without_validate(tmp_path: Path) -> None:
    net = _linear()
    fit_network(
        net, _regression(), _mse(net), None, _config(epochs=2, checkpoint_dir=str(tmp_path))
    )
    _strict_json((tmp_path / "trainer_state.json").read_text())


def test_resume_with_dropout_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    def run(epochs: int, checkpoint: Path | None) -> dict[str, torch.Tensor]:
        torch.manual_seed(1)
        net = torch.nn.Sequential(
            torch.nn.Linear(3, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1)
        )
        fit_network(net, _regression(n=32), _mse(net), None, _resume_config(checkpoint, epochs))
        return _state(net)

    full = run(6, None)
    run(3, tmp_path)
    assert _same(run(6, tmp_path), full)

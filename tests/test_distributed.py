"""Data-parallel training (driftrec.distributed): 2 gloo processes on the CPU, through
`driftrec train --nproc 2`, torchrun's `python -m driftrec.train`, and `fit_network` itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from clitools import assert_input_error, cli, ok
from safetensors.torch import load_file

from driftrec import distributed, models
from driftrec.errors import InputError
from driftrec.models.training import TrainConfig, fit_network

# threads=1: the same arithmetic whatever the machine's cores; patience 1 so it stops early
TINY = ["-m", "sasrec", "-p", "hidden=8", "-p", "heads=1", "-p", "layers=1", "-p", "epochs=6"]
TINY += ["-p", "patience=1", "-p", "threads=1", "-p", "progress=false"]
SRC = Path(__file__).resolve().parents[1] / "src"


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{path}" if path else str(SRC)}


@pytest.fixture(scope="module")
def ddp_model(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("ddp") / "model"
    return out, ok(cli("train", data_dir, *TINY, "--nproc", "2", "-o", out))


def test_nproc_2_writes_one_model_that_loads_and_recommends(ddp_model: tuple[Path, str]) -> None:
    out, stdout = ddp_model
    assert "in 2 processes" in stdout and "validation NDCG@10" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "ids.json", "state.safetensors"]
    assert not list(out.parent.glob("*.tmp*"))
    training = json.loads((out / "config.json").read_text())["info"]["training"]
    ddp = training["distributed"]
    assert (ddp["processes"], ddp["backend"], ddp["global_batch"]) == (2, "gloo", 128)
    assert ddp["batch_per_process"] == 64
    # every rank ran the epochs rank 0 logged and kept the same best epoch
    assert ddp["rank_epochs"] == [training["epochs_run"]] * 2
    assert ddp["rank_best_epochs"] == [training["best_epoch"]] * 2
    model = models.load(out)
    assert model.get_params()["threads"] == 1  # the configuration, not the launcher's split
    user = str(model.user_ids_[0])
    recommendations = model.recommend(users=[user], k=5)
    assert recommendations.items.shape == (1, 5)


def test_torchrun_module_entry_gives_the_same_weights(
    ddp_model: tuple[Path, str], data_dir: Path, tmp_path: Path
) -> None:
    """torchrun -m driftrec.train with the same seed: the same weights, bit for bit, as
    `train --nproc 2` (so two runs of a seed agree)."""
    out = tmp_path / "model"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    run = subprocess.run(
        [*torchrun, "-m", "driftrec.train", str(data_dir), *TINY, "-o", str(out)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("trained ") == 1  # rank 0 reports, rank 1 is silent
    first, second = (load_file(str(p / "state.safetensors")) for p in (ddp_model[0], out))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_single_process_config_has_no_distributed_entry(data_dir: Path, tmp_path: Path) -> None:
    one_epoch = [a if a != "epochs=6" else "epochs=1" for a in TINY]
    ok(cli("train", data_dir, *one_epoch, "-o", tmp_path / "m"))
    training = json.loads((tmp_path / "m" / "config.json").read_text())["info"]["training"]
    assert "distributed" not in training
    fitted = json.loads((tmp_path / "m" / "config.json").read_text())["fitted"]
    assert "distributed" not in fitted["log"]


def test_nproc_with_a_model_that_is_not_neural_exits_2(data_dir: Path, tmp_path: Path) -> None:
    result = cli("train", data_dir, "-m", "als", "--nproc", "2", "-o", tmp_path / "m")
    assert_input_error(result, "als trains in one process")
    assert not (tmp_path / "m").exists()


def test_nproc_with_from_exits_2(ddp_model: tuple[Path, str], tmp_path: Path) -> None:
    result = cli("train", "--from", ddp_model[0], "--nproc", "2", "-o", tmp_path / "m")
    assert_input_error(result, "--from trains in one process")


def test_shard_splits_each_batch_between_the_ranks() -> None:
    rows = torch.arange(7)
    shares = [distributed.shard(rows, r, 2) for r in range(2)]
    assert sorted(torch.cat(shares).tolist()) == list(range(7))
    assert [len(s) for s in shares] == [4, 3]
    # a batch smaller than the group is repeated so that every rank has a row
    assert [distributed.shard(torch.tensor([5]), r, 3).tolist() for r in range(3)] == [[5]] * 3


# ------------------------------------------------------ fit_network in a 2-process group
def _regression() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g)
    return {"x": x, "y": x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3}


def _fit_linear(out: Path | None = None, **options: object) -> torch.nn.Linear:
    """A linear model fitted by `fit_network` (in whatever process group this runs in); rank 0
    writes its weights and log to ``out``. ``options``: `TrainConfig`'s, over the test's."""
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    data = _regression()

    def mse(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return ((net(batch["x"]).squeeze(-1) - batch["y"]) ** 2).mean()

    base = {"epochs": 8, "batch_size": 16, "learning_rate": 0.05, "warmup_steps": 0}
    config = TrainConfig(**{**base, "patience": 2, "threads": 1, **options})  # type: ignore[arg-type]
    log = fit_network(net, data, mse, lambda: -float(mse(data).detach()), config)
    if out is not None and distributed.rank() == 0:
        torch.save({"state": net.state_dict(), "epochs": len(log.epochs), "log": log}, out)
    return net


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """8 epochs of `_fit_linear` in 2 processes, checkpointed after each."""
    tmp = tmp_path_factory.mktemp("straight")
    distributed.launch(2, _fit_linear, tmp / "ddp.pt", **STRAIGHT, checkpoint_dir=str(tmp / "ck"))
    return torch.load(tmp / "ddp.pt", weights_only=False)


STRAIGHT = {"epochs": 8, "patience": 100}


def test_two_processes_train_as_one_with_the_same_global_batch(straight: dict) -> None:
    """Each rank half of every batch of 16, gradients averaged: the same steps as one process
    on the whole batch (to rounding), the same epochs everywhere."""
    alone = _fit_linear(None, **STRAIGHT)
    for key, value in alone.state_dict().items():
        torch.testing.assert_close(straight["state"][key], value, rtol=1e-5, atol=1e-6)
    assert straight["log"].distributed["rank_epochs"] == [straight["epochs"]] * 2 == [8, 8]
    assert straight["log"].distributed["batch_per_process"] == 8


def test_a_data_parallel_run_resumes_from_its_checkpoint(straight: dict, tmp_path: Path) -> None:
    """Rank 0 writes the checkpoint (with every rank's random state); 4 epochs and then 4 more
    from it end where 8 in one go do."""
    checkpoint = str(tmp_path / "ck")
    distributed.launch(2, _fit_linear, None, **{**STRAIGHT, "epochs": 4}, checkpoint_dir=checkpoint)
    extra = torch.load(tmp_path / "ck" / "optimizer.pt", weights_only=False)
    assert len(extra["torch_rng_ranks"]) == 2
    distributed.launch(2, _fit_linear, tmp_path / "two.pt", **STRAIGHT, checkpoint_dir=checkpoint)
    resumed = torch.load(tmp_path / "two.pt", weights_only=False)
    assert resumed["log"].resumed_from == 4 and resumed["epochs"] == 8
    for key, value in straight["state"].items():
        assert torch.equal(resumed["state"][key], value), key


def _fail(kind: str) -> None:
    if distributed.rank() == 1:
        raise InputError("rank 1 read a bad file") if kind == "input" else RuntimeError("a bug")


@pytest.mark.parametrize("kind", ["input", "bug"])
def test_a_failing_process_fails_the_launch(kind: str) -> None:
    """Bad input in a process is bad input of the launch (one line, exit 2 from the CLI); any
    other failure names the process."""
    if kind == "input":
        with pytest.raises(InputError, match=r"^rank 1 read a bad file$"):
            distributed.launch(2, _fail, kind)
    else:
        with pytest.raises(distributed.WorkerFailed, match=r"process 1 of 2 failed: .*a bug"):
            distributed.launch(2, _fail, kind)

"""The one training loop every neural model shares.

AdamW with linear warm-up, gradient clipping, early stopping on a validation score (NDCG@10) with
the best epoch's weights restored, deterministic seeds, a rich progress bar with loss and
validation score, and checkpoints that let an interrupted run resume where it stopped.

The loop knows nothing about recommendation: it gets a network, the training tensors, a function
that turns a batch into a loss, and a function that scores the network on validation data.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from safetensors.torch import load_file, save_file
from torch import nn

from driftrec import distributed


@dataclass
class TrainConfig:
    """How to train; every neural model passes its constructor arguments through to this."""

    epochs: int = 200
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 100
    clip_norm: float = 1.0
    patience: int = 20  # epochs without a better validation score (and no rising trend) to stop
    time_budget: float | None = None  # seconds of training after which no new epoch starts
    seed: int = 0
    threads: int | None = None  # torch threads; None = every core of the machine
    checkpoint_dir: str | None = None  # write checkpoints here; resume from them if present
    progress: bool = True


@dataclass
class TrainLog:
    """What happened: per-epoch loss, validation score and time, and the epoch kept."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = -math.inf
    stopped_early: bool = False
    resumed_from: int = 0
    start_score: float | None = None  # of the weights training started from, when scored
    positions: int = 0  # next-item targets trained per epoch: the work, whatever the machine
    # data-parallel training only (None with one process): processes, rows per process and
    # batch, and what each rank ran (epochs, best epoch), see `fit_network`
    distributed: dict[str, Any] | None = None

    @property
    def seconds(self) -> float:
        return sum(e["seconds"] for e in self.epochs)


def set_threads(threads: int | None) -> int:
    """Use ``threads`` torch threads (default: all cores, split between the processes when
    training data-parallel); returns the number set."""
    n = threads or distributed.threads_per_process(distributed.world_size())
    if torch.get_num_threads() != n:  # cheap to ask; setting it on every request is not
        torch.set_num_threads(n)
    return n


def _lr_factor(step: int, warmup: int) -> float:
    return min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0


AUXILIARY = "trains_apart"  # attribute that marks a module as an auxiliary part, see `clip_groups`


def train_apart(module: nn.Module) -> nn.Module:
    """Mark ``module`` as an auxiliary part whose gradients are clipped on their own, so a large
    auxiliary gradient cannot shrink the main model's steps (see `clip_groups`)."""
    setattr(module, AUXILIARY, True)
    return module


def clip_groups(net: nn.Module) -> list[list[nn.Parameter]]:
    """The parameters whose gradient norm is clipped together: each module marked with
    `train_apart` on its own, everything else as one group."""
    apart = [m for m in net.modules() if getattr(m, AUXILIARY, False)]
    taken = {id(p) for m in apart for p in m.parameters()}
    main = [p for p in net.parameters() if id(p) not in taken]
    return [group for group in [main, *(list(m.parameters()) for m in apart)] if group]


def fit_network(
    net: torch.nn.Module,
    tensors: dict[str, torch.Tensor],
    loss_fn: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    validate: Callable[[], float] | None,
    config: TrainConfig,
    description: str = "training",
    sizes: torch.Tensor | None = None,
    keep_start: bool = False,
) -> TrainLog:
    """Train ``net`` on the rows of ``tensors`` (all (N, ...) with the same N), in place.

    ``sizes`` (N,), e.g. sequence lengths, makes each batch hold rows of similar size (shuffled
    within a pool of 50 batches, and the batch order shuffled), so a model can drop the padding a
    whole batch shares; the rows seen per epoch are the same.

    With ``validate``, the epoch with the best score is kept and training stops after
    ``config.patience`` epochs without improvement whose scores no longer rise
    (`_patience_spent`); without it, all epochs run. With ``keep_start`` as well (a trained
    network trained further), the starting weights are scored first and kept, as best epoch 0,
    unless an epoch beats them.

    In a process group of N > 1 processes (`driftrec.distributed`), each process trains on its
    1/N share of every batch, of the same batch order (the same seed everywhere), through
    DistributedDataParallel, which averages the gradients: the global batch, the number of
    steps and the learning rate are those of one process. Rank 0 validates; its score, its
    epoch time and so whether to stop are every rank's, so all stop on the same epoch and keep
    the same best weights; only rank 0 writes checkpoints and shows progress.
    """
    world, rank = distributed.world_size(), distributed.rank()
    set_threads(config.threads)
    torch.manual_seed(config.seed)  # replaced by the saved generator state when resuming
    if world > 1:  # own dropout masks and sampled negatives; the batch order stays shared
        torch.manual_seed(distributed.rank_seed(config.seed, rank))
    n = next(iter(tensors.values())).shape[0]
    optimizer = torch.optim.AdamW(
        net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _lr_factor(step, config.warmup_steps)
    )
    generator = torch.Generator().manual_seed(config.seed)
    groups = clip_groups(net)  # the network's parameters do not change while it trains
    log = TrainLog(positions=int(sizes.sum()) if sizes is not None else n)
    best_state = copy.deepcopy(net.state_dict())
    bad_epochs = 0
    checkpoint = Path(config.checkpoint_dir) if config.checkpoint_dir else None
    resume = checkpoint is not None and (checkpoint / "trainer_state.json").is_file()
    if world > 1:
        resume = bool(distributed.from_rank0([float(resume)])[0])
    if resume:
        assert checkpoint is not None
        state = _load_checkpoint(checkpoint, net, optimizer, scheduler, generator, rank)
        log = TrainLog(
            **{
                **state["log"],
                "resumed_from": state["log"]["epochs"][-1]["epoch"],
                "positions": log.positions,
            }
        )
        best_state = load_file(str(checkpoint / "best.safetensors"))
        bad_epochs = state["bad_epochs"]
    elif keep_start and validate is not None:
        log.start_score = log.best_score = _on_rank0(validate, world, rank)
    first_epoch = len(log.epochs) + 1
    step = loss_fn if world == 1 else distributed.data_parallel(net, loss_fn)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
    )
    terminal = Console(stderr=True).is_terminal
    shows = config.progress and rank == 0
    bar_off = not (shows and terminal)
    with Progress(*columns, console=Console(stderr=True), disable=bar_off, transient=True) as bar:
        task = bar.add_task(description, total=config.epochs, completed=first_epoch - 1, status="")
        for epoch in range(first_epoch, config.epochs + 1):
            start = time.perf_counter()
            net.train()
            total, batches = 0.0, 0
            for rows in _batches(n, config.batch_size, generator, sizes):
                if world > 1:
                    rows = distributed.shard(rows, rank, world)
                loss = step({k: v[rows] for k, v in tensors.items()})
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.clip_norm:
                    for group in groups:
                        torch.nn.utils.clip_grad_norm_(group, config.clip_norm)
                optimizer.step()
                scheduler.step()
                total += loss.item()
                batches += 1
            net.eval()
            if world == 1:
                score = validate() if validate is not None else -float(epoch)
                seconds = time.perf_counter() - start
            else:  # the mean loss over the ranks; rank 0's score and time for everyone
                total, batches = distributed.summed([total, batches])
                score = _on_rank0(validate, world, rank) if validate else -float(epoch)
                seconds = distributed.from_rank0([time.perf_counter() - start])[0]
            record = {
                "epoch": epoch,
                "loss": total / max(batches, 1),
                "valid": score if validate is not None else None,  # JSON null, not NaN
                "seconds": seconds,
            }
            log.epochs.append(record)
            if validate is None or score > log.best_score:
                log.best_score, log.best_epoch, bad_epochs = score, epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                bad_epochs += 1
            if checkpoint is not None:
                # every rank's random stream, so that a resumed run draws as this one would
                rngs = (
                    [torch.get_rng_state()]
                    if world == 1
                    else distributed.gathered(torch.get_rng_state())
                )
                if rank == 0:
                    _save_checkpoint(
                        checkpoint,
                        net,
                        best_state,
                        optimizer,
                        scheduler,
                        generator,
                        log,
                        bad_epochs,
                        config,
                        rngs,
                    )
            status = (
                f"loss {record['loss']:.4f}  valid {score:.4f}  "
                f"best {log.best_score:.4f} @ {log.best_epoch}"
            )
            bar.update(task, advance=1, status=status)
            if shows and not terminal:  # a log, not a terminal: one line per epoch
                print(
                    f"{description} epoch {epoch}: {status}  {record['seconds']:.1f}s",
                    file=sys.stderr,
                    flush=True,
                )
            if validate is not None and _patience_spent(log, bad_epochs, config.patience):
                log.stopped_early = True
                break
            if config.time_budget is not None and log.seconds >= config.time_budget:
                log.stopped_early = True
                break
    net.load_state_dict(best_state)
    if world > 1:
        del step  # DistributedDataParallel's gradient hooks go with it
        distributed.copy_from_rank0(net)  # the same already; now bit for bit
        ran = distributed.gathered((len(log.epochs), log.best_epoch))
        log.distributed = {
            "processes": world,
            "backend": distributed.backend(),
            "threads_per_process": torch.get_num_threads(),
            "global_batch": config.batch_size,
            "batch_per_process": math.ceil(config.batch_size / world),
            "learning_rate": config.learning_rate,
            "rank_epochs": [epochs for epochs, _ in ran],
            "rank_best_epochs": [best for _, best in ran],
        }
    net.eval()
    return log


def _patience_spent(log: TrainLog, bad_epochs: int, patience: int) -> bool:
    """Whether to stop: ``patience`` epochs without a better validation score, unless the scores
    of those epochs still rise (least-squares slope > 0: a run improving more slowly than its
    noise sets new bests), and in any case after twice ``patience``."""
    if bad_epochs < patience:
        return False
    if bad_epochs >= 2 * patience:
        return True
    recent = torch.tensor([e["valid"] for e in log.epochs[-patience:]], dtype=torch.float64)
    steps = torch.arange(len(recent), dtype=torch.float64)
    slope = ((steps - steps.mean()) * (recent - recent.mean())).sum()
    return not bool(slope > 0)  # a NaN score stops as a fall does


def _on_rank0(validate: Callable[[], float], world: int, rank: int) -> float:
    """``validate()`` run on rank 0 alone (the others wait), its score on every rank."""
    if world == 1:
        return validate()
    return distributed.from_rank0([validate() if rank == 0 else 0.0])[0]


def _batches(
    n: int, batch_size: int, generator: torch.Generator, sizes: torch.Tensor | None
) -> list[torch.Tensor]:
    """Row indices of each batch of one epoch, in random order."""
    order = torch.randperm(n, generator=generator)
    if sizes is not None:
        pool = 50 * batch_size  # sort by size inside pools of random rows: similar sizes batch up
        order = torch.cat(
            [chunk[torch.argsort(sizes[chunk], stable=True)] for chunk in order.split(pool)]
        )
    batches = list(order.split(batch_size))
    if sizes is not None:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
    return batches


def _save_checkpoint(
    path: Path,
    net: torch.nn.Module,
    best_state: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
    log: TrainLog,
    bad_epochs: int,
    config: TrainConfig,
    rngs: list[torch.Tensor] | None = None,
) -> None:
    """Weights as safetensors, optimizer and sampler state for resuming, progress as JSON;
    ``rngs``: each rank's torch random state (default: this process's)."""
    path.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in net.state_dict().items()}, str(path / "last.safetensors")
    )
    save_file({k: v.contiguous() for k, v in best_state.items()}, str(path / "best.safetensors"))
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(),  # batch order
            "torch_rng": torch.get_rng_state() if rngs is None else rngs[0],  # dropout, negatives
            **({} if rngs is None or len(rngs) == 1 else {"torch_rng_ranks": rngs}),
        },
        path / "optimizer.pt",
    )
    state = {"log": asdict(log), "bad_epochs": bad_epochs, "config": asdict(config)}
    tmp = path / "trainer_state.json.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path / "trainer_state.json")  # written last and atomically: a checkpoint is whole


def _load_checkpoint(
    path: Path,
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
    rank: int = 0,
) -> dict[str, Any]:
    state = json.loads((path / "trainer_state.json").read_text())
    net.load_state_dict(load_file(str(path / "last.safetensors")))
    extra = torch.load(path / "optimizer.pt", weights_only=False)
    optimizer.load_state_dict(extra["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    generator.set_state(extra["generator"])
    ranks = extra.get("torch_rng_ranks", [])  # saved by a data-parallel run: one per rank
    torch.set_rng_state(ranks[rank] if rank < len(ranks) else extra["torch_rng"])
    return state

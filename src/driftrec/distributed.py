"""Data-parallel training of the neural models in several processes (DistributedDataParallel).

`fit_network` asks this module whether it runs in a process group (`world_size` > 1) and, if so,
wraps the loss in `DistributedDataParallel` (`data_parallel`), trains on its own share of each
batch (`shard`) and takes the decisions that must be the same everywhere (the validation score,
stopping, resuming) from rank 0 (`from_rank0`). Everything else in driftrec is unchanged: with
one process nothing here is called.

Two ways in, the same training:

* ``torchrun --nproc_per_node=N -m driftrec.train DATA -m sasrec -o OUT`` (`driftrec.train`):
  torch's elastic launcher starts the processes, each of which joins the group from the
  environment (`init_from_env`).
* ``driftrec train DATA -m sasrec -o OUT --nproc N``: `launch` spawns the N processes itself with
  `torch.multiprocessing` on a free 127.0.0.1 port.

The back end is gloo for CPU tensors (driftrec's models train on the CPU); where CUDA exists the
group is made with ``cpu:gloo,cuda:nccl``, so CUDA tensors would go through NCCL. See
docs/training-distributed.md for the batch size and learning rate, and what is not distributed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from driftrec.errors import InputError

ADDRESS = "127.0.0.1"  # `launch` runs every process on this machine


def world_size() -> int:
    """Processes training together (1 outside a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank in the group (0 outside one)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def backend() -> str:
    """gloo on the CPU; with CUDA, CPU tensors through gloo and CUDA tensors through NCCL."""
    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"


def threads_per_process(processes: int) -> int:
    """The machine's cores split between ``processes`` (at least one each)."""
    return max(1, (os.cpu_count() or 1) // max(1, processes))


def init_from_env() -> bool:
    """Join the process group torchrun describes in the environment (RANK, WORLD_SIZE,
    MASTER_ADDR, MASTER_PORT); False, and nothing done, when there is none or it has one
    process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    if torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend())
    return True


def finish(wait: bool = True) -> None:
    """Leave the process group, if in one. ``wait``: once every rank is there (a rank that
    tears down while another still talks to it, rank 0 hosting the group's store, can abort the
    other's gloo threads: "terminate called without an active exception"); a rank that failed
    leaves at once (the others would wait for it forever)."""
    if dist.is_available() and dist.is_initialized():
        if wait:
            # another rank that failed and left makes the barrier fail: its error is the one
            # to report
            with contextlib.suppress(RuntimeError):
                dist.barrier()
        dist.destroy_process_group()


def leave(code: int = 0) -> NoReturn:
    """Leave the process group and end this process at once with ``code``. Python's normal
    exit runs C++ destructors that can meet gloo's threads still joinable and abort the
    process ("terminate called without an active exception"), about one launch in ten on a
    loaded machine after the work itself had finished; ending here skips them. Standard
    streams are flushed first; files the work wrote are closed by then."""
    finish(wait=code == 0)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# ------------------------------------------------------------------ inside the training loop
class _Objective(nn.Module):
    """The network with its loss as the forward pass, so that everything the loss does with the
    parameters (the models also read the item table outside the network's own forward) happens
    inside DistributedDataParallel's forward."""

    def __init__(self, net: nn.Module, loss_fn: Callable[[dict[str, torch.Tensor]], torch.Tensor]):
        super().__init__()
        self.net = net
        self.loss_fn = loss_fn

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.loss_fn(batch)


def data_parallel(
    net: nn.Module, loss_fn: Callable[[dict[str, torch.Tensor]], torch.Tensor]
) -> DistributedDataParallel:
    """``loss_fn`` over ``net`` as a DistributedDataParallel module: building it copies rank 0's
    parameters and buffers to every rank, and each backward pass averages the gradients over
    the ranks (all-reduce), so the optimizer steps, and so the weights, stay the same everywhere.
    Parameters a loss leaves unused (for some settings) are allowed."""
    # static_graph: the parameters a loss uses are the same every step (found on the first),
    # which also allows unused ones; buffers (frozen item content) are synced once, at the start
    return DistributedDataParallel(
        _Objective(net, loss_fn), forward_sync_buffers=False, static_graph=True
    )


def shard(rows: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's share of one global batch of row indices: every ``world``-th row from
    ``rank`` on (shares differ by at most one row, and rows of similar length stay together).
    A batch smaller than the group is repeated, as DistributedSampler pads, so every rank
    trains on at least one row and all take the same number of steps."""
    if len(rows) < world:
        rows = rows.repeat(-(-world // len(rows)))[:world]
    return rows[rank::world]


def from_rank0(values: list[float]) -> list[float]:
    """Rank 0's ``values`` on every rank (the others pass placeholders of the same length)."""
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.broadcast(tensor, src=0)
    return tensor.tolist()


def summed(values: list[float]) -> list[float]:
    """``values`` summed over the ranks."""
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()


def gathered(value: Any) -> list[Any]:
    """Every rank's ``value`` (picklable), in rank order, on every rank."""
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, value)
    return out


def copy_from_rank0(net: nn.Module) -> None:
    """Overwrite every rank's weights (parameters and buffers) with rank 0's."""
    with torch.no_grad():
        for tensor in net.state_dict().values():
            dist.broadcast(tensor, src=0)


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s own random stream (dropout, sampled negatives): rank 0 keeps
    ``seed``, the others get their own, so their dropout masks differ."""
    return seed if rank == 0 else (seed + 1_000_003 * rank) % 2**63


# ------------------------------------------------------------------ starting the processes
def free_port() -> int:
    with socket.socket() as s:
        s.bind((ADDRESS, 0))
        return int(s.getsockname()[1])


class WorkerFailed(RuntimeError):
    """A training process failed; the message names the process and its error."""


def _worker(
    rank: int, world: int, port: int, threads: int, target: Callable[..., Any], args: tuple
) -> None:
    os.environ.update(
        MASTER_ADDR=ADDRESS,
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_WORLD_SIZE=str(world),
        OMP_NUM_THREADS=str(threads),
    )
    torch.set_num_threads(threads)
    if torch.cuda.is_available():
        torch.cuda.set_device(rank % torch.cuda.device_count())
    # the launcher hosts the group's store, so it outlives every rank's teardown (hosted by
    # rank 0, a rank still leaving when rank 0 had exited could abort)
    store = dist.TCPStore(ADDRESS, port, world, is_master=False)
    dist.init_process_group(backend(), store=store, rank=rank, world_size=world)
    try:
        target(*args)
    except BaseException:
        finish(wait=False)
        raise
    leave(0)


def launch(processes: int, target: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run ``target(*args, **kwargs)`` in ``processes`` new processes (spawned, so ``target`` and
    its arguments must pickle) that form one process group on this machine, with the cores
    split between them (`threads_per_process`); returns when all have finished. An `InputError`
    raised in a process is raised here; any other failure is a `WorkerFailed` naming the
    process."""
    import torch.multiprocessing as mp

    threads = threads_per_process(processes)
    port = free_port()
    store = dist.TCPStore(ADDRESS, port, None, is_master=True, wait_for_workers=False)
    try:
        mp.start_processes(
            _worker,
            args=(processes, port, threads, functools.partial(target, **kwargs), args),
            nprocs=processes,
            join=True,
            start_method="spawn",
        )
    except mp.ProcessRaisedException as err:
        # The child's traceback is the message; its last line is "module.Type: message".
        last = str(err).strip().splitlines()[-1]
        kind, _, message = last.partition(": ")
        if kind.rsplit(".", 1)[-1] in {"InputError", "DataFormatError", "UnknownIdError"}:
            raise InputError(message) from None
        raise WorkerFailed(
            f"training process {err.error_index} of {processes} failed: {last}"
        ) from err
    except mp.ProcessExitedException as err:
        raise WorkerFailed(
            f"training process {err.error_index} of {processes} exited with code {err.exit_code}"
        ) from err
    finally:
        del store  # served until every rank has gone


__all__ = [
    "WorkerFailed",
    "backend",
    "data_parallel",
    "finish",
    "from_rank0",
    "gathered",
    "init_from_env",
    "launch",
    "leave",
    "rank",
    "shard",
    "summed",
    "threads_per_process",
    "world_size",
]

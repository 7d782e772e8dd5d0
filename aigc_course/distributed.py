"""Data-parallel training across processes: the set-up the training scripts share (book 7.3).

``torchrun --nproc_per_node=N script.py`` starts ``N`` copies of a script and gives each the
environment variables ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT``. :func:`setup` reads them and joins the process group (``gloo`` on the CPU,
``nccl`` on CUDA, one GPU per process); run without torchrun it returns a one-process context
and the same script trains as before. Every rank draws the *same* global batch ``(B, ...)``
from the same seed and keeps its own ``B / N`` rows (:func:`shard`); DistributedDataParallel
(:func:`wrap`) averages the gradients with an all-reduce during ``backward``, so each rank
takes the optimiser step the one-process run takes on the whole batch:

.. math:: \\nabla L = \\frac1B\\sum_{i=1}^{B}\\nabla\\ell_i = \\frac1N\\sum_{r=1}^{N}\\frac{N}{B}\\sum_{i\\in r}\\nabla\\ell_i .

Only rank 0 prints (:func:`log`) and writes files (:func:`on_main`); :func:`teardown` leaves
the group. ``with distributed() as ctx:`` does set-up and teardown around a block.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from aigc_course.runtime import get_device

T = TypeVar("T")
ENV_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: ``rank`` of ``world_size``, its ``device`` and ``backend``
    (``None`` when there is no process group, i.e. one process)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and writes checkpoints."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.backend is not None


def _env_int(name: str, environ: dict[str, str]) -> int:
    raw = environ[name]
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer (torchrun sets it), got {raw!r}") from None
    if value < 0:
        raise ValueError(f"environment variable {name} must be >= 0, got {value}")
    return value


def setup(device: torch.device | str | None = None, *, backend: str | None = None,
          timeout_s: float = 300.0, environ: dict[str, str] | None = None) -> DistributedContext:
    """Join the process group torchrun describes, or return a one-process context without it.

    ``device``: the device type to train on (default :func:`~aigc_course.get_device`); on CUDA
    each process takes GPU ``LOCAL_RANK``. ``backend``: default ``"nccl"`` on CUDA, ``"gloo"``
    otherwise. Raises ``ValueError`` naming the environment variable that is missing or wrong.
    """
    environ = dict(os.environ if environ is None else environ)
    device = torch.device(device) if device is not None else get_device()
    if "WORLD_SIZE" not in environ or _env_int("WORLD_SIZE", environ) == 1:
        return DistributedContext(device=device)
    missing = [name for name in (*ENV_VARS, "MASTER_ADDR", "MASTER_PORT") if name not in environ]
    if missing:
        raise ValueError(f"environment variables {', '.join(missing)} must be set for WORLD_SIZE > 1 "
                         "(start the script with torchrun)")
    rank, local_rank, world = (_env_int(name, environ) for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
    if rank >= world:
        raise ValueError(f"environment variable RANK must be < WORLD_SIZE={world}, got {rank}")
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK={local_rank} needs GPU {local_rank}, but {torch.cuda.device_count()} are visible")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = backend or ("nccl" if device.type == "cuda" else "gloo")
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(seconds=timeout_s),
                                init_method=f"tcp://{environ['MASTER_ADDR']}:{environ['MASTER_PORT']}")
    return DistributedContext(rank=rank, local_rank=local_rank, world_size=world, device=device, backend=backend)


def teardown(ctx: DistributedContext) -> None:
    """Leave the process group (after a barrier, so no rank exits while another still talks)."""
    if ctx.is_distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


@contextmanager
def distributed(device: torch.device | str | None = None, **kwargs: Any) -> Iterator[DistributedContext]:
    """``with distributed() as ctx:`` -- :func:`setup`, then :func:`teardown` however the block ends."""
    ctx = setup(device, **kwargs)
    try:
        yield ctx
    finally:
        if ctx.is_distributed and dist.is_initialized():
            dist.destroy_process_group()  # no barrier: a rank that failed must not wait for the others


def shard(batch: torch.Tensor, ctx: DistributedContext) -> torch.Tensor:
    """This rank's rows of the global batch ``(B, ...)``: rows ``rank*B/N .. (rank+1)*B/N`` -> ``(B/N, ...)``.

    ``B`` must divide by ``world_size``: equal shards make the mean of the per-rank mean losses
    the mean over the whole batch, which DDP's gradient average relies on.
    """
    if not isinstance(batch, torch.Tensor) or batch.dim() == 0:
        raise ValueError(f"batch must be a tensor with a batch dimension, got {type(batch).__name__}")
    if len(batch) % ctx.world_size:
        raise ValueError(f"batch size must be divisible by world_size={ctx.world_size}, got {len(batch)}")
    per_rank = len(batch) // ctx.world_size
    return batch[ctx.rank * per_rank : (ctx.rank + 1) * per_rank]


def wrap(model: nn.Module, ctx: DistributedContext) -> nn.Module:
    """``model`` on ``ctx.device``, in DistributedDataParallel when there is a process group.

    DDP broadcasts rank 0's weights at construction, so every rank starts identical.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    model = model.to(ctx.device)
    if not ctx.is_distributed:
        return model
    return DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DDP (whose ``state_dict`` keys carry no ``module.`` prefix)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def mean_across_ranks(value: torch.Tensor | float, ctx: DistributedContext) -> float:
    """A scalar averaged over all ranks (for logging the global loss); the value itself on one process."""
    tensor = torch.as_tensor(value, dtype=torch.float64, device=ctx.device).reshape(1).clone()
    if ctx.is_distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= ctx.world_size
    return float(tensor.item())


def log(ctx: DistributedContext, *args: Any, **kwargs: Any) -> None:
    """``print`` on rank 0 only, so N processes print one log."""
    if ctx.is_main:
        print(*args, **kwargs)


def on_main(ctx: DistributedContext, fn: Callable[[], T]) -> T | None:
    """Run ``fn()`` on rank 0 only (writing a checkpoint), then wait until it is done on every rank."""
    result = fn() if ctx.is_main else None
    if ctx.is_distributed:
        dist.barrier()
    return result


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launched(rank: int, fn: Callable[..., None], world_size: int, port: int, args: tuple) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    fn(*args)


def launch_local(fn: Callable[..., None], world_size: int, *args: Any) -> None:
    """Run ``fn(*args)`` in ``world_size`` local processes with torchrun's environment variables set.

    What ``torchrun --standalone --nproc_per_node=N`` does for a script, for a function: each
    process calls ``fn``, which calls :func:`setup` as a script would. The processes are
    forked (Linux, macOS), so ``fn`` may be defined in a notebook; an exception in any of them
    is raised here.
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {type(fn).__name__}")
    import torch.multiprocessing as mp

    mp.start_processes(_launched, args=(fn, world_size, _free_port(), args), nprocs=world_size,
                       join=True, start_method="fork")

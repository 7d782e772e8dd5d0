"""Chapter 7 exercises: data-parallel training by hand.

The gradient all-reduce of DistributedDataParallel over simulated ranks (checked against the
one-process gradient), the ring all-reduce that NCCL and gloo run, and the indices
``torch.utils.data.DistributedSampler`` gives each rank. References:
:mod:`aigc_course.distributed` and ``torch.utils.data.DistributedSampler``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aigc_course.exercises.core import Case, Exercise, Variant, register

# ---------------------------------------------------------------------------- 7.1 DDP gradients


def _shard_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor, world_size: int, reduction: str = "mean"):
    """Each simulated rank's gradient of its shard's loss, one list of tensors per rank."""
    if len(x) % world_size:
        raise ValueError(f"the batch of {len(x)} rows must divide by world_size={world_size}")
    per_rank = len(x) // world_size
    params = list(model.parameters())
    grads = []
    for rank in range(world_size):
        rows = slice(rank * per_rank, (rank + 1) * per_rank)
        loss = F.mse_loss(model(x[rows]), y[rows], reduction=reduction)
        grads.append(torch.autograd.grad(loss, params))
    return grads


def _ddp_reference(model, x, y, world_size):
    grads = _shard_grads(model, x, y, world_size)
    return [sum(g[i] for g in grads) / world_size for i in range(len(grads[0]))]


def _ddp_cases(gen: torch.Generator, device) -> list[Case]:
    cases = []
    for name, (batch, world, d_in, hidden, d_out) in (
        ("8 rows on 2 ranks", (8, 2, 3, 5, 2)),
        ("12 rows on 3 ranks", (12, 3, 4, 6, 1)),
        ("4 rows on 4 ranks: one row each", (4, 4, 2, 3, 2)),
        ("6 rows on 1 rank: nothing to average", (6, 1, 3, 4, 3)),
    ):
        torch.manual_seed(int(torch.randint(2**31, (1,), generator=gen)))
        model = nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, d_out)).to(device)
        x = torch.randn(batch, d_in, generator=gen).to(device)
        y = torch.randn(batch, d_out, generator=gen).to(device)
        cases.append(Case(name, (model, x, y, world)))
    return cases


def _ddp_variant(kind: str):
    def wrong(case: Case):
        model, x, y, world = case.args
        if kind == "sum_loss":
            grads = _shard_grads(model, x, y, world, reduction="sum")
        else:
            grads = _shard_grads(model, x, y, world)
        n = len(grads[0])
        if kind == "summed":
            return [sum(g[i] for g in grads) for i in range(n)]
        if kind == "one_rank":
            return list(grads[0])
        if kind == "accumulated":  # .grad never cleared between ranks: rank r holds g_0 + ... + g_r
            return [sum((world - r) * grads[r][i] for r in range(world)) / world for i in range(n)]
        return [sum(g[i] for g in grads) / world for i in range(n)]

    return wrong


register(Exercise(
    id="7.1",
    title="The DDP gradient all-reduce by hand",
    function="ddp_gradients",
    reference=_ddp_reference,
    cases=_ddp_cases,
    variants=[
        Variant("you summed the ranks' gradients: an all-reduce with SUM must be followed by a division by "
                "world_size, so that the result is the mean (the full batch's gradient)", _ddp_variant("summed")),
        Variant("that is one rank's gradient alone: every rank's shard gradient must be averaged (the "
                "all-reduce), or the others' data is lost", _ddp_variant("one_rank")),
        Variant("each rank's loss must be the mean over its own rows (F.mse_loss's default), not their sum",
                _ddp_variant("sum_loss")),
        Variant("the gradients accumulated from rank to rank: compute each rank's gradient afresh "
                "(torch.autograd.grad, or zero .grad before each rank's backward)", _ddp_variant("accumulated")),
    ],
    error_hints=[("divide", "the batch splits into world_size equal shards of len(x) // world_size rows")],
    hints=[
        "Rank r owns rows r*B/N .. (r+1)*B/N - 1 of x and y (B = len(x), N = world_size). For each rank compute "
        "the gradient of F.mse_loss(model(x_r), y_r) with torch.autograd.grad(loss, list(model.parameters())) "
        "-- it returns the gradients without touching model's .grad, which must stay unchanged.",
        "Then do what all_reduce(op=SUM) followed by / world_size does: for each parameter, add the N ranks' "
        "gradients and divide by N. Return one tensor per parameter, in model.parameters() order.",
        "params = list(model.parameters())\nper_rank = len(x) // world_size\ngrads = []\n"
        "for r in range(world_size):\n    rows = slice(r * per_rank, (r + 1) * per_rank)\n"
        "    loss = F.mse_loss(model(x[rows]), y[rows])\n    grads.append(torch.autograd.grad(loss, params))\n"
        "return [sum(g[i] for g in grads) / world_size for i in range(len(params))]",
    ],
    explanation=(
        "The mean loss over a batch has as gradient the mean of the per-example gradients; split into $N$ "
        "equal shards, that is the mean of the shards' mean-loss gradients. So after an all-reduce that "
        "sums the ranks' gradients and a division by $N$, every rank holds exactly the gradient one "
        "process would compute on the whole batch, and all ranks take the same step. DDP does this during "
        "backward, bucket by bucket; `torch.distributed.all_reduce(grad, op=ReduceOp.SUM)` then "
        "`grad /= world_size` is the same by hand."
    ),
))


# ---------------------------------------------------------------------------- 7.2 ring all-reduce


def _ring(tensors, reduce_steps: int | None = None, gather: bool = True):
    n = len(tensors)
    chunks = [list(t.clone().tensor_split(n)) for t in tensors]
    for step in range(n - 1 if reduce_steps is None else reduce_steps):  # reduce-scatter
        sent = [chunks[r][(r - step) % n].clone() for r in range(n)]
        for r in range(n):
            c = (r - 1 - step) % n
            chunks[r][c] = chunks[r][c] + sent[(r - 1) % n]
    if gather:
        for step in range(n - 1):  # all-gather: pass the finished chunks around
            sent = [chunks[r][(r + 1 - step) % n].clone() for r in range(n)]
            for r in range(n):
                chunks[r][(r - step) % n] = sent[(r - 1) % n]
    return [torch.cat(c) for c in chunks]


def _ring_reference(tensors):
    return _ring(tensors)


def _ring_cases(gen: torch.Generator, device) -> list[Case]:
    cases = []
    for name, (n, length) in (("4 ranks, 12 numbers each", (4, 12)), ("3 ranks, 10 numbers: unequal chunks", (3, 10)),
                              ("2 ranks, 7 numbers", (2, 7)), ("5 ranks, 5 numbers: one each", (5, 5)),
                              ("1 rank: nothing to send", (1, 4))):
        cases.append(Case(name, ([torch.randn(length, generator=gen).to(device) for _ in range(n)],)))
    return cases


def _ring_variant(kind: str):
    def wrong(case: Case):
        (tensors,) = case.args
        n = len(tensors)
        if kind == "mean":
            return [t / n for t in _ring(tensors)]
        if kind == "no_gather":
            return _ring(tensors, gather=False)
        return _ring(tensors, reduce_steps=max(n - 2, 0))

    return wrong


register(Exercise(
    id="7.2",
    title="The ring all-reduce",
    function="ring_all_reduce",
    reference=_ring_reference,
    cases=_ring_cases,
    variants=[
        Variant("an all-reduce with SUM leaves the sum on every rank; dividing by the number of ranks is "
                "DDP's separate step", _ring_variant("mean")),
        Variant("you stopped after the reduce-scatter: each rank holds one fully summed chunk; N-1 "
                "all-gather steps must pass the finished chunks round the ring", _ring_variant("no_gather")),
        Variant("the reduce-scatter needs N-1 steps (each chunk travels past every other rank); with "
                "one step fewer each chunk misses one rank's values", _ring_variant("short")),
    ],
    hints=[
        "Split every rank's vector into N chunks (t.tensor_split(N)). Reduce-scatter: in step s = 0..N-2, "
        "rank r sends its chunk (r - s) mod N to rank r+1, which adds it to its own copy of that chunk. "
        "After N-1 steps rank r holds the full sum of chunk (r + 1) mod N.",
        "All-gather: in step s = 0..N-2, rank r sends chunk (r + 1 - s) mod N to rank r+1, which replaces "
        "its copy. Take every step's messages before applying any (all ranks send at once), and work on "
        "copies: the input tensors must stay unchanged.",
        "n = len(tensors)\nchunks = [list(t.clone().tensor_split(n)) for t in tensors]\n"
        "for s in range(n - 1):\n    sent = [chunks[r][(r - s) % n].clone() for r in range(n)]\n"
        "    for r in range(n):\n        c = (r - 1 - s) % n\n        chunks[r][c] = chunks[r][c] + sent[(r - 1) % n]\n"
        "for s in range(n - 1):\n    sent = [chunks[r][(r + 1 - s) % n].clone() for r in range(n)]\n"
        "    for r in range(n):\n        chunks[r][(r - s) % n] = sent[(r - 1) % n]\n"
        "return [torch.cat(c) for c in chunks]",
    ],
    explanation=(
        "Sending every gradient to one rank and back costs that rank $2(N-1)$ full copies. In a ring each "
        "rank only talks to its neighbour, and each of the $2(N-1)$ steps moves one chunk of size $1/N$: "
        "every rank sends $2\\frac{N-1}{N}$ times the gradient size, almost independent of $N$ "
        "{cite}`sergeev2018horovod`. NCCL and gloo implement this (and tree variants) for "
        "`all_reduce`; DDP calls it on buckets of gradients while the backward pass is still running."
    ),
))


# ---------------------------------------------------------------------------- 7.3 sampler indices


def _indices_reference(n, world_size, rank):
    total = math.ceil(n / world_size) * world_size
    padded = (list(range(n)) * math.ceil(total / n))[:total]  # wrap round to make the shards equal
    return padded[rank:total:world_size]


def _indices_cases(gen: torch.Generator, device) -> list[Case]:
    n = int(torch.randint(20, 40, (1,), generator=gen))
    return [
        Case(f"{n} examples, 4 ranks, rank 1", (n - n % 4, 4, 1)),
        Case(f"{n + 1} examples, 3 ranks, rank 2: padded", ((n - n % 3) + 1, 3, 2)),
        Case("10 examples, 4 ranks, rank 3: two padded", (10, 4, 3)),
        Case("10 examples, 4 ranks, rank 0", (10, 4, 0)),
        Case("3 examples, 5 ranks, rank 4: wraps round", (3, 5, 4)),
        Case("7 examples, 1 rank", (7, 1, 0)),
    ]


def _indices_variant(kind: str):
    def wrong(case: Case):
        n, world, rank = case.args
        per_rank = math.ceil(n / world)
        total = per_rank * world
        if kind == "contiguous":
            padded = (list(range(n)) * math.ceil(total / n))[:total]
            return padded[rank * per_rank:(rank + 1) * per_rank]
        if kind == "drop_last":
            return list(range(n))[rank:(n // world) * world:world]
        padded = list(range(n)) + [n - 1] * (total - n)
        return padded[rank:total:world]

    return wrong


register(Exercise(
    id="7.3",
    title="Which examples each rank reads",
    function="distributed_indices",
    reference=_indices_reference,
    cases=_indices_cases,
    variants=[
        Variant("DistributedSampler deals the indices out in turn (rank, rank + N, rank + 2N, ...), not in "
                "contiguous blocks", _indices_variant("contiguous")),
        Variant("the last examples were dropped (that is drop_last=True); by default the list is padded to a "
                "multiple of world_size so that every example is read", _indices_variant("drop_last")),
        Variant("the padding repeats indices from the start of the list (0, 1, ...), wrapping round, not the "
                "last index", _indices_variant("pad_last")),
    ],
    hints=[
        "Every rank must get the same number of indices, ceil(n / world_size), so the list 0..n-1 is padded to "
        "total = ceil(n / world_size) * world_size entries by repeating it from the start. Rank r then takes "
        "every world_size-th entry, starting at r.",
        "padded = (list(range(n)) * k)[:total] with k large enough (ceil(total / n)) handles n < world_size too; "
        "then padded[rank:total:world_size].",
        "total = math.ceil(n / world_size) * world_size\n"
        "padded = (list(range(n)) * math.ceil(total / n))[:total]\n"
        "return padded[rank:total:world_size]",
    ],
    explanation=(
        "On a real data set each rank reads only its own examples. `torch.utils.data.DistributedSampler` "
        "(here with `shuffle=False`) makes the shards equal -- DDP's gradient average needs that, and a rank "
        "with fewer batches would wait forever at the all-reduce -- by padding the index list with its own "
        "first entries, then deals them out round-robin. With `shuffle=True` it permutes the indices first "
        "with a seed plus the epoch (`set_epoch`), the same permutation on every rank."
    ),
))

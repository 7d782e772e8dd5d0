"""aigc_course.distributed: 2 processes with gloo take the one-process run's steps exactly."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from aigc_course import distributed
from aigc_course.distributed import DistributedContext
from aigc_course.gpt import GPT, GPTConfig
from aigc_course.training import make_adamw, optimizer_step

STEPS, GLOBAL_BATCH, BLOCK = 4, 8, 16


def train_tiny_gpt(ctx: DistributedContext) -> dict[str, torch.Tensor]:
    """A few AdamW steps of a tiny GPT the way scripts/train_code_gpt.py takes them."""
    torch.manual_seed(0)
    # float64: the all-reduce sums gradients in another order than one process does, and Adam
    # divides by sqrt(v), which magnifies float32's last-digit differences of tiny gradients
    model = GPT(GPTConfig(vocab_size=64, block_size=BLOCK, n_layer=2, n_head=2, n_embd=32)).double()
    data = torch.randint(0, 64, (500,), generator=torch.Generator().manual_seed(1))
    ddp_model = distributed.wrap(model, ctx)
    optimizer = make_adamw(model, 1e-2, 0.1)
    gen = torch.Generator().manual_seed(2)  # the same global batches on every rank
    for _ in range(STEPS):
        ix = torch.randint(len(data) - BLOCK - 1, (GLOBAL_BATCH,), generator=gen)
        x = torch.stack([data[i : i + BLOCK] for i in ix])
        y = torch.stack([data[i + 1 : i + 1 + BLOCK] for i in ix])
        _, loss = ddp_model(distributed.shard(x, ctx), distributed.shard(y, ctx))
        optimizer_step(optimizer, loss, parameters=model.parameters(), grad_clip=1.0)
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k != "lm_head.weight"}


def _worker(out: str) -> None:
    torch.set_num_threads(1)
    ctx = distributed.setup("cpu", timeout_s=60)  # from the environment launch_local sets, as under torchrun
    try:
        assert ctx.backend == "gloo" and ctx.world_size == 2
        state = train_tiny_gpt(ctx)
        distributed.on_main(ctx, lambda: save_file(state, out))
    finally:
        distributed.teardown(ctx)


def test_two_gloo_processes_match_one_process(tmp_path):
    out = tmp_path / "rank0.safetensors"
    one = train_tiny_gpt(DistributedContext())  # first: it also warms up what the forked children inherit
    distributed.launch_local(_worker, 2, str(out))  # forked: they start warm, in a fraction of a second
    two = load_file(out)
    assert two.keys() == one.keys()
    worst = max((two[k] - one[k]).abs().max().item() for k in one)
    assert worst <= 1e-6, f"weights after {STEPS} steps differ by {worst:.3g}"
    start = GPT(GPTConfig(vocab_size=64, block_size=BLOCK, n_layer=2, n_head=2, n_embd=32))
    assert any((one[k] - start.state_dict()[k]).abs().max() > 1e-3 for k in one)  # training moved them


def test_one_process_without_torchrun():
    ctx = distributed.setup("cpu", environ={})
    assert ctx == DistributedContext() and ctx.is_main and not ctx.is_distributed
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model, ctx) is model and distributed.unwrap(model) is model
    assert distributed.mean_across_ranks(torch.tensor(3.0), ctx) == 3.0
    assert distributed.on_main(ctx, lambda: 7) == 7


def test_shard_takes_this_ranks_rows():
    batch = torch.arange(12).reshape(6, 2)
    parts = [distributed.shard(batch, DistributedContext(rank=r, local_rank=r, world_size=3)) for r in range(3)]
    assert torch.equal(torch.cat(parts), batch) and all(len(p) == 2 for p in parts)
    with pytest.raises(ValueError, match="divisible by world_size=4"):
        distributed.shard(batch, DistributedContext(rank=0, world_size=4))


@pytest.mark.parametrize("environ, match", [
    ({"WORLD_SIZE": "2", "RANK": "0"}, "LOCAL_RANK, MASTER_ADDR, MASTER_PORT must be set"),
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE must be an integer"),
    ({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "x", "MASTER_PORT": "1"},
     "RANK must be < WORLD_SIZE=2"),
])
def test_setup_names_the_bad_environment_variable(environ, match):
    with pytest.raises(ValueError, match=match):
        distributed.setup("cpu", environ=environ)


def test_bad_arguments():
    with pytest.raises(ValueError, match="backend must be"):
        distributed.setup("cpu", backend="mpi", environ={"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0",
                                                         "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"})
    with pytest.raises(ValueError, match="world_size must be a positive int"):
        distributed.launch_local(print, 0)
    with pytest.raises(ValueError, match="model must be a torch.nn.Module"):
        distributed.wrap("gpt", DistributedContext())

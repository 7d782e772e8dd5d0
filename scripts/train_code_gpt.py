"""Train the ``code-gpt`` checkpoint: a small GPT on the Python standard library corpus.

    .venv/bin/python scripts/train_code_gpt.py            # train, evaluate, publish
    .venv/bin/python scripts/train_code_gpt.py --steps 20 --no-publish   # smoke run
    .venv/bin/torchrun --nproc_per_node=2 scripts/train_code_gpt.py --threads 1   # 2 processes (DDP)

Under torchrun every process draws the same global batch of ``--batch-size`` windows and
trains on its ``batch-size / world_size`` rows (``aigc_course.distributed``); DDP averages the
gradients, so the weights follow the one-process run. Rank 0 alone evaluates, logs and publishes.

Data: ``aigc_course.data.python_corpus()`` (2M training characters, split by file hash;
the test split is the held-out set every Chapter 1 / 3.1 model is scored on). Tokens: a
byte-level BPE learned on the training split. Model: GPT-2 architecture, 4 layers,
4 heads, 128 dimensions. Optimiser: AdamW with linear warm-up and cosine decay.
The held-out score is bits per character: total bits over the test text / its characters.
"""

from __future__ import annotations

import argparse
import functools
import platform
import time

import torch
from publishing import publish

from aigc_course import distributed, seed_everything
from aigc_course.data import python_corpus
from aigc_course.gpt import GPT, GPTConfig, sequence_bits
from aigc_course.tokenizers import ByteBPETokenizer
from aigc_course.training import make_adamw, optimizer_step, run_steps, training_mode, warmup_cosine


def get_batch(data: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator):
    """Random windows of ``data``: inputs ``(B, T)`` and the next tokens ``(B, T)``."""
    ix = torch.randint(len(data) - block_size - 1, (batch_size,), generator=generator)
    x = torch.stack([data[i : i + block_size] for i in ix])
    y = torch.stack([data[i + 1 : i + 1 + block_size] for i in ix])
    return x, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=24)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-chars", type=int, default=2_000_000, help="corpus size (smaller for smoke runs)")
    parser.add_argument("--no-publish", action="store_true")
    args = parser.parse_args()

    with distributed.distributed() as ctx:
        train(args, ctx)


def train(args: argparse.Namespace, ctx: distributed.DistributedContext) -> None:
    log = functools.partial(distributed.log, ctx)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    gen = seed_everything(args.seed)  # the same stream on every rank: the same global batches
    corpus = python_corpus(max_chars=args.max_chars)
    log(corpus.describe())
    tokenizer = ByteBPETokenizer.train(corpus.train, args.vocab_size)
    train_ids = torch.tensor(tokenizer.encode(corpus.train), dtype=torch.long)
    valid_ids = torch.tensor(tokenizer.encode(corpus.valid), dtype=torch.long)
    test_ids = torch.tensor(tokenizer.encode(corpus.test), dtype=torch.long)
    log(f"BPE {tokenizer.vocab_size} tokens, {time.perf_counter() - t0:.1f}s; train {len(train_ids):,} tokens "
        f"({len(corpus.train) / len(train_ids):.2f} chars/token)")

    config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=args.block_size, n_layer=args.n_layer,
                       n_head=args.n_head, n_embd=args.n_embd, dropout=0.0, bias=True)
    model = GPT(config)
    log(f"GPT {model.num_params() / 1e6:.2f}M parameters; {ctx.world_size} process(es), "
        f"{args.batch_size // ctx.world_size} of {args.batch_size} windows each per step")
    ddp_model = distributed.wrap(model, ctx)  # DDP: gradients averaged across ranks in backward
    optimizer = make_adamw(model, args.lr, args.weight_decay, betas=(0.9, 0.99))

    def step_fn(step: int) -> float:  # linear warm-up, then a cosine down to lr / 10
        x, y = get_batch(train_ids, args.batch_size, args.block_size, gen)
        x, y = distributed.shard(x, ctx).to(ctx.device), distributed.shard(y, ctx).to(ctx.device)
        _, loss = ddp_model(x, y)
        value = optimizer_step(optimizer, loss, parameters=model.parameters(), grad_clip=1.0,
                               lr=warmup_cosine(step, args.steps, args.warmup, floor=0.1, peak=args.lr))
        return distributed.mean_across_ranks(value, ctx)  # the whole batch's loss, as one process logs it

    t_train = time.perf_counter()
    with training_mode(model):
        history = run_steps(step_fn, args.steps, desc="code-gpt", refresh_every=10, progress=ctx.is_main)
    train_seconds = time.perf_counter() - t_train
    if not ctx.is_main:
        return  # rank 0 evaluates and publishes; the others' weights are the same
    model.cpu()

    eval_gen = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        valid_loss = sum(model(*get_batch(valid_ids, 32, args.block_size, eval_gen))[1].item() for _ in range(4)) / 4
    test_bits = sequence_bits(model, test_ids)
    test_bpc = test_bits / len(corpus.test)
    total_seconds = time.perf_counter() - t0
    log(f"train loss (last 50) {sum(history.loss[-50:]) / 50:.4f}  valid loss {valid_loss:.4f} nats/token  "
        f"test {test_bpc:.4f} bits/char  train {train_seconds:.0f}s  total {total_seconds:.0f}s")

    record = {
        "model": config.to_dict(),
        "tokenizer": tokenizer.to_dict(),
        "training": {
            "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "warmup": args.warmup,
            "schedule": "linear warm-up, cosine to lr/10", "optimizer": "AdamW betas=(0.9, 0.99)",
            "weight_decay": args.weight_decay, "grad_clip": 1.0, "seed": args.seed,
            "tokens_seen": args.steps * args.batch_size * args.block_size,
            "train_seconds": round(train_seconds, 1), "total_seconds": round(total_seconds, 1),
            "threads": args.threads, "processes": ctx.world_size,
            "machine": platform.processor() or platform.machine(),
            "torch": torch.__version__,
        },
        "data": {
            "corpus": "aigc_course.data.python_corpus(max_chars=2_000_000)",
            "split": "by sha256 of each file's relative path: 90% train / 5% valid / 5% test",
            "source": corpus.source,
            "chars": {k: len(corpus.split(k)) for k in ("train", "valid", "test")},
            "tokens": {"train": len(train_ids), "valid": len(valid_ids), "test": len(test_ids)},
            "test_files": corpus.files["test"],
        },
        "metrics": {
            "train_loss_last50": round(sum(history.loss[-50:]) / 50, 4),
            "valid_loss_nats_per_token": round(valid_loss, 4),
            "test_bits_per_char": round(test_bpc, 4),
            "test_eval": f"sliding windows of {args.block_size} tokens, stride {args.block_size // 2}",
        },
    }
    if not args.no_publish:
        entry = publish(
            "code-gpt", model.state_dict(), record, builder="aigc_course.gpt:GPTPipeline",
            description="GPT-2-style 4x128 byte-BPE model of Python standard-library code (Chapter 3.1)",
            script="scripts/train_code_gpt.py",
        )
        log(f"published code-gpt: {entry['bytes'] / 1e6:.2f} MB")


if __name__ == "__main__":
    main()

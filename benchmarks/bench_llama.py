"""Book 2.2.1: LLaMA's architecture beside GPT's, measured on the code corpus of Chapter 3.1.

    .venv/bin/python benchmarks/bench_llama.py                  # everything, one thread (5-6 CPU minutes)
    .venv/bin/python benchmarks/bench_llama.py --only memory     # one section
    .venv/bin/python benchmarks/bench_llama.py --steps 40        # a smoke run

Three models with the same parameter count (position embeddings aside) are trained with the
same recipe on the same batches of ``aigc_course.data.python_corpus()``, tokenised with the
byte-level BPE of the shipped ``code-gpt`` checkpoint: GPT-2's architecture, LLaMA's with
multi-head attention, and LLaMA's with grouped-query attention (4 query heads per K/V head),
whose SwiGLU is widened by the weights GQA saves. Every figure below is measured in this run:

* quality: held-out bits per character (sliding windows, as code-gpt is scored);
* speed: training tokens per second (forward + backward + AdamW) and generation tokens per
  second with the KV cache, per CPU second of the one thread (the fewest of interleaved
  repeats), so that other processes on a shared machine do not count;
* memory: bytes of the KV-cache tensors, and the peak bytes of tensors alive during a
  generation (GQA expands its K/V heads for one layer at a time);
* context: the trained LLaMA's loss at each position when run past the context it was
  trained on (its weights fit any length; GPT's position table does not).

Targets from the issue are printed as PASS / MISS next to the measured figure, never asserted.
"""

from __future__ import annotations

import argparse
import copy
import platform
import time
from datetime import date

import torch
from bench_gpt import table, verdict

from aigc_course import pretrained, seed_everything
from aigc_course.attention import peak_memory
from aigc_course.data import python_corpus
from aigc_course.gpt import GPT, GPTConfig, sequence_bits
from aigc_course.llama import (
    Llama,
    LlamaConfig,
    kv_cache_bytes,
    loss_by_position,
    train_language_model,
)

N_LAYER, N_HEAD, N_EMBD, BLOCK = 4, 4, 64, 128
RECIPE = dict(batch_size=16, lr=3e-3, warmup=40, weight_decay=0.1)


def cpu_timed(fns: dict, repeat: int) -> dict[str, float]:
    """Fewest CPU seconds of this thread per call of each function, calls interleaved.

    CPU time of the calling thread, not wall time: with one torch thread the work runs in this
    thread, and the time other processes of a shared machine take is not counted.
    """
    for fn in fns.values():
        fn()  # warm-up
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.thread_time()
            fn()
            best[name] = min(best[name], time.thread_time() - t0)
    return best


def build_models(vocab_size: int) -> dict[str, torch.nn.Module]:
    """GPT, LLaMA (MHA) and LLaMA (GQA 4:1), each seeded the same way, tied embeddings for all three."""
    shape = dict(vocab_size=vocab_size, block_size=BLOCK, n_layer=N_LAYER, n_head=N_HEAD, n_embd=N_EMBD)
    mha = LlamaConfig(**shape, tie_embeddings=True)
    saved = 2 * N_EMBD * (N_EMBD - N_EMBD // N_HEAD)  # K and V: n_embd -> n_embd becomes n_embd -> head_dim
    gqa = LlamaConfig(**shape, n_kv_head=1, tie_embeddings=True, mlp_hidden=mha.mlp_hidden + saved // (3 * N_EMBD))
    models = {}
    for name, make in (("GPT-2 style", lambda: GPT(GPTConfig(**shape))), ("LLaMA, MHA", lambda: Llama(mha)),
                       ("LLaMA, GQA 4:1", lambda: Llama(gqa))):
        seed_everything(0)
        models[name] = make()
    return models


def describe(models: dict) -> None:
    rows = []
    for name, m in models.items():
        c = m.config
        kind = (f"LayerNorm, GELU MLP 4x{c.n_embd}, learned positions, biases" if isinstance(m, GPT) else
                f"RMSNorm, SwiGLU {c.mlp_hidden}, RoPE, no biases, {c.n_kv_head} K/V heads")
        total = sum(p.numel() for p in m.parameters())
        rows.append([name, f"{c.n_layer}L/{c.n_head}H/{c.n_embd}d", kind, f"{total:,}", f"{m.num_params():,}"])
    table("The three models (tied input/output embeddings; 'without positions' leaves out GPT's position table)",
          ["model", "shape", "parts", "parameters", "without positions"], rows)


def bench_quality(models: dict, steps: int) -> None:
    tokenizer = pretrained.load("code-gpt", device="cpu").tokenizer
    corpus = python_corpus()
    train_ids = torch.tensor(tokenizer.encode(corpus.train))
    test_ids = torch.tensor(tokenizer.encode(corpus.test))
    tokens = steps * RECIPE["batch_size"] * BLOCK
    rows, bpc = [], {}
    for name, model in models.items():
        history = train_language_model(model, train_ids, steps=steps, desc=name, progress=False, **RECIPE)
        t0 = time.perf_counter()
        bpc[name] = sequence_bits(model, test_ids) / len(corpus.test)
        rows.append([name, f"{sum(history.loss[-50:]) / len(history.loss[-50:]):.3f}", f"{bpc[name]:.3f}",
                     f"{history.seconds:.0f}", f"{time.perf_counter() - t0:.0f}"])
    table(f"Quality after {steps} steps of {RECIPE['batch_size']} x {BLOCK} tokens ({tokens:,} training tokens, "
          f"same batches; AdamW lr {RECIPE['lr']}, warm-up {RECIPE['warmup']} then cosine to lr/10); held-out "
          f"split {len(corpus.test):,} characters; lower is better",
          ["model", "train loss, last 50 steps (nats/token)", "held-out bits / char", "train seconds (wall)",
           "scoring seconds (wall)"], rows)
    base = bpc["GPT-2 style"]
    print("\n" + "; ".join(f"{name}: {value / base:.3f}x GPT's bits/char" for name, value in bpc.items()
                           if name != "GPT-2 style"))
    bench_context(models["LLaMA, MHA"], test_ids)


def bench_throughput(models: dict, repeat: int = 6) -> None:
    batch = RECIPE["batch_size"]
    x = torch.randint(0, models["GPT-2 style"].config.vocab_size, (batch, BLOCK + 1),
                      generator=torch.Generator().manual_seed(0))
    models = {name: copy.deepcopy(model) for name, model in models.items()}  # leave the trained ones as they are
    steps = {}
    for name, model in models.items():
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step(model=model, opt=opt):
            loss = model(x[:, :-1], x[:, 1:])[1]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        steps[name] = step
    for model in models.values():
        model.train()
    train_s = cpu_timed(steps, repeat=repeat)
    prompt_len, new = 16, BLOCK - 16
    gens = {}
    for name, model in models.items():
        for b in (1, 16):
            prompt = x[:b, :prompt_len]
            gens[name, b] = lambda m=model, p=prompt: m.generate(p, new, temperature=0.0)
    gen_s = cpu_timed({f"{k[0]}|{k[1]}": fn for k, fn in gens.items()}, repeat=repeat)
    rows = []
    ref = train_s["GPT-2 style"]
    for name in models:
        g1, g16 = gen_s[f"{name}|1"], gen_s[f"{name}|16"]
        rows.append([name, f"{batch * BLOCK / train_s[name]:,.0f}", f"{ref / train_s[name]:.2f}x",
                     f"{new / g1:,.0f}", f"{16 * new / g16:,.0f}"])
    table(f"Speed per CPU second ({torch.get_num_threads()} thread; fewest CPU seconds of {repeat} interleaved "
          f"repeats). Training: one "
          f"step of {batch} x {BLOCK} tokens. Generation: greedy, KV cache, {new} tokens after a {prompt_len}-token "
          "prompt", ["model", "train tokens / s", "vs GPT", "generated tokens / s, batch 1",
                     "generated tokens / s, batch 16"], rows)


def bench_memory(models: dict) -> None:
    rows = []
    mha_bytes = kv_cache_bytes(models["LLaMA, MHA"])
    for name, model in models.items():
        c = model.config
        heads = getattr(c, "n_kv_head", c.n_head)
        cache = kv_cache_bytes(model, batch_size=16)
        prompt = torch.zeros(16, 16, dtype=torch.long)
        peak = peak_memory(lambda m=model, p=prompt: m.generate(p, BLOCK - 16, temperature=0.0))
        rows.append([name, heads, f"{kv_cache_bytes(model):,}", f"{cache / 2**20:.2f}",
                     f"{mha_bytes / kv_cache_bytes(model):.1f}x", f"{peak / 2**20:.2f}"])
    table(f"KV-cache memory: bytes of the key and value tensors for the full context of {BLOCK} tokens (float32); "
          "peak = all tensors alive at once during a greedy generation of batch 16 filling the context",
          ["model", "K/V heads", "cache bytes, batch 1", "cache MiB, batch 16", "less than MHA",
           "peak MiB during generation"], rows)
    ratio = mha_bytes / kv_cache_bytes(models["LLaMA, GQA 4:1"])
    print(f"\nGQA with {N_HEAD} query heads per K/V head: {ratio:.2f}x less KV-cache memory "
          f"({verdict(ratio >= 4)}: target 4x)")
    long_rows = []
    for name in ("LLaMA, MHA", "LLaMA, GQA 4:1"):
        model = models[name].with_block_size(4096)
        long_rows.append([name, f"{kv_cache_bytes(model, batch_size=8) / 2**20:.0f}"])
    table("The same layers with a 4096-token context, batch 8 (caches allocated and measured)",
          ["model", "KV-cache MiB"], long_rows)


@torch.no_grad()
def bench_context(model: Llama, test_ids: torch.Tensor) -> None:
    """The trained LLaMA's loss by position when run on windows 4x longer than its context."""
    longer = model.with_block_size(4 * BLOCK)
    per_position = loss_by_position(longer, test_ids, 4 * BLOCK)
    rows = []
    for lo, hi in ((0, 16), (16, BLOCK), (BLOCK, 2 * BLOCK), (2 * BLOCK, 4 * BLOCK)):
        trained = "inside" if hi <= BLOCK else "past"
        rows.append([f"{lo}-{hi - 1}", trained, f"{per_position[lo:hi].mean():.3f}"])
    table(f"LLaMA (MHA) run on {4 * BLOCK}-token windows after training on {BLOCK}: mean loss (nats/token) by "
          "position, 64 windows of the held-out split", ["positions", "trained context", "loss"], rows)


SECTIONS = ("quality", "speed", "memory")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{date.today()}, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), CPU")
    t0 = time.perf_counter()
    models = build_models(pretrained.load("code-gpt", device="cpu").tokenizer.vocab_size)
    describe(models)
    if "quality" in args.only:
        bench_quality(models, args.steps)
    if "speed" in args.only:
        bench_throughput(models)
    if "memory" in args.only:
        bench_memory(models)
    print(f"\ntotal {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()

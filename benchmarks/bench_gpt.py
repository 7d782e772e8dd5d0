"""Chapter 3.1 benchmarks: attention speed and memory, the KV cache, training throughput, quality.

    .venv/bin/python benchmarks/bench_gpt.py            # all tables (about 1-2 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_gpt.py --only speed memory
    .venv/bin/python benchmarks/bench_gpt.py --only generation --baseline ../main   # vs another checkout

Every ratio is measured side by side in this one run. Timings are the fastest of interleaved
repeats (the methods alternate, so a busy machine slows them alike). Targets from the
issue are printed next to each measured figure, as PASS / MISS, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from aigc_course import get_device
from aigc_course.attention import (
    attend,
    blockwise_attention,
    peak_memory,
    scaled_dot_product_attention,
)
from aigc_course.gpt import GPT, GPTConfig


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fns: dict, repeat: int, device: torch.device) -> dict[str, float]:
    """Fastest seconds per call of each function, calls interleaved across functions.

    The minimum, not the mean: on a shared machine other processes only ever add time.
    """
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return {name: min(ts) for name, ts in times.items()}


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


@torch.no_grad()
def bench_speed(device: torch.device) -> None:
    rows = []
    for b, h, t, d in [(8, 4, 64, 32), (4, 4, 256, 32), (2, 8, 512, 64), (1, 4, 1024, 64)]:
        g = torch.Generator(device=device).manual_seed(0)
        q, k, v = (torch.randn(b, h, t, d, generator=g, device=device) for _ in range(3))
        fns = {
            "torch": lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
            "fast": lambda q=q, k=k, v=v: attend(q, k, v, is_causal=True, backend="sdpa"),
            "manual": lambda q=q, k=k, v=v: scaled_dot_product_attention(q, k, v, is_causal=True),
            "blockwise": lambda q=q, k=k, v=v: blockwise_attention(q, k, v, is_causal=True),
        }
        s = timed(fns, repeat=15, device=device)
        ref = s["torch"]
        rows.append([f"({b}, {h}, {t}, {d})", f"{ref * 1e3:.2f}", f"{s['fast'] * 1e3:.2f}", f"{s['fast'] / ref:.2f}x",
                     f"{s['manual'] * 1e3:.2f}", f"{s['manual'] / ref:.2f}x", f"{s['blockwise'] * 1e3:.2f}",
                     f"{s['blockwise'] / ref:.2f}x", verdict(s["fast"] / ref <= 1.2)])
    table("Attention speed (causal, forward, ms per call; ratio = time / torch SDPA)",
          ["(B, H, T, d)", "torch SDPA", "fast path", "ratio", "hand-written", "ratio", "blockwise", "ratio",
           "fast <= 1.2x"], rows)


def bench_memory(device: torch.device) -> None:
    rows = []
    for t in (1024, 2048, 4096):
        g = torch.Generator(device=device).manual_seed(0)
        q, k, v = (torch.randn(1, 1, t, 64, generator=g, device=device) for _ in range(3))
        plain = peak_memory(lambda q=q, k=k, v=v: scaled_dot_product_attention(q, k, v, is_causal=True))
        block = peak_memory(lambda q=q, k=k, v=v: blockwise_attention(q, k, v, is_causal=True, block_size=128))
        ok = "" if t != 4096 else verdict(plain / block >= 8)
        rows.append([t, f"{plain / 2**20:.1f}", f"{block / 2**20:.2f}", f"{plain / block:.1f}x", ok])
    table("Attention memory (peak MiB of tensors created by the call; B=1, H=1, d=64, causal, key block 128)",
          ["T", "plain (T x T scores)", "blockwise", "plain / blockwise", ">= 8x at 4096"], rows)


DECODERS = {"greedy": dict(temperature=0.0), "top-p 0.9, T 0.8": dict(temperature=0.8, top_p=0.9)}


@torch.no_grad()
def generation_times(device: torch.device, new_tokens: int, repeat: int) -> tuple[dict[str, float], bool]:
    """Fastest seconds of ``GPT.generate`` per (decoder, cache) setting, and whether the cache
    changed any token. Only the public ``generate`` is called, so any version of the package runs it."""
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=1024, block_size=1024, n_layer=4, n_head=4, n_embd=128)
    model = GPT(config).to(device).eval()
    prompt = torch.randint(0, 1024, (1, 16), device=device)
    out = {}

    def run(name: str, use_cache: bool):
        gen = torch.Generator(device=device).manual_seed(0)
        out[name, use_cache] = model.generate(prompt, new_tokens, use_cache=use_cache, generator=gen, **DECODERS[name])

    fns = {f"{name}|{use_cache}": lambda name=name, use_cache=use_cache: run(name, use_cache)
           for name in DECODERS for use_cache in (True, False)}
    seconds = timed(fns, repeat=repeat, device=device)
    same = all(torch.equal(out[name, True], out[name, False]) for name in DECODERS)
    return seconds, same


def _generation_in(checkout: Path, device: torch.device, new_tokens: int) -> dict[str, float]:
    """:func:`generation_times` in a fresh interpreter that imports ``aigc_course`` from ``checkout``."""
    env = dict(os.environ, PYTHONPATH=str(checkout.resolve()), AIGC_DEVICE=str(device))
    cmd = [sys.executable, __file__, "--generation-worker", str(new_tokens), "--threads", str(torch.get_num_threads())]
    done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_generation(device: torch.device, new_tokens: int = 512, baseline: Path | None = None,
                     rounds: int = 3) -> None:
    title = f"Generation, {new_tokens} new tokens after a 16-token prompt (4 layers, 128 dims, batch 1)"
    if baseline is None:
        seconds, same = generation_times(device, new_tokens, repeat=1)
        rows = []
        for name in DECODERS:
            cached, full = seconds[f"{name}|True"], seconds[f"{name}|False"]
            rows.append([name, "no KV cache", f"{full:.2f}", f"{new_tokens / full:.0f}", "1.0x", "", ""])
            rows.append([name, "KV cache", f"{cached:.2f}", f"{new_tokens / cached:.0f}", f"{full / cached:.1f}x",
                         same, verdict(full / cached >= 5)])
        table(title, ["decoder", "method", "seconds", "tokens / s", "speed-up", "same tokens", ">= 5x"], rows)
        return
    # this checkout against another one, each in its own interpreter, alternating; fastest round counts
    here = Path(__file__).resolve().parents[1]
    best: dict[str, dict[str, float]] = {"baseline": {}, "this checkout": {}}
    for _ in range(rounds):
        for label, checkout in (("baseline", baseline), ("this checkout", here)):
            for key, sec in _generation_in(checkout, device, new_tokens).items():
                best[label][key] = min(sec, best[label].get(key, float("inf")))
    rows = []
    for key in best["baseline"]:
        name, use_cache = key.split("|")
        old, new = best["baseline"][key], best["this checkout"][key]
        rows.append([name, "KV cache" if use_cache == "True" else "no KV cache", f"{new_tokens / old:.0f}",
                     f"{new_tokens / new:.0f}", f"{old / new:.2f}x"])
    table(f"{title}: tokens / s, baseline {baseline} vs this checkout (fastest of {rounds} alternating rounds)",
          ["decoder", "method", "baseline", "this checkout", "speed ratio"], rows)


def bench_training(device: torch.device, steps: int = 8) -> None:
    rows = []
    for name, cfg, batch in [
        ("nanoGPT CPU config (chars)", GPTConfig(vocab_size=96, block_size=64, n_layer=4, n_head=4, n_embd=128), 12),
        ("code-gpt config (BPE)", GPTConfig(vocab_size=1024, block_size=128, n_layer=4, n_head=4, n_embd=128), 24),
    ]:
        torch.manual_seed(0)
        model = GPT(cfg).to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = torch.randint(0, cfg.vocab_size, (batch, cfg.block_size + 1), device=device)

        def step(model=model, opt=opt, x=x):
            _, loss = model(x[:, :-1], x[:, 1:])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        sec = timed({"step": step}, repeat=steps, device=device)["step"]
        tokens = batch * cfg.block_size
        rows.append([name, f"{cfg.n_layer}L/{cfg.n_head}H/{cfg.n_embd}d", cfg.block_size, batch,
                     f"{model.num_params() / 1e6:.2f}M", f"{sec * 1e3:.0f}", f"{tokens / sec:,.0f}"])
    table(f"Training throughput (forward + backward + AdamW, {torch.get_num_threads()} threads, {device})",
          ["config", "model", "block", "batch", "params", "ms / step", "tokens / s"], rows)


def bench_quality(device: torch.device) -> None:
    from aigc_course import pretrained
    from aigc_course.classic.ngram import NGramLanguageModel
    from aigc_course.data import python_corpus
    from aigc_course.gpt import bits_per_char

    corpus = python_corpus()
    rows, best = [], float("inf")
    for n in range(1, 6):
        bpc = NGramLanguageModel(n, smoothing="kneser_ney").fit(corpus.train).bits_per_char(corpus.test)
        best = min(best, bpc)
        rows.append([f"{n}-gram, Kneser-Ney", f"{bpc:.3f}", ""])
    pipe = pretrained.load("code-gpt", device=device)
    t0 = time.perf_counter()
    gpt_bpc = bits_per_char(pipe.model, pipe.tokenizer, corpus.test)
    seconds = time.perf_counter() - t0
    rows.append([f"code-gpt ({pipe.model.num_params() / 1e6:.2f}M params, BPE {pipe.tokenizer.vocab_size})",
                 f"{gpt_bpc:.3f}", verdict(gpt_bpc < best)])
    table(f"Quality: bits per character on the held-out split ({len(corpus.test):,} chars; "
          f"code-gpt scored in {seconds:.0f}s; lower is better)",
          ["model", "test bits / char", "beats best n-gram"], rows)
    print(f"\ncode-gpt / best n-gram = {gpt_bpc / best:.3f} ({gpt_bpc:.3f} vs {best:.3f} bits per char)")


SECTIONS = {"speed": bench_speed, "memory": bench_memory, "generation": bench_generation,
            "training": bench_training, "quality": bench_quality}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=sorted(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--baseline", type=Path, help="generation: also time the package of this checkout")
    parser.add_argument("--generation-worker", type=int, metavar="NEW_TOKENS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = get_device()
    if args.generation_worker:  # one round for --baseline, printed as JSON
        print(json.dumps(generation_times(device, args.generation_worker, repeat=1)[0]))
        return
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    t0 = time.perf_counter()
    for name in args.only:
        if name == "generation":
            bench_generation(device, baseline=args.baseline)
        else:
            SECTIONS[name](device)
    print(f"\ntotal {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()

"""Chapter 2.2, larger: held-out loss against parameter count for tiny GPTs, with a power-law fit.

The notebook trains five GPTs (widths 8-48) for 300 steps; this trains more widths for more
steps, on the same data (the Python standard library, character level) and under the same rule:
every model sees the **same number of training tokens** from the same seeded batches. Prints
one row per model, then the fitted ``L(N) = a N^-alpha`` with its R^2, and also the fit over the
notebook's widths only, side by side. Also checks eq. 2.2.1 against GPT-3's published sizes.
Run: ``.venv/bin/python benchmarks/bench_scaling.py [--steps 800] [--widths 8 16 24 32 48 64 96]``.
"""

from __future__ import annotations

import argparse
import platform

import torch

from aigc_course import get_device
from aigc_course.data import python_corpus
from aigc_course.scaling import GPT3_CONFIGS, fit_power_law, parameter_count, run_scaling_experiment
from aigc_course.tokenizers import CharTokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 16, 24, 32, 48, 64, 96])
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()
    device = get_device()
    print(f"Python {platform.python_version()}, torch {torch.__version__}, device {device}, "
          f"threads {torch.get_num_threads()}\n")

    print("| GPT-3 model | eq. 2.2.1 | published | error |")
    print("|---|---|---|---|")
    for name, c in GPT3_CONFIGS.items():
        n = parameter_count(c)
        print(f"| {name} | {n / 1e9:.3f} B | {c['published'] / 1e9:.3f} B | {n / c['published'] - 1:+.2%} |")

    corpus = python_corpus(max_chars=1_000_000)
    tok = CharTokenizer.train(corpus.train + corpus.valid)
    train_ids = torch.tensor(tok.encode(corpus.train))
    valid_ids = torch.tensor(tok.encode(corpus.valid))
    print(f"\n{corpus.describe()}; {args.layers} layers, {args.steps} steps of {args.batch}x{args.block} tokens\n")
    runs = run_scaling_experiment(args.widths, train_ids, valid_ids, tok.vocab_size, n_layer=args.layers,
                                  block_size=args.block, batch_size=args.batch, num_steps=args.steps,
                                  device=device, progress=False)
    print("| width | N (non-emb.) | N (all) | tokens | 6ND FLOPs | held-out loss | train s |")
    print("|---|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r.config.n_embd} | {r.non_embedding_params:,} | {r.params:,} | {r.tokens:,} | {r.flops:.2e} | "
              f"{r.valid_loss:.4f} | {r.seconds:.1f} |")
    print("\n| fit over | a | alpha | R^2 |")
    print("|---|---|---|---|")
    subsets = {"all widths": runs, "widths 8-48 (the notebook's)": [r for r in runs if r.config.n_embd <= 48]}
    for label, rs in subsets.items():
        if len(rs) >= 2:
            law = fit_power_law([r.non_embedding_params for r in rs], [r.valid_loss for r in rs])
            print(f"| {label} | {law.coefficient:.3f} | {law.exponent:.4f} | {law.r2:.4f} |")
    print("\nKaplan et al. (2020) report alpha_N ~ 0.076 for converged models on WebText2.")


if __name__ == "__main__":
    main()

"""Chapter 1 baseline table: n-gram language models on the standard-library corpus.

Prints held-out bits per character for n = 1..5 with add-one and interpolated Kneser-Ney
smoothing, with fit and scoring times, and the ``char-lstm`` checkpoint on the same split.
Run: ``.venv/bin/python benchmarks/bench_ngram.py``.
"""

from __future__ import annotations

import platform
import time

import torch

from aigc_course import pretrained
from aigc_course.classic import NGramLanguageModel
from aigc_course.data import python_corpus


def main() -> None:
    corpus = python_corpus()
    print(corpus.describe())
    print(f"Python {platform.python_version()}, torch threads {torch.get_num_threads()}\n")
    print("| model | valid bpc | test bpc | test perplexity | stored numbers | fit s | score s |")
    print("|---|---|---|---|---|---|---|")
    best = None
    for smoothing in ("add_k", "kneser_ney"):
        for n in range(1, 6):
            t0 = time.perf_counter()
            model = NGramLanguageModel(n, smoothing).fit(corpus.train)
            t1 = time.perf_counter()
            valid, test = model.bits_per_char(corpus.valid), model.bits_per_char(corpus.test)
            t2 = time.perf_counter()
            print(f"| {smoothing} {n}-gram | {valid:.4f} | {test:.4f} | {2 ** test:.2f} | "
                  f"{model.num_parameters():,} | {t1 - t0:.2f} | {t2 - t1:.2f} |")
            if best is None or test < best[1]:
                best = (f"{smoothing} {n}-gram", test)
    if "char-lstm" in pretrained.available():
        lstm = pretrained.load("char-lstm", device="cpu")
        t0 = time.perf_counter()
        valid, test = lstm.bits_per_char(corpus.valid), lstm.bits_per_char(corpus.test)
        params = sum(p.numel() for p in lstm.parameters())
        print(f"| char-lstm (LSTM-{lstm.config.hidden_size}) | {valid:.4f} | {test:.4f} | {2 ** test:.2f} | "
              f"{params:,} | - | {time.perf_counter() - t0:.2f} |")
        print(f"\nbaseline: {best[0]} at {best[1]:.4f} bpc; char-lstm / baseline = {test / best[1]:.3f}")
    else:
        print(f"\nbaseline: {best[0]} at {best[1]:.4f} bpc")


if __name__ == "__main__":
    main()

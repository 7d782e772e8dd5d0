"""Chapter 8.1/8.2 tables: the green-list watermark on ``code-gpt`` and its verbatim copying.

1. Detection rate of watermarked text and false-positive rate of unmarked model text and of
   held-out human code (the test split of the model's corpus), at z > 4, against the number of
   tokens scored, for delta = 1 and 2 (gamma = 0.25, temperature 1).
2. Mean z-score and detection rate after random token edits at rates 0-50 %.
3. The cost: the model's own loss on watermarked against unmarked text.
4. Scoring speed: ``Watermark.score`` against ``transformers``' ``WatermarkDetector`` on the
   same ids (equal z-scores asserted).
5. Memorisation: longest verbatim match and 4-/8-/16-gram overlap with the training split against
   temperature, with held-out human code as the baseline.

Run: ``.venv/bin/python benchmarks/bench_watermark.py [--texts 128] [--tokens 120]``.
"""

from __future__ import annotations

import argparse
import platform
import time
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from aigc_course import get_device, pretrained
from aigc_course.data import python_corpus
from aigc_course.metrics.memorisation import NGramIndex
from aigc_course.watermark import Watermark, generate_watermarked, random_token_edits

LENGTHS = (10, 20, 40, 80, 120)
EDIT_RATES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
TEMPERATURES = (0.0, 0.5, 0.8, 1.0, 1.3)


def nats_per_token(model, ids: torch.Tensor) -> float:
    with torch.no_grad():
        logits = model(ids[:, :-1])[0]
    return float(F.cross_entropy(logits.transpose(1, 2), ids[:, 1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=128, help="texts per condition")
    parser.add_argument("--tokens", type=int, default=120, help="generated tokens per text (<= 127)")
    args = parser.parse_args()
    device = get_device()
    pipe = pretrained.load("code-gpt", device=device)
    model, tok = pipe.model, pipe.tokenizer
    vocab = model.config.vocab_size
    corpus = python_corpus()
    test_ids = torch.tensor(tok.encode(corpus.test))
    print(f"code-gpt on {device}; Python {platform.python_version()}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}; {args.texts} texts x {args.tokens} tokens, temperature 1\n")

    start = torch.full((args.texts, 1), tok.encode("\n")[0], device=device)
    offsets = torch.randint(len(test_ids) - args.tokens - 1, (args.texts,), generator=torch.Generator().manual_seed(3))
    human = torch.stack([test_ids[o: o + args.tokens + 1] for o in offsets.tolist()])
    t0 = time.perf_counter()
    plain = generate_watermarked(model, start, args.tokens, None, generator=torch.Generator().manual_seed(2)).cpu()
    marked = {}
    for delta in (1.0, 2.0):
        wm = Watermark(vocab, gamma=0.25, delta=delta)
        marked[delta] = (wm, generate_watermarked(model, start, args.tokens, wm,
                                                  generator=torch.Generator().manual_seed(1)).cpu())
    print(f"generation: {time.perf_counter() - t0:.1f} s\n")

    print("## Detection (z > 4) against tokens scored\n")
    print("| text | " + " | ".join(f"{n} tokens" for n in LENGTHS) + " |")
    print("|---" * (len(LENGTHS) + 1) + "|")
    wm2 = marked[2.0][0]
    rows = [(f"watermarked, delta={d:g}", marked[d][0], marked[d][1]) for d in marked]
    rows += [("unmarked model text", wm2, plain), ("held-out human code", wm2, human)]
    for name, wm, ids in rows:
        cells = []
        for n in LENGTHS:
            z = wm.score(ids[:, : n + 1]).z_score
            cells.append(f"{(z > 4).float().mean():.1%} (z̄ {z.mean():.2f})")
        print(f"| {name} | " + " | ".join(cells) + " |")

    print("\n## Random token edits (delta = 2, all tokens scored)\n")
    print("| edit rate | mean z | detected |")
    print("|---|---|---|")
    for rate in EDIT_RATES:
        z = wm2.score(random_token_edits(marked[2.0][1], rate, vocab, generator=torch.Generator().manual_seed(4))).z_score
        print(f"| {rate:.0%} | {z.mean():.2f} | {(z > 4).float().mean():.1%} |")

    print("\n## Cost in the model's own loss (nats/token)\n")
    print(f"unmarked {nats_per_token(model, plain.to(device)):.3f}; "
          + "; ".join(f"delta={d:g} {nats_per_token(model, ids.to(device)):.3f}" for d, (_, ids) in marked.items()))

    print("\n## Scoring speed and parity with transformers (same ids)\n")
    from transformers import WatermarkDetector, WatermarkingConfig

    config = WatermarkingConfig(greenlist_ratio=0.25, bias=2.0, seeding_scheme="lefthash")
    detector = WatermarkDetector(SimpleNamespace(bos_token_id=-1, is_encoder_decoder=False, vocab_size=vocab),
                                 "cpu", config, max_cache_size=128)
    ids = marked[2.0][1]
    t0 = time.perf_counter()
    ours = wm2.score(ids).z_score
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = torch.tensor(detector(ids, return_dict=True).z_score)
    t_theirs = time.perf_counter() - t0
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-12)
    print("| detector | seconds | ratio |\n|---|---|---|")
    print(f"| aigc_course Watermark.score (green lists cached) | {t_ours:.3f} | 1.00 |")
    print(f"| transformers WatermarkDetector | {t_theirs:.3f} | {t_theirs / t_ours:.1f} |")
    print(f"max |z difference| = {float((ours - theirs).abs().max()):.1e}")

    print("\n## Verbatim copying from the training split\n")
    t0 = time.perf_counter()
    index = NGramIndex(tok.encode(corpus.train))
    prompt_len, n_new = 16, 96
    starts = torch.randint(len(test_ids) - prompt_len - n_new, (args.texts,), generator=torch.Generator().manual_seed(0))
    windows = torch.stack([test_ids[s: s + prompt_len + n_new] for s in starts.tolist()])
    texts = {"held-out human code": windows[:, prompt_len:]}
    for temperature in TEMPERATURES:
        out = generate_watermarked(model, windows[:, :prompt_len].to(device), n_new, None, temperature=temperature,
                                   generator=torch.Generator().manual_seed(1))
        texts[f"T = {temperature:g}"] = out[:, prompt_len:].cpu()
    print("| text | median longest match | max | 4-gram overlap | 8-gram overlap | 16-gram overlap |")
    print("|---|---|---|---|---|---|")
    for name, ids in texts.items():
        lengths = [index.longest_match(row.tolist()).length for row in ids]
        o4, o8, o16 = (np.mean([index.ngram_overlap(row.tolist(), n) for row in ids]) for n in (4, 8, 16))
        print(f"| {name} | {np.median(lengths):.1f} | {max(lengths)} | {o4:.2%} | {o8:.2%} | {o16:.2%} |")
    print(f"\n{len(index):,} training tokens; {len(texts) * args.texts} texts measured in "
          f"{time.perf_counter() - t0:.1f} s (index, generation and look-ups)")


if __name__ == "__main__":
    main()

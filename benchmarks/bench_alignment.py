"""Chapter 3.1.4 targets, measured on the shipped checkpoints in one run.

    .venv/bin/python benchmarks/bench_alignment.py

* SFT exact match on held-out instances of the trained tasks (trained phrasings): >= 90%.
* Reward-model pairwise accuracy on held-out preference pairs: >= 90%.
* DPO raises the preferred-behaviour rate (concise and correct) by >= 20 points over SFT,
  with KL(DPO || SFT) reported. Measured greedily and by sampling at temperature 1.

All evaluation sets are test instances (never trained on), drawn with fixed seeds.
"""

from __future__ import annotations

import time

import torch

from aigc_course import pretrained
from aigc_course.alignment import (
    TRAINED_TASKS,
    chat_tokenizer,
    kl_to_reference,
    make_examples,
    pairwise_accuracy,
    preference_pairs,
)


def main() -> None:
    t0 = time.perf_counter()
    tok = chat_tokenizer()
    base, sft_pipe, dpo_pipe = (pretrained.load(n, device="cpu") for n in
                                ("tiny-chat-base", "tiny-chat-sft", "tiny-chat-dpo"))
    rm = pretrained.load("tiny-chat-reward", device="cpu")
    test = make_examples(100 * len(TRAINED_TASKS), split="test", seed=301)
    held = make_examples(100 * len(TRAINED_TASKS), split="test", phrasings="held_out", seed=302)
    left = make_examples(100, tasks="lowercase", split="test", seed=303)
    pairs = preference_pairs(make_examples(1000, split="test", seed=304), seed=305)

    rows = []
    results = {name: pipe.evaluate(test) for name, pipe in
               (("base", base), ("sft", sft_pipe), ("dpo", dpo_pipe))}
    sampled = {name: pipe.evaluate(test, temperature=1.0, seed=7) for name, pipe in
               (("sft", sft_pipe), ("dpo", dpo_pipe))}
    rows.append(("base exact match, test instances (greedy)", f"{results['base']['accuracy']:.1%}", "-", ""))
    sft_acc = results["sft"]["accuracy"]
    rows.append(("SFT exact match, test instances (greedy)", f"{sft_acc:.1%}", ">= 90%",
                 "met" if sft_acc >= 0.9 else "MISSED"))
    for task, acc in results["sft"]["per_task"].items():
        rows.append((f"  SFT {task}", f"{acc:.1%}", "", ""))
    rows.append(("SFT exact match, held-out phrasings", f"{sft_pipe.evaluate(held)['accuracy']:.1%}", "-", ""))
    rows.append(("SFT exact match, left-out task (lowercase)", f"{sft_pipe.evaluate(left)['accuracy']:.1%}", "-",
                 ""))
    rm_acc, _, _ = pairwise_accuracy(rm, pairs, tok)
    rows.append(("reward model pairwise accuracy, held-out pairs", f"{rm_acc:.1%}", ">= 90%",
                 "met" if rm_acc >= 0.9 else "MISSED"))
    for label, res in (("greedy", results), ("sampled T=1", sampled)):
        before, after = res["sft"]["preferred_rate"], res["dpo"]["preferred_rate"]
        gain = 100 * (after - before)
        rows.append((f"preferred rate SFT -> DPO ({label})", f"{before:.1%} -> {after:.1%} (+{gain:.1f} pts)",
                     ">= +20 pts", "met" if gain >= 20 else "MISSED"))
        rows.append((f"  exact match SFT -> DPO ({label})",
                     f"{res['sft']['accuracy']:.1%} -> {res['dpo']['accuracy']:.1%}", "", ""))
    kl = kl_to_reference(dpo_pipe.model, sft_pipe.model, [e.prompt for e in test[:300]], tok, samples=1,
                         generator=torch.Generator().manual_seed(11))
    rows.append(("KL(DPO || SFT) per response, nats", f"{kl:.3f}", "reported", ""))

    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'measured':<32}  {'target':<11}  status")
    print("-" * (width + 56))
    for name, value, target, status in rows:
        print(f"{name:<{width}}  {value:<32}  {target:<11}  {status}")
    print(f"\n{len(test)} test instances, {len(held)} held-out phrasings, {len(left)} left-out-task, "
          f"{len(pairs)} held-out pairs; {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()

"""Chapter 2.3 target: the tiny CLIP's zero-shot accuracy on the digits TEST split (target >= 90 %).

For each seed, trains :class:`aigc_course.multimodal.TinyCLIP` exactly as the notebook does
(300 steps of 8 groups of 10 pairs) and scores the 360 test digits from text prompts alone:
the ensemble of the 8 training phrasings, each training phrasing alone (mean and worst), and
the 4 held-out phrasings (ensemble and worst). Prints one row per seed and the mean +- std.
Run: ``.venv/bin/python benchmarks/bench_multimodal.py [--seeds 5] [--steps 300]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics

import torch

from aigc_course import get_device
from aigc_course.data import load_digits
from aigc_course.multimodal import (
    HELD_OUT_TEMPLATES,
    TRAIN_TEMPLATES,
    TinyCLIP,
    Vocabulary,
    train_clip,
    zero_shot_accuracy,
)

COLUMNS = ("ensemble (8 train prompts)", "single prompt, mean", "single prompt, worst",
           "held-out ensemble (4)", "held-out single, worst")


def evaluate(seed: int, steps: int, device) -> tuple[dict[str, float], float]:
    digits = load_digits()
    torch.manual_seed(seed)
    model = TinyCLIP(Vocabulary.from_templates(TRAIN_TEMPLATES)).to(device)
    history = train_clip(model, digits.x_train, digits.y_train, num_steps=steps, seed=seed, progress=False)
    x, y = digits.x_test, digits.y_test
    single = [zero_shot_accuracy(model, x, y, [t]) for t in TRAIN_TEMPLATES]
    held = [zero_shot_accuracy(model, x, y, [t]) for t in HELD_OUT_TEMPLATES]
    row = {
        COLUMNS[0]: zero_shot_accuracy(model, x, y, TRAIN_TEMPLATES),
        COLUMNS[1]: statistics.mean(single),
        COLUMNS[2]: min(single),
        COLUMNS[3]: zero_shot_accuracy(model, x, y, HELD_OUT_TEMPLATES),
        COLUMNS[4]: min(held),
    }
    return row, history.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    device = get_device()
    print(f"Python {platform.python_version()}, torch {torch.__version__}, device {device}, "
          f"threads {torch.get_num_threads()}; {args.steps} steps; digits test split: 360 images\n")
    print("| seed | " + " | ".join(COLUMNS) + " | train s |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    rows = []
    for seed in range(args.seeds):
        row, seconds = evaluate(seed, args.steps, device)
        rows.append(row)
        print(f"| {seed} | " + " | ".join(f"{row[c]:.3f}" for c in COLUMNS) + f" | {seconds:.1f} |", flush=True)
    stats = []
    for c in COLUMNS:
        values = [r[c] for r in rows]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        stats.append(f"{statistics.mean(values):.3f} ± {sd:.3f}")
    print("| mean ± std | " + " | ".join(stats) + " | |")
    worst = min(r[COLUMNS[0]] for r in rows)
    verdict = "met" if worst >= 0.90 else "MISSED"
    print(f"\ntarget: zero-shot test accuracy (prompt ensemble) >= 0.90 for every seed: {verdict} (worst {worst:.3f})")


if __name__ == "__main__":
    main()

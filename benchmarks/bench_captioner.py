"""Image-to-text (Chapter 2.3): the shipped captioner's exact match, greedy and beam search.

    python benchmarks/bench_captioner.py [--n 1000] [--beams 1 3] [--threads 1]

Images are fresh renders, ``captioned_scenes(n, seed=4242, split)``: ``split="train"`` draws
scenes of the training grammar (compositions the captioner saw, new renders), ``"held_out"``
scenes that show at least one (colour, shape) pair the captioner never saw. A caption counts as
an **exact match** when it equals the scene's canonical caption; per attribute, the fraction of
scenes whose attribute the caption reads right (:func:`aigc_course.captioning.caption_scores`).
The last column is milliseconds per image on this machine, CPU time beside wall time.

Targets (issue 17): exact match >= 95 % on training compositions, >= 70 % on held-out ones.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from aigc_course import pretrained
from aigc_course.captioning import caption_scores
from aigc_course.data import captioned_scenes

ATTRIBUTES = ("shape", "colour", "size", "position", "shape_1", "colour_1", "relation", "shape_2", "colour_2")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="images per split (>= 500)")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = pretrained.load("captioner", device="cpu")
    data = {split: captioned_scenes(args.n, seed=args.seed, split=split) for split in ("train", "held_out")}
    header = f"| split | beams | exact | {' | '.join(ATTRIBUTES)} | per image (wall, CPU) |"
    print(f"captioner: {args.n} images per split, seed {args.seed}\n")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for split, (images, _, attributes) in data.items():
        for beams in args.beams:
            wall, cpu = time.perf_counter(), cpu_seconds()
            captions = pipe(images, num_beams=beams)
            wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
            scores = caption_scores(captions, attributes)
            cells = " | ".join(f"{scores[a]:.1%}" if a in scores else "-" for a in ATTRIBUTES)
            print(f"| {split} | {beams} | {scores['exact']:.1%} | {cells} | "
                  f"{1000 * wall / args.n:.2f} ms, {1000 * cpu / args.n:.2f} ms |")


if __name__ == "__main__":
    main()

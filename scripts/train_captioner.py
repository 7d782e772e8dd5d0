"""Train the image captioner on the captioned scenes; publish ``captioner`` (Chapter 2.3).

    python scripts/train_captioner.py [--steps 1600] [--threads 2]

A small ViT patch encoder and the Transformer decoder (:class:`aigc_course.captioning.Captioner`),
trained by :func:`aigc_course.captioning.training.train_captioner` with the recipe
``aigc_course.captioning.training.RECIPE`` on ``captioned_scenes(40000, seed=200, split="train")``:
no held-out (colour, shape) pair is ever shown. Scored on fresh renders (seed 999) of both splits,
greedy; published if the training compositions reach 90 % exact match (the benchmark,
benchmarks/bench_captioner.py, measures more). The scores and the training time go into the config.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch
from publishing import publish, tensors_for_saving
from safetensors.torch import save_file

from aigc_course.captioning import CaptionPipeline, caption_scores
from aigc_course.captioning.training import MODEL, RECIPE, train_captioner
from aigc_course.data import captioned_scenes

EVAL = {"images": 1000, "seed": 999}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=RECIPE["steps"])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (at most 2 on the course machine)")
    parser.add_argument("--no-publish", action="store_true")
    parser.add_argument("--save", help="also write the weights to this safetensors file (for inspection)")
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(args.threads, 2)))
    recipe = {**RECIPE, "steps": args.steps}
    wall, cpu = time.perf_counter(), cpu_seconds()
    model, vocabulary = train_captioner(recipe, MODEL)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    if args.save:
        save_file(tensors_for_saving(model.state_dict()), args.save)  # tied weights kept once
    pipe = CaptionPipeline(model, vocabulary)
    scores = {}
    for split in ("train", "held_out"):
        images, _, attributes = captioned_scenes(EVAL["images"], seed=EVAL["seed"], split=split)
        scores[split] = {k: round(v, 4) for k, v in caption_scores(pipe(images), attributes).items()}
    print(f"trained in {wall:.0f} s wall, {cpu:.0f} s CPU ({args.threads} threads); exact match, greedy, "
          f"fresh renders: {scores}")
    if scores["train"]["exact"] < 0.9:
        raise SystemExit(f"training compositions are captioned exactly only {scores['train']['exact']:.1%} "
                         "of the time (< 90 %); not publishing")
    config = {"model": model.config, "tokenizer": vocabulary.to_dict(), "recipe": recipe, "greedy_scores": scores,
              "train_seconds": round(wall, 1), "train_cpu_seconds": round(cpu, 1), "threads": args.threads,
              "data": "captioned_scenes(40000, seed=200, split='train'), canonical captions"}
    if not args.no_publish:
        entry = publish("captioner", model.state_dict(), config, builder="aigc_course.captioning.pipelines:CaptionPipeline",
                        description="ViT patch encoder + Transformer decoder captioning the captioned scenes (Chapter 2.3)",
                        script="scripts/train_captioner.py")
        print(f"published captioner: {entry['bytes']} bytes")


if __name__ == "__main__":
    main()

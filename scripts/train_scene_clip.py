"""Train the caption-image model behind the CLIP-style score; publish ``scene-clip`` (Chapter 5).

    python scripts/train_scene_clip.py [--steps 1500] [--threads 2]   # a few minutes on 2 CPU cores

:class:`aigc_course.metrics.scenes.SceneCLIP` (a CNN image tower and a Transformer text tower)
learns from real renders only, ``captioned_scenes(24000, seed=200, split="train")`` and
``captioned_scenes(16000, seed=200, split="held_out")``: like the judge, it is a measuring
instrument and sees every composition. Each step draws 128 scenes and keeps one per distinct
caption, so every off-diagonal pair of the similarity matrix is a true negative. It is scored on
fresh renders (seed 998): the CLIP score of real scenes and their R-precision among all 1,312
captions, recorded in the checkpoint's config with the wall time.
"""

from __future__ import annotations

import argparse
import time

import torch
from publishing import publish

from aigc_course import seed_everything
from aigc_course.data import all_scene_attributes, captioned_scenes
from aigc_course.data.scenes import caption
from aigc_course.diffusion.text_conditioning import PromptTokenizer
from aigc_course.metrics.scenes import SceneCLIP, clip_scores
from aigc_course.training import fit

CONFIG = {"embed_dim": 64, "width": 32, "text_width": 64, "text_layers": 2, "num_heads": 4}
RECIPE = {"train_images": 24000, "held_out_images": 16000, "data_seed": 200, "steps": 1500, "batch_size": 128,
          "lr": 2e-3, "weight_decay": 1e-4, "seed": 0, "eval_images": 1000, "eval_seed": 998}


def train(recipe: dict, progress: bool = True) -> SceneCLIP:
    generator = seed_everything(recipe["seed"])
    x_a, c_a, _ = captioned_scenes(recipe["train_images"], seed=recipe["data_seed"], split="train")
    x_b, c_b, _ = captioned_scenes(recipe["held_out_images"], seed=recipe["data_seed"], split="held_out")
    images, captions = torch.cat([x_a, x_b]), c_a + c_b
    tokenizer = PromptTokenizer.train([caption(a) for a in all_scene_attributes()])
    model = SceneCLIP(tokenizer.to_dict(), **CONFIG)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, recipe["lr"], total_steps=recipe["steps"], pct_start=0.1)

    def loss_fn(m: SceneCLIP, step: int) -> torch.Tensor:
        idx = torch.randint(len(images), (recipe["batch_size"],), generator=generator).tolist()
        first = {}
        for i in idx:  # one scene per distinct caption: no false negatives
            first.setdefault(captions[i], i)
        keep = list(first.values())
        return m(images[keep], [captions[i] for i in keep])

    fit(model, optimizer, loss_fn, recipe["steps"], scheduler=scheduler, desc="scene CLIP", progress=progress)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=RECIPE["steps"])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (at most 2 on the course machine)")
    parser.add_argument("--no-publish", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(args.threads, 2)))
    recipe = {**RECIPE, "steps": args.steps}
    start = time.perf_counter()
    model = train(recipe)
    seconds = time.perf_counter() - start
    scores = {}
    for split in ("train", "held_out"):
        x, c, _ = captioned_scenes(recipe["eval_images"], seed=recipe["eval_seed"], split=split)
        scores[split] = {k: round(v, 4) for k, v in clip_scores(x, c, model).items()}
    print(f"trained in {seconds:.0f} s; real renders, fresh seed: {scores}")
    config = {"model": model.config, "recipe": recipe, "real_scores": scores,
              "train_seconds": round(seconds, 1), "threads": args.threads,
              "data": "captioned_scenes: 24000 train + 16000 held_out renders (seed 200)"}
    if not args.no_publish:
        entry = publish(
            "scene-clip", model.state_dict(), config, builder="aigc_course.metrics.scenes:SceneCLIP",
            description="contrastive caption-image model for the CLIP-style score of scenes (Chapter 5)",
            script="scripts/train_scene_clip.py",
        )
        print(f"published scene-clip: {entry['bytes']} bytes")


if __name__ == "__main__":
    main()

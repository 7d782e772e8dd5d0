"""Train and publish the text-to-image model of Chapter 5.

    python scripts/train_text_to_image.py                 # -> "text-to-image" (latent diffusion)
    python scripts/train_text_to_image.py --space pixel   # -> "text-to-image-pixel" (the comparison)

Both train from scratch on ``captioned_scenes(20000, seed=0, split="train")`` -- the held-out
compositions are never seen -- with the recipes of
:data:`aigc_course.diffusion.text_training.RECIPES`:

* ``latent``: an autoencoder (32x32x3 -> 8x8x8), then a text-conditioned U-Net on the latents;
* ``pixel``: the same kind of U-Net, one level deeper, on the 32x32x3 pixels, for about the
  same CPU budget.

The text encoder (a 2-layer Transformer over a byte-level BPE) trains jointly with the U-Net;
captions are dropped to the empty caption 15 % of the time for classifier-free guidance; the
EMA weights ship. The script records the recipe, the wall time and the CPU time of the whole
run (data, both stages; all threads), the thread count and the machine's load, and a quick judge
score of DDIM-50 samples in the checkpoint's config.json (``benchmarks/bench_text_to_image.py``
has the full tables). The budget is 20 minutes on 2 CPU cores, 2,400 core-seconds; the
script warns when the run's CPU time exceeds it. One thread is the default: on a shared machine
it wastes no CPU time on threads waiting for each other.
"""

from __future__ import annotations

import argparse
import dataclasses

import torch
from publishing import publish

import aigc_course
from aigc_course import pretrained
from aigc_course.data import captioned_scenes
from aigc_course.diffusion.text_training import RECIPES, train_text_to_image
from aigc_course.runtime import timed_training

NAMES = {"latent": "text-to-image", "pixel": "text-to-image-pixel"}
BUILDERS = {"latent": "aigc_course.diffusion.pipelines:TextToImagePipeline",
            "pixel": "aigc_course.diffusion.pipelines:PixelTextToImagePipeline"}
DESCRIPTIONS = {
    "latent": "Text-to-image latent diffusion on captioned scenes: autoencoder + cross-attention U-Net (Chapter 5)",
    "pixel": "Text-to-image diffusion on 32x32 pixels, the pixel-space comparison (Chapter 5)",
}


@torch.no_grad()
def quick_scores(pipe, num: int = 200) -> dict:
    """Judge accuracy of DDIM-50 samples at the default guidance scale, both splits (seed 4242)."""
    from aigc_course.metrics.scenes import judge_scores

    out = {}
    for split in ("train", "held_out"):
        _, captions, attributes = captioned_scenes(num, seed=4242, split=split)
        images = pipe(captions, num_inference_steps=50, seed=0).cpu()
        out[f"ddim50_{split}_all_right"] = round(judge_scores(images, attributes)["all"], 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", choices=sorted(RECIPES), default="latent")
    parser.add_argument("--steps", type=int, default=None, help="override the denoiser's training steps")
    parser.add_argument("--ae-steps", type=int, default=None, help="override the autoencoder's training steps")
    parser.add_argument("--num-images", type=int, default=None, help="override the number of training images")
    parser.add_argument("--no-quick-scores", action="store_true", help="skip the judge scores after training")
    parser.add_argument("--reuse-autoencoder", action="store_true",
                        help="train the denoiser only, on the published text-to-image's autoencoder (stages 1 and 3 "
                             "of an earlier run; each stage has its own random streams)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (at most 2 on the course machine)")
    parser.add_argument("--no-publish", action="store_true", help="train and evaluate, but do not write the checkpoint")
    parser.add_argument("--checkpoint-dir", default=None,
                        help="publish into this folder instead of the package's checkpoints (for experiments)")
    args = parser.parse_args()
    threads = max(1, min(args.threads, 2))
    torch.set_num_threads(threads)
    recipe = RECIPES[args.space]
    if args.steps is not None:
        recipe = dataclasses.replace(recipe, steps=args.steps)
    if args.ae_steps is not None:
        recipe = dataclasses.replace(recipe, ae_steps=args.ae_steps)
    if args.num_images is not None:
        recipe = dataclasses.replace(recipe, num_images=args.num_images)
    device = aigc_course.get_device()
    reused = None
    if args.reuse_autoencoder:
        if args.space != "latent":
            parser.error("--reuse-autoencoder needs --space latent")
        previous = pretrained.load(NAMES["latent"], device=device)
        # the run that trained the autoencoder: the published one, or the one it reused in turn
        reused = previous.config.get("autoencoder_reused_from") or {
            "checkpoint": NAMES["latent"], "sha256": pretrained.info(NAMES["latent"])["sha256"],
            "train_stage_seconds": {k: v for k, v in previous.config["train_stage_seconds"].items()
                                    if k in ("autoencoder", "decoder")},
            "train_cpu_seconds_of_that_run": previous.config.get("train_cpu_seconds")}
    (pipe, report), timing = timed_training(
        lambda: train_text_to_image(recipe, device=device, autoencoder=None if reused is None else previous.autoencoder,
                                    finetune_decoder_stage=reused is None), threads, device)
    tail = report["denoiser_history"].loss[-200:]
    config = dict(pipe.config)
    config.update({
        **timing,
        "train_stage_seconds": {k: round(v, 1) for k, v in report["seconds"].items()},
        "data": f"captioned_scenes({recipe.num_images}, seed={recipe.data_seed}, split='train')",
        "final_loss_mean_last_200": round(sum(tail) / len(tail), 5),
    })
    if reused is not None:
        config["autoencoder_reused_from"] = reused
    if "autoencoder_history" in report:
        ae_tail = report["autoencoder_history"].loss[-100:]
        config["autoencoder_final_loss_mean_last_100"] = round(sum(ae_tail) / len(ae_tail), 5)
    pipe.config = config
    try:
        if args.no_quick_scores:
            raise RuntimeError("--no-quick-scores")
        config["quick_scores"] = quick_scores(pipe)
    except Exception as err:  # the judge checkpoint may not be published yet
        config["quick_scores"] = f"skipped: {type(err).__name__}: {err}"
    print({k: config[k] for k in ("train_seconds", "train_cpu_seconds", "train_stage_seconds", "final_loss_mean_last_200", "quick_scores")})
    cpu = timing["train_cpu_seconds"]
    if cpu > 2 * 20 * 60:
        print(f"warning: training used {cpu:.0f} CPU seconds, over the budget of 20 minutes on 2 cores")
    if not args.no_publish:
        entry = publish(
            NAMES[args.space], pipe.state_dict(), config,
            builder=BUILDERS[args.space],
            description=DESCRIPTIONS[args.space], script="scripts/train_text_to_image.py",
            checkpoint_dir=args.checkpoint_dir,
        )
        print(f"published {NAMES[args.space]}: {entry['bytes']} bytes")


if __name__ == "__main__":
    main()

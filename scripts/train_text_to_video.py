"""Train and publish the text-to-video model of Chapter 2.3.4 (checkpoint ``text-to-video``).

    python scripts/train_text_to_video.py                # the shipped run
    python scripts/train_text_to_video.py --steps 200 --no-publish

Trains from scratch on ``moving_scenes(num_clips, seed=0, num_frames=8, split="train")`` -- the
held-out object x motion combinations are never seen -- with the recipe
:class:`aigc_course.diffusion.video_training.TextToVideoRecipe`: a text-conditioned U-Net over
16x16 frames with factorised space-time attention and temporal convolutions, its text encoder
trained jointly, captions dropped 15 % of the time for classifier-free guidance, the temporal
layers switched off for 20 % of the clips (so the same weights give the frame-by-frame baseline), EMA weights shipped.

The script records the recipe, the wall time and the CPU time of the whole run (data and
training; all threads), the thread count and the machine's load, and quick judged scores of
DDIM-20 samples in the checkpoint's config.json (``benchmarks/bench_text_to_video.py`` has the
full table). The budget is 20 minutes on 2 CPU cores, 2,400 core-seconds; the script warns
when the run's CPU time exceeds it. One thread is the default: on a shared machine it wastes no
CPU time on threads waiting for each other.
"""

from __future__ import annotations

import argparse
import dataclasses

import torch
from publishing import publish

import aigc_course
from aigc_course.diffusion.video_training import TextToVideoRecipe, train_text_to_video
from aigc_course.runtime import timed_training

NAME = "text-to-video"
BUILDER = "aigc_course.diffusion.video_pipelines:TextToVideoPipeline"
DESCRIPTION = ("Text-to-video diffusion on 8 frames of 16x16 moving shapes: U-Net with factorised "
               "space-time attention and cross-attention to the caption (Chapter 2.3.4)")


@torch.no_grad()
def quick_scores(pipe, num: int = 48) -> dict:
    """Judged share of DDIM-20 clips with the motion right / every frame's attributes right, both splits (seed 4242)."""
    from aigc_course.data import moving_scenes
    from aigc_course.metrics.video import video_scores

    out = {}
    for split in ("train", "held_out"):
        _, captions, attributes = moving_scenes(num, seed=4242, split=split, image_size=pipe.image_size)
        clips = pipe(captions, num_inference_steps=20, seed=0).cpu()
        scores = video_scores(clips, attributes)
        out[f"ddim20_{split}_motion"] = round(scores["motion"], 4)
        out[f"ddim20_{split}_attributes_every_frame"] = round(scores["attributes"], 4)
    out["clips_per_split"] = num
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None, help="override the training steps")
    parser.add_argument("--num-clips", type=int, default=None, help="override the number of training clips")
    parser.add_argument("--no-quick-scores", action="store_true", help="skip the judged scores after training")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (at most 2 on the course machine)")
    parser.add_argument("--no-publish", action="store_true", help="train and evaluate, but do not write the checkpoint")
    parser.add_argument("--checkpoint-dir", default=None,
                        help="publish into this folder instead of the package's checkpoints (for experiments)")
    args = parser.parse_args()
    threads = max(1, min(args.threads, 2))
    torch.set_num_threads(threads)
    recipe = TextToVideoRecipe()
    if args.steps is not None:
        recipe = dataclasses.replace(recipe, steps=args.steps)
    if args.num_clips is not None:
        recipe = dataclasses.replace(recipe, num_clips=args.num_clips)
    device = aigc_course.get_device()
    (pipe, report), timing = timed_training(lambda: train_text_to_video(recipe, device=device), threads, device)
    tail = report["history"].loss[-200:]
    config = dict(pipe.config)
    config.update({
        **timing,
        "train_stage_seconds": {k: round(v, 1) for k, v in report["seconds"].items()},
        "data": (f"moving_scenes({recipe.num_clips}, seed={recipe.data_seed}, num_frames={recipe.num_frames}, "
                 f"split='train', image_size={recipe.image_size})"),
        "final_loss_mean_last_200": round(sum(tail) / len(tail), 5),
    })
    pipe.config = config
    try:
        if args.no_quick_scores:
            raise RuntimeError("--no-quick-scores")
        config["quick_scores"] = quick_scores(pipe)
    except Exception as err:  # report the run even if scoring fails
        config["quick_scores"] = f"skipped: {type(err).__name__}: {err}"
    print({k: config[k] for k in ("train_seconds", "train_cpu_seconds", "final_loss_mean_last_200", "quick_scores")})
    cpu = timing["train_cpu_seconds"]
    if cpu > 2 * 20 * 60:
        print(f"warning: training used {cpu:.0f} CPU seconds, over the budget of 20 minutes on 2 cores")
    if not args.no_publish:
        entry = publish(NAME, pipe.state_dict(), config, builder=BUILDER, description=DESCRIPTION,
                        script="scripts/train_text_to_video.py", checkpoint_dir=args.checkpoint_dir)
        print(f"published {NAME}: {entry['bytes']} bytes")


if __name__ == "__main__":
    main()

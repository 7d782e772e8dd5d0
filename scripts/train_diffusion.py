"""Train and publish the diffusion checkpoints of chapter 3.3.

    python scripts/train_diffusion.py digits   # -> checkpoint "digits-ddpm"
    python scripts/train_diffusion.py grid     # -> checkpoint "grid-ddpm"

``digits``: the class-conditional :class:`~aigc_course.diffusion.DigitUNet` on the train split
of :func:`aigc_course.data.load_digits` (pixels scaled to [-1, 1]), labels dropped to the null
label with probability ``p_uncond`` so that one network serves classifier-free guidance.
``grid``: the :class:`~aigc_course.diffusion.MLPDenoiser` on the 25-mode grid of 2-D Gaussians.
Both minimise the simple loss (eq. 4.4.8) with AdamW, warm-up + cosine learning rate and an
exponential moving average (EMA) of the weights; the EMA weights are shipped. The script
records its config, data split, wall time and final metrics in the checkpoint's config.json.
"""

from __future__ import annotations

import argparse
import time

import torch
from publishing import publish

import aigc_course
from aigc_course.data import grid_gaussians, load_digits
from aigc_course.diffusion import (
    DigitsDDPMPipeline,
    DigitUNet,
    MLPDenoiser,
    NoiseSchedule,
    diffusion_loss_fn,
)
from aigc_course.diffusion.pipelines import Diffusion2DPipeline
from aigc_course.training import EMA, fit, warmup_cosine_scheduler

CONFIGS = {
    "digits": {
        "name": "digits-ddpm", "schedule": "linear", "timesteps": 1000,
        "model": {"channels": [32, 64], "num_classes": 10, "emb_dim": 128, "num_heads": 4, "dropout": 0.6},
        "steps": 6000, "batch_size": 128, "lr": 2e-3, "warmup": 200, "ema_decay": 0.999,
        "p_uncond": 0.3, "seed": 0,
    },
    "grid": {
        "name": "grid-ddpm", "schedule": "cosine", "timesteps": 1000,
        "model": {"dim": 2, "hidden": 256, "num_blocks": 3, "time_dim": 64},
        "steps": 2000, "batch_size": 256, "lr": 2e-3, "warmup": 100, "ema_decay": 0.995,
        "seed": 0,
    },
}


def train(cfg: dict, device: torch.device, progress: bool = True):
    generator = aigc_course.seed_everything(cfg["seed"])
    schedule = NoiseSchedule(cfg["schedule"], cfg["timesteps"])
    if "num_classes" in cfg["model"]:
        split = load_digits()
        data = DigitsDDPMPipeline.to_model_space(split.x_train).to(device)
        labels = split.y_train.to(device)
        model = DigitUNet(**{**cfg["model"], "channels": tuple(cfg["model"]["channels"])}).to(device)
    else:
        data = grid_gaussians(50_000, generator=generator).to(device)
        labels = None
        model = MLPDenoiser(**cfg["model"]).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=0.0)
    scheduler = warmup_cosine_scheduler(optimizer, cfg["steps"], cfg["warmup"], floor=0.05)
    ema = EMA(model, cfg["ema_decay"], warmup=True)
    loss_fn = diffusion_loss_fn(data, schedule, cfg["batch_size"], labels, p_uncond=cfg.get("p_uncond", 0.0),
                                generator=generator)
    history = fit(model, optimizer, loss_fn, cfg["steps"], grad_clip=1.0, scheduler=scheduler, ema=ema,
                  desc=cfg["name"], progress=progress)
    return ema.model, schedule, history


@torch.no_grad()
def evaluate_digits(pipe: DigitsDDPMPipeline) -> dict:
    """Accuracy and FDD of DDIM-50 samples at guidance 1 and 3 (the benchmark has the full table)."""
    from aigc_course.metrics import classifier_accuracy, frechet_digit_distance

    split = load_digits()
    labels = torch.arange(10).repeat(20)
    out = {}
    for scale in (1.0, 3.0):
        images = pipe(labels, num_inference_steps=50, sampler="ddim", guidance_scale=scale, seed=1).cpu()
        out[f"ddim50_g{scale:g}_accuracy"] = classifier_accuracy(images, labels)
        out[f"ddim50_g{scale:g}_fdd"] = frechet_digit_distance(images, split.x_test)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=sorted(CONFIGS))
    parser.add_argument("--steps", type=int, default=None, help="override the number of training steps")
    parser.add_argument("--dropout", type=float, default=None, help="override the U-Net's dropout (digits)")
    parser.add_argument("--p-uncond", type=float, default=None,
                        help="override how often the label is dropped to the null label (digits)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (at most 2 on the course machine)")
    parser.add_argument("--no-publish", action="store_true", help="train and evaluate, but do not write the checkpoint")
    parser.add_argument("--checkpoint-dir", default=None,
                        help="publish into this folder instead of the package's checkpoints (for experiments)")
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(args.threads, 2)))
    cfg = dict(CONFIGS[args.which])
    if args.steps is not None:
        cfg["steps"] = args.steps
    if args.dropout is not None:
        cfg["model"] = {**cfg["model"], "dropout": args.dropout}
    if args.p_uncond is not None:
        cfg["p_uncond"] = args.p_uncond
    device = aigc_course.get_device()
    start = time.perf_counter()
    model, schedule, history = train(cfg, device)
    wall = time.perf_counter() - start
    tail = history.loss[-200:]
    metrics = {"final_loss_mean_last_200": sum(tail) / len(tail), "train_seconds": round(wall, 1)}
    config = {k: v for k, v in cfg.items() if k != "name"}
    if args.which == "digits":
        pipe = DigitsDDPMPipeline(model, schedule, config)
        config["data"] = "aigc_course.data.load_digits() train split (1437 images, test_size=0.2, seed=0), pixels*2-1"
        builder = "aigc_course.diffusion.pipelines:DigitsDDPMPipeline"
        description = "Class-conditional DDPM U-Net on 8x8 digits (null label for classifier-free guidance)"
        try:
            metrics.update(evaluate_digits(pipe))
        except Exception as err:  # the classifier checkpoint may not be published yet
            metrics["evaluation_skipped"] = f"{type(err).__name__}: {err}"
    else:
        from aigc_course.metrics.modes import grid_coverage

        pipe = Diffusion2DPipeline(model, schedule, config)
        config["data"] = "aigc_course.data.grid_gaussians(50000, std=0.05), seed 0"
        builder = "aigc_course.diffusion.pipelines:Diffusion2DPipeline"
        description = "DDPM MLP noise predictor on the 25-mode grid of 2-D Gaussians"
        cov = grid_coverage(pipe.sample(2500, seed=1).cpu())
        metrics.update({f"ddpm1000_{k}": v for k, v in cov.as_dict().items()})
    config["metrics"] = metrics
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()})
    if not args.no_publish:
        entry = publish(
            cfg["name"], model.state_dict(), config, builder=builder, description=description,
            script="scripts/train_diffusion.py", checkpoint_dir=args.checkpoint_dir,
        )
        print(f"published {cfg['name']}: {entry['bytes']} bytes")


if __name__ == "__main__":
    main()

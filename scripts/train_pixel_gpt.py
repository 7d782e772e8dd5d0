"""Train and publish ``digits-pixel-gpt``: a GPT over the 64 pixels of a digit (chapter 2.1.1).

    .venv/bin/python scripts/train_pixel_gpt.py            # about 5-6 minutes on one CPU thread

Data: the train split of :func:`aigc_course.data.load_digits` as integers ``0..16`` (the
package stores ``/16``). A fixed 10% of it (seed 0) is held out as a validation set; the
weights with the lowest validation loss (checked every ``eval_every`` steps) are shipped.
The test split is only scored at the end. The script records its config, split, wall time
and final metrics (exact test log-likelihood, sample FDD and class balance) in config.json.
"""

from __future__ import annotations

import argparse
import copy
import math
import time

import torch
from publishing import publish

import aigc_course
from aigc_course.autoregressive import NUM_PIXELS, PixelGPT, PixelGPTPipeline, digits_to_tokens
from aigc_course.data import load_digits
from aigc_course.training import optimizer_step, run_steps, warmup_cosine_scheduler

SCRIPT = "scripts/train_pixel_gpt.py"
CONFIG = {
    "model": {"n_layer": 3, "n_head": 4, "n_embd": 64, "dropout": 0.1},
    "steps": 1600, "batch_size": 32, "lr": 2e-3, "warmup": 100, "weight_decay": 0.05,
    "eval_every": 100, "valid_fraction": 0.1, "seed": 0,
}


def split_train(tokens: torch.Tensor, valid_fraction: float, seed: int):
    """A fixed random split of the training tokens into (train, valid)."""
    order = torch.randperm(len(tokens), generator=torch.Generator().manual_seed(seed))
    n_valid = int(round(valid_fraction * len(tokens)))
    return tokens[order[n_valid:]], tokens[order[:n_valid]]


@torch.no_grad()
def nll_per_image(model: PixelGPT, tokens: torch.Tensor) -> float:
    model.eval()
    return float(-model.log_prob(tokens).mean())


def train(cfg: dict, device: torch.device, progress: bool = True):
    generator = aigc_course.seed_everything(cfg["seed"])
    data = load_digits()
    train_tokens, valid_tokens = split_train(digits_to_tokens(data.x_train), cfg["valid_fraction"], cfg["seed"])
    model = PixelGPT(**cfg["model"]).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    scheduler = warmup_cosine_scheduler(optimizer, cfg["steps"], cfg["warmup"], floor=0.05)
    best = {"valid_nll": math.inf, "step": -1, "state": None}
    curve = []

    def step_fn(step: int):
        model.train()
        idx = torch.randint(len(train_tokens), (cfg["batch_size"],), generator=generator)
        loss = optimizer_step(optimizer, model.loss(train_tokens[idx].to(device)), parameters=model.parameters(),
                              grad_clip=1.0, scheduler=scheduler)
        if (step + 1) % cfg["eval_every"] == 0 or step + 1 == cfg["steps"]:
            valid = nll_per_image(model, valid_tokens.to(device))
            curve.append((step + 1, round(valid, 3)))
            if valid < best["valid_nll"]:
                best.update(valid_nll=valid, step=step + 1, state=copy.deepcopy(model.state_dict()))
        return loss

    history = run_steps(step_fn, cfg["steps"], desc="digits pixel GPT", progress=progress)
    model.load_state_dict(best["state"])
    model.eval()
    return model, history, best, curve, (len(train_tokens), len(valid_tokens))


@torch.no_grad()
def evaluate(pipe: PixelGPTPipeline, num_samples: int = 1000, seed: int = 1234) -> dict:
    """Exact test log-likelihood and sample scores (FDD to the test digits, class balance)."""
    from aigc_course.metrics.digits import frechet_digit_distance, load_digit_classifier

    data = load_digits()
    ll = pipe.log_likelihood(data.x_test)
    samples = pipe.sample(num_samples, seed=seed)
    clf = load_digit_classifier("cpu")
    probs = torch.softmax(clf(samples), dim=1)
    hist = torch.bincount(probs.argmax(1), minlength=10).double() / num_samples
    entropy = float(-(hist[hist > 0] * hist[hist > 0].log()).sum())
    return {
        "test_log_likelihood_nats": float(ll.mean()),
        "test_bits_per_pixel": float(-ll.mean() / (NUM_PIXELS * math.log(2))),
        "fdd_vs_test": frechet_digit_distance(samples, data.x_test),
        "class_histogram_entropy_over_log10": entropy / math.log(10),
        "mean_classifier_confidence": float(probs.max(1).values.mean()),
        "protocol": f"{num_samples} samples, seed {seed}; FDD against the 360 test digits",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None, help="override the number of training steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-publish", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = dict(CONFIG)
    if args.steps is not None:
        cfg["steps"] = args.steps
    device = torch.device("cpu")
    start = time.perf_counter()
    model, history, best, curve, sizes = train(cfg, device)
    seconds = time.perf_counter() - start
    pipe = PixelGPTPipeline(model, {"model": cfg["model"]})
    metrics = {"train_seconds": round(seconds, 1), "best_step": best["step"],
               "valid_nll_nats": best["valid_nll"], "valid_curve": curve, **evaluate(pipe)}
    config = {
        "model": cfg["model"],
        "training": {**{k: v for k, v in cfg.items() if k != "model"}, "torch_threads": torch.get_num_threads(),
                     "device": str(device)},
        "data": (f"aigc_course.data.load_digits() train split (1437 images), a seeded random {sizes[0]} "
                 f"for training and {sizes[1]} for validation; tokens = round(x * 16) in 0..16; "
                 "test split (360) scored only at the end"),
        "metrics": metrics,
    }
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()})
    if not args.no_publish:
        entry = publish(
            "digits-pixel-gpt", model.state_dict(), config,
            builder="aigc_course.autoregressive:PixelGPTPipeline",
            description="Autoregressive GPT over the 64 pixels (17 levels) of 8x8 digits (chapter 2.1.1)",
            script=SCRIPT,
        )
        print(f"published digits-pixel-gpt: {entry['bytes']} bytes")


if __name__ == "__main__":
    main()

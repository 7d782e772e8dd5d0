"""Train and publish the VAE checkpoints of Chapter 3.4: digits-vae and digits-vae-2d.

    .venv/bin/python scripts/train_vae.py            # both
    .venv/bin/python scripts/train_vae.py digits-vae-2d

Both model the sklearn digits train split with Binomial(16, p) pixels (a discrete
likelihood over the 17 grey levels, so log p(x) is in nats of a real distribution).
``digits-vae`` has a 16-D latent (the model the benchmark scores); ``digits-vae-2d`` has a
2-D latent for the latent-space widget. 10 % of the train split is held out for early
stopping (the weights with the best validation ELBO are kept); the test split is only
used for the final numbers written into config.json.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from publishing import publish

from aigc_course.data import load_digits
from aigc_course.training import fit
from aigc_course.vae import VAE, bits_per_dim, evaluate_bounds, make_vae, vae_loss_fn

SCRIPT = "scripts/train_vae.py"
RUNS = {
    "digits-vae": dict(latent_dim=16, hidden=256, steps=8000, batch_size=128, lr=1e-3,
                       weight_decay=1e-2, eval_every=250, seed=0),
    "digits-vae-2d": dict(latent_dim=2, hidden=256, steps=6000, batch_size=128, lr=1e-3,
                          weight_decay=1e-2, eval_every=250, seed=0),
}
VALID_FRACTION = 0.1


def split_train(seed: int = 0):
    """(x_fit, x_valid, x_test): a seeded 90/10 split of the train split, plus the test split."""
    data = load_digits()
    perm = torch.randperm(len(data.x_train), generator=torch.Generator().manual_seed(seed))
    n_valid = round(VALID_FRACTION * len(perm))
    return data.x_train[perm[n_valid:]], data.x_train[perm[:n_valid]], data.x_test


def train(name: str, device: torch.device) -> VAE:
    cfg = RUNS[name]
    x_fit, x_valid, x_test = split_train(cfg["seed"])
    torch.manual_seed(cfg["seed"])
    model = make_vae("digits", cfg["latent_dim"], cfg["hidden"]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    gen = torch.Generator().manual_seed(cfg["seed"])
    loss_fn = vae_loss_fn(x_fit, cfg["batch_size"], generator=gen)
    best = (-float("inf"), 0, None)
    curve = []
    start = time.perf_counter()
    for done in range(cfg["eval_every"], cfg["steps"] + 1, cfg["eval_every"]):
        fit(model, opt, loss_fn, cfg["eval_every"], desc=f"{name} {done}/{cfg['steps']}")
        valid = evaluate_bounds(model, x_valid, ks=(), seed=0)["elbo"]
        curve.append([done, round(valid, 3)])
        if valid > best[0]:
            best = (valid, done, copy.deepcopy(model.state_dict()))
    seconds = time.perf_counter() - start
    model.load_state_dict(best[2])
    model.eval()
    test = evaluate_bounds(model, x_test, ks=(1, 10, 100, 1000), seed=0)
    train_metrics = evaluate_bounds(model, x_fit, ks=(1, 100), seed=0)
    print(f"{name}: best valid ELBO {best[0]:.2f} at step {best[1]}; test {test}; {seconds:.0f} s")
    config = {
        "model": model.config,
        "training": {**cfg, "optimizer": "AdamW", "objective": "negative ELBO (beta = 1), one z per x",
                     "data": "aigc_course.data.load_digits() train split (1,437 images): "
                             f"{len(x_fit)} to fit, {len(x_valid)} held out (seeded permutation) "
                             "for early stopping on the validation ELBO",
                     "best_step": best[1], "valid_elbo_curve": curve,
                     "train_seconds": round(seconds, 1), "device": str(device),
                     "torch_threads": torch.get_num_threads()},
        "metrics": {
            "protocol": "test split (360 images), nats per image, mean over images; ELBO uses the "
                        "analytic KL and one z; iw_K is the importance-weighted bound with K samples "
                        "(evaluate_bounds, seed 0)",
            "test": {k: round(v, 3) for k, v in test.items()},
            "test_bits_per_dim": {k: round(bits_per_dim(v), 4) for k, v in test.items()},
            "fit_split": {k: round(v, 3) for k, v in train_metrics.items()},
            "valid_elbo": round(best[0], 3),
        },
    }
    publish(name, model.state_dict(), config, builder="aigc_course.vae:VAE",
                       description=f"MLP VAE on 8x8 digits, {cfg['latent_dim']}-D latent, "
                                   "Binomial(16, p) pixels (Chapter 3.4)", script=SCRIPT)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(RUNS)} (default: all)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in RUNS]
    if unknown:
        parser.error(f"unknown checkpoint(s) {unknown}; expected any of {list(RUNS)}")
    for name in args.names or list(RUNS):
        train(name, torch.device(args.device))


if __name__ == "__main__":
    main()

"""The four routes of section 2.1.1 side by side: GAN, VAE, autoregressive, diffusion.

    .venv/bin/python benchmarks/bench_four_routes.py            # ~15 min on a busy 2-core CPU
    .venv/bin/python benchmarks/bench_four_routes.py --quick    # a smoke test, numbers meaningless

**Ring** (8 Gaussians of std 0.02 on a circle of radius 2): all four routes are trained here,
in this run, by :func:`aigc_course.four_routes.train_ring_routes` -- the recipes chapter 3.5
trains with -- on the same 50,000 training points (seed 0) with the same budget, ``--steps``
optimiser steps of batch 256, and scored on 2,500 samples each (mode coverage, VEEGAN / PacGAN
protocol) and on 5,000 fresh test points (log-density in nats, where defined).

**Digits** (sklearn 8x8): the shipped checkpoints ``digits-cgan`` (conditional: labels drawn
uniformly at random), ``digits-vae``, ``digits-pixel-gpt`` and ``digits-ddpm`` (run without
labels, i.e. with the null label). ``--digit-samples`` (500) samples each are scored with the ``digits-classifier``:
FDD against the 360 test digits, the entropy of the predicted-class histogram divided by
``log 10`` (1 = all classes equally often) and the mean classifier confidence. Log-likelihoods
are in nats per test image, as discrete distributions over the 17 grey levels.

Sampling cost is measured in the same run for every route: network evaluations per sample,
wall time per sample in a batch, and the latency of one sample alone.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch

import aigc_course
from aigc_course import pretrained
from aigc_course.data import load_digits, ring_gaussians, ring_log_density
from aigc_course.four_routes import FULL_BUDGET_STEPS, RING_BATCH, train_ring_routes
from aigc_course.gan.pipelines import GANSampler
from aigc_course.metrics.digits import frechet_digit_distance, load_digit_classifier
from aigc_course.metrics.modes import NUM_EVAL_SAMPLES, ring_coverage

EVAL_SEED = 1234


def timed(fn, repeats: int = 1):
    """(result of the last call, median wall seconds, median CPU seconds of this process)."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return out, sorted(walls)[len(walls) // 2], sorted(cpus)[len(cpus) // 2]


# --------------------------------------------------------------------------- ring: table


def ring_table(routes: dict, test: torch.Tensor) -> list[dict]:
    (trainer, gan_s), (vae, vae_s), (ar, ar_s), (ddpm, ddpm_s) = (
        (routes[k].model, [routes[k].wall_seconds, routes[k].cpu_seconds]) for k in ("gan", "vae", "ar", "ddpm"))
    plain = GANSampler(trainer.sampler_net.eval(), {}, None, rejection=False)
    shipped = pretrained.load("ring-gan", device="cpu")  # its own recipe, steps and sampling
    n = NUM_EVAL_SAMPLES

    def gen(seed):
        return torch.Generator().manual_seed(seed)

    with torch.no_grad():
        rows = [
            dict(route="GAN", train=gan_s, nfe=1, ll=None, ll_note="not defined",
                 draw=lambda k, s: plain.sample(k, seed=s)),
            dict(route="VAE, sampled x", train=vae_s, nfe=1,
                 ll=float(vae.importance_weighted_log_likelihood(test, 1000, gen(0), chunk_size=100).mean()),
                 ll_note="IWAE bound, K=1000", draw=lambda k, s: vae.sample(k, seed=s, mean=False)),
            dict(route="VAE, decoder mean", train=vae_s, nfe=1, ll=None, ll_note="(same model)",
                 draw=lambda k, s: vae.sample(k, seed=s, mean=True)),
            dict(route="Autoregressive (x then y)", train=ar_s, nfe=2, ll=float(ar.log_density(test).mean()),
                 ll_note="exact", draw=lambda k, s: ar.sample_points(k, gen(s))),
            dict(route="Diffusion, DDPM 1000 steps", train=ddpm_s, nfe=1000, ll=None, ll_note="not computed",
                 draw=lambda k, s: ddpm.sample(k, seed=s)),
            dict(route="Diffusion, DDIM 50 steps", train=ddpm_s, nfe=50, ll=None, ll_note="not computed",
                 draw=lambda k, s: ddpm.sample(k, num_inference_steps=50, sampler="ddim", seed=s)),
            dict(route="shipped ring-gan" + (" + rejection sampling" if shipped.rejection else ""),
                 train=_train_seconds("ring-gan"), nfe=None if shipped.rejection else 1, ll=None,
                 ll_note="not defined", draw=lambda k, s: shipped.sample(k, seed=s)),
        ]
        for row in rows:
            print(f"sampling: {row['route']}", file=sys.stderr, flush=True)
            samples, wall, cpu = timed(lambda row=row: row["draw"](n, EVAL_SEED))
            _, latency, _ = timed(lambda row=row: row["draw"](1, 7), repeats=5)
            row.update(coverage=ring_coverage(samples.cpu()), ms_per_sample=(1000 * wall / n, 1000 * cpu / n),
                       latency_ms=1000 * latency)
            if row["nfe"] is None:  # rejection: G and D run on every candidate; burn-in excluded
                row["nfe"] = 2 / shipped.acceptance_rate
                row["route"] += f", acceptance {shipped.acceptance_rate:.2f}"
    return rows


def print_ring(rows: list[dict], test: torch.Tensor, steps: int) -> None:
    print(f"\n### Ring of 8 Gaussians: {steps} steps x batch {RING_BATCH} for every route, "
          f"{NUM_EVAL_SAMPLES} samples (seed {EVAL_SEED})\n")
    print("| route | modes (of 8) | high-quality % | reverse KL | test log-density (nats) | "
          "net evals / sample | ms / sample, batch 2500 (wall / CPU) | ms for 1 sample | training s (wall / CPU) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        c = r["coverage"]
        ll = r["ll_note"] if r["ll"] is None else f"{r['ll']:.3f} ({r['ll_note']})"
        print(f"| {r['route']} | {c.modes_captured} | {100 * c.high_quality:.1f} | {c.reverse_kl:.3f} | {ll} | "
              f"{r['nfe']:.3g} | {r['ms_per_sample'][0]:.4f} / {r['ms_per_sample'][1]:.4f} | {r['latency_ms']:.2f} | "
              f"{_seconds(r['train'])} |")
    true_ll = float(ring_log_density(test).mean())
    real = ring_coverage(ring_gaussians(NUM_EVAL_SAMPLES, generator=torch.Generator().manual_seed(EVAL_SEED)))
    print(f"| real data (reference) | {real.modes_captured} | {100 * real.high_quality:.1f} | "
          f"{real.reverse_kl:.3f} | {true_ll:.3f} (true density) | - | - | - | - |")


# --------------------------------------------------------------------------- digits


def digits_table(num_samples: int, ddpm_steps: int, vae_k: int) -> None:
    data = load_digits()
    clf = load_digit_classifier("cpu")
    gen = torch.Generator().manual_seed(EVAL_SEED)
    labels = torch.randint(10, (num_samples,), generator=gen)
    cgan = pretrained.load("digits-cgan", device="cpu")
    ddpm = pretrained.load("digits-ddpm", device="cpu")
    ar = pretrained.load("digits-pixel-gpt", device="cpu")
    vae = pretrained.load("digits-vae", device="cpu")
    train_s = {name: _train_seconds(name) for name in ("digits-cgan", "digits-vae", "digits-pixel-gpt", "digits-ddpm")}
    with torch.no_grad():
        vae_ll = float(vae.importance_weighted_log_likelihood(
            data.x_test, vae_k, torch.Generator().manual_seed(0), chunk_size=100).mean())
        vae_elbo = float(vae.elbo(data.x_test, generator=torch.Generator().manual_seed(0)).mean())
        ar_ll = float(ar.log_likelihood(data.x_test).mean())
        rows = [
            ("GAN (conditional, uniform random labels)", "digits-cgan", 1, "not defined",
             lambda k, s: cgan(labels[:k], seed=s)),
            ("VAE, decoder mean", "digits-vae", 1, f"{vae_ll:.1f} (IWAE K={vae_k}; ELBO {vae_elbo:.1f})",
             lambda k, s: vae.sample(k, seed=s, mean=True)),
            ("VAE, sampled pixels", "digits-vae", 1, "(same model)", lambda k, s: vae.sample(k, seed=s, mean=False)),
            ("Autoregressive (pixel GPT)", "digits-pixel-gpt", 64, f"{ar_ll:.1f} (exact)",
             lambda k, s: ar.sample(k, seed=s)),
            (f"Diffusion, DDPM {ddpm_steps} steps, no label", "digits-ddpm", ddpm_steps, "not computed",
             lambda k, s: ddpm(None, num_images=k, num_inference_steps=ddpm_steps, sampler="ddpm", seed=s)),
            ("Diffusion, DDIM 50 steps, no label", "digits-ddpm", 50, "not computed",
             lambda k, s: ddpm(None, num_images=k, num_inference_steps=50, sampler="ddim", seed=s)),
        ]
        print(f"\n### Digits: {num_samples} samples per route (seed {EVAL_SEED}), scored against the 360 test digits\n")
        print("| route | FDD | class entropy / log 10 | mean confidence | cGAN accuracy | "
              "test log-lik. (nats/image) | net evals / sample | ms / sample, batch (wall / CPU) | ms for 1 sample | "
              "training s |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, ckpt, nfe, ll, draw in rows:
            print(f"sampling: {name}", file=sys.stderr, flush=True)
            samples, wall, cpu = timed(lambda draw=draw: draw(num_samples, EVAL_SEED))
            _, latency, _ = timed(lambda draw=draw: draw(1, 7), repeats=3)
            samples = samples.cpu().float()
            fdd, entropy, conf = _digit_scores(clf, samples, data.x_test)
            acc = ""
            if ckpt == "digits-cgan":
                acc = f"{float((clf(samples).argmax(1) == labels).float().mean()):.3f}"
            print(f"| {name} | {fdd:.1f} | {entropy:.3f} | {conf:.3f} | {acc} | {ll} | {nfe} | "
                  f"{1000 * wall / num_samples:.3f} / {1000 * cpu / num_samples:.3f} | {1000 * latency:.1f} | "
                  f"{train_s[ckpt]} |")
        real = data.x_train[torch.randperm(len(data.x_train), generator=torch.Generator().manual_seed(0))[:num_samples]]
        fdd, _, _ = _digit_scores(clf, real, data.x_test)
        _, entropy, conf = _digit_scores(clf, data.x_test, data.x_test)
        print(f"| real digits (FDD: {num_samples} train digits; entropy, confidence: the test digits) | "
              f"{fdd:.1f} | {entropy:.3f} | {conf:.3f} | | uniform model: {-64 * math.log(17):.1f} | - | - | - | - |")


def _digit_scores(clf, samples: torch.Tensor, test: torch.Tensor) -> tuple[float, float, float]:
    probs = torch.softmax(clf(samples), dim=1)
    hist = torch.bincount(probs.argmax(1), minlength=10).double() / len(samples)
    entropy = float(-(hist[hist > 0] * hist[hist > 0].log()).sum()) / math.log(10)
    return frechet_digit_distance(samples, test), entropy, float(probs.max(1).values.mean())


def _seconds(value) -> str:
    return f"{value[0]:.0f} / {value[1]:.0f}" if isinstance(value, list) else str(value)


def _train_seconds(name: str) -> str:
    _, config = pretrained.load_files(name)
    for holder in (config.get("metrics", {}), config.get("training", {}), config):
        if "train_seconds" in holder:
            return f"{holder['train_seconds']:.0f} (recorded)"
    return "not recorded"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=FULL_BUDGET_STEPS, help="optimiser steps per ring route")
    parser.add_argument("--quick", action="store_true", help="smoke test: few steps and samples")
    parser.add_argument("--digit-samples", type=int, default=500, help="samples per digits route")
    parser.add_argument("--skip-ring", action="store_true")
    parser.add_argument("--skip-digits", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread, so the routes are timed alike
    aigc_course.seed_everything(0)
    steps = 300 if args.quick else args.steps
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU")
    if not args.skip_ring:
        routes = train_ring_routes(steps, seed=0, progress=True)
        test = ring_gaussians(5000, generator=torch.Generator().manual_seed(999))
        print_ring(ring_table(routes, test), test, steps)
    if not args.skip_digits:
        if args.quick:
            digits_table(num_samples=100, ddpm_steps=50, vae_k=10)
        else:
            digits_table(num_samples=args.digit_samples, ddpm_steps=1000, vae_k=1000)


if __name__ == "__main__":
    main()

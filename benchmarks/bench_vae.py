"""Held-out log-likelihood bounds of the shipped digits VAEs (Chapter 3.4, Burda et al. 2016).

    .venv/bin/python benchmarks/bench_vae.py [--ks 1 10 100 1000] [--seeds 0 1]

For each checkpoint it prints, on the test split (360 images, never used in training), the
ELBO (analytic KL, one z) and the importance-weighted bound L_K for each K, in nats per image
and in bits per dimension (64 pixels, Binomial(16, p) each: a discrete likelihood over the 17
grey levels). Every L_K is a lower bound on log p(x); it must increase with K and L_K for
K >= 10 must be above the ELBO. The uniform baseline (64 * log 17 nats) is printed for scale.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from aigc_course import pretrained
from aigc_course.data import load_digits
from aigc_course.vae import bits_per_dim, evaluate_bounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", nargs="+", default=["digits-vae", "digits-vae-2d"])
    parser.add_argument("--ks", nargs="+", type=int, default=[1, 10, 100, 1000])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    x_test = load_digits().x_test
    uniform = -64 * math.log(17)
    print(f"test split: {len(x_test)} images; uniform 17-level baseline {uniform:.2f} nats "
          f"({bits_per_dim(uniform):.3f} bits/dim); torch threads {torch.get_num_threads()}\n")
    print(f"{'checkpoint':<15} {'bound':<9} {'nats (mean over seeds)':>24} {'seed spread':>12} "
          f"{'bits/dim':>9} {'gain vs ELBO':>13} {'seconds':>8}")
    for name in args.names:
        model = pretrained.load(name, device=args.device)
        rows: dict[str, list[float]] = {}
        seconds: dict[str, float] = {}
        for seed in args.seeds:
            start = time.perf_counter()
            res = evaluate_bounds(model, x_test, ks=(), seed=seed)
            seconds["elbo"] = seconds.get("elbo", 0.0) + time.perf_counter() - start
            rows.setdefault("elbo", []).append(res["elbo"])
            for k in args.ks:
                start = time.perf_counter()
                res = evaluate_bounds(model, x_test, ks=(k,), seed=seed)
                seconds[f"iw_{k}"] = seconds.get(f"iw_{k}", 0.0) + time.perf_counter() - start
                rows.setdefault(f"iw_{k}", []).append(res[f"iw_{k}"])
        elbo = sum(rows["elbo"]) / len(rows["elbo"])
        means = {}
        for key, values in rows.items():
            mean = sum(values) / len(values)
            means[key] = mean
            label = "ELBO" if key == "elbo" else f"L_{key[3:]}"
            print(f"{name:<15} {label:<9} {mean:>24.3f} {max(values) - min(values):>12.3f} "
                  f"{bits_per_dim(mean):>9.4f} {mean - elbo:>+13.3f} {seconds[key] / len(values):>8.2f}")
        iw = [means[f"iw_{k}"] for k in args.ks]
        tighter = all(means[f"iw_{k}"] > elbo for k in args.ks if k >= 10)
        increasing = all(b >= a for a, b in zip(iw, iw[1:], strict=False))
        print(f"{name:<15} check: L_K > ELBO for K >= 10: {tighter}; L_K increases with K: {increasing}\n")


if __name__ == "__main__":
    main()

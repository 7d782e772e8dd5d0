"""Steps against quality for the shipped ``digits-ddpm``, and guidance scale against quality.

    python benchmarks/bench_diffusion.py [--per-class 50] [--threads 2]   # ~15 min on 1 thread

Table 1 samples the same balanced labels with DDPM-1000 and DDIM-100/50/20/10 (eta = 0, 0.5
and 1) at guidance scale 1 and reports, side by side in one run:

* FDD -- Fréchet distance to the 360 real test digits in the digit classifier's feature space;
* accuracy -- the fraction the classifier assigns to the requested label;
* memorisation ratio -- median distance from a sample to its nearest training image, divided by
  the same median for the real test images (>= 1: samples are no closer to the training set
  than unseen real digits are);
* near-copy % -- the share of samples closer to their nearest training image than the closest
  5 % of real test digits are (5 % for samples distributed like unseen real digits; a model that
  copies training images scores far more);
* wall time of sampling.

Table 2 repeats DDIM-50 at guidance scales 1..5, plus 1.25 and 1.5, where accuracy saturates.
The reference row "real digits" gives the FDD and accuracy of N real training digits (FDD's floor
at this N) and the test digits' NN distance.
Targets (issue 5): accuracy >= 95 % at the best guidance scale (the one with the lowest FDD);
FDD(DDIM-50, best eta) <= 1.1 x FDD(DDPM-1000); memorisation ratio >= 1 for DDPM-1000, DDIM-50
and the best guidance scale (every other setting's ratio is listed too).
"""

from __future__ import annotations

import argparse
import time

import torch

import aigc_course
from aigc_course import pretrained
from aigc_course.data import load_digits
from aigc_course.metrics import (
    classifier_accuracy,
    frechet_digit_distance,
    nearest_neighbour_distances,
)


def score(images: torch.Tensor, labels: torch.Tensor, split, test_nn: torch.Tensor) -> dict:
    nn = nearest_neighbour_distances(images, split.x_train)
    return {
        "fdd": frechet_digit_distance(images, split.x_test),
        "acc": classifier_accuracy(images, labels),
        "nn": float(nn.median()),
        "mem": float(nn.median() / test_nn.median()),
        "copy": float((nn < test_nn.quantile(0.05)).float().mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=50, help="samples per digit (N = 10x this)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (at most 2 here)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0])
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(args.threads, 2)))
    device = aigc_course.get_device()
    pipe = pretrained.load("digits-ddpm", device=device)
    split = load_digits()
    labels = torch.arange(10).repeat(args.per_class)
    test_nn = nearest_neighbour_distances(split.x_test, split.x_train)
    print(f"digits-ddpm on {device}, N = {len(labels)} samples ({args.per_class} per digit), seed {args.seed}")
    print(f"real test digits: median nearest-training-image distance {test_nn.median():.3f}, "
          f"5th percentile {test_nn.quantile(0.05):.3f}\n")

    header = f"{'setting':<14}{'steps':>6}{'FDD':>9}{'FDD/ref':>9}{'acc %':>8}{'NN med':>8}{'mem ratio':>11}{'near-copy %':>13}{'wall s':>9}"
    # class-balanced like the samples (FDD is sensitive to the class mix)
    ref_idx = torch.cat([torch.nonzero(split.y_train == c)[: args.per_class, 0] for c in range(10)])
    # reference: FDD / accuracy of N real training digits, NN distances of the real test digits
    real = score(split.x_train[ref_idx], split.y_train[ref_idx], split, test_nn)
    real.update(nn=float(test_nn.median()), mem=1.0, copy=float((test_nn < test_nn.quantile(0.05)).float().mean()))

    def row(name: str, steps: int, r: dict, ref_fdd: float | None, wall: float | None) -> str:
        ratio = f"{r['fdd'] / ref_fdd:9.2f}" if ref_fdd else f"{'':>9}"
        wall_s = f"{wall:9.1f}" if wall is not None else f"{'':>9}"
        return (f"{name:<14}{steps:>6}{r['fdd']:9.2f}{ratio}{100 * r['acc']:8.1f}{r['nn']:8.3f}"
                f"{r['mem']:11.2f}{100 * r['copy']:13.1f}{wall_s}")

    print("Table 1: steps against quality (guidance scale 1; FDD/ref = FDD / FDD of DDPM-1000)")
    print(header)
    print(row("real digits", 0, real, None, None))
    results = {}
    settings = [("ddpm", 1000, 0.0)] + [("ddim", s, eta) for eta in (0.0, 0.5, 1.0) for s in (100, 50, 20, 10)]
    for sampler, steps, eta in settings:
        start = time.perf_counter()
        images = pipe(labels, num_inference_steps=steps, sampler=sampler, eta=eta, seed=args.seed).cpu()
        wall = time.perf_counter() - start
        results[(sampler, steps, eta)] = r = score(images, labels, split, test_nn)
        r["wall"] = wall
        ref_fdd = results[("ddpm", 1000, 0.0)]["fdd"]
        name = "DDPM-1000" if sampler == "ddpm" else f"DDIM-{steps} e={eta:g}"
        print(row(name, steps, r, ref_fdd, wall), flush=True)

    print("\nTable 2: guidance scale against quality (DDIM-50, eta 0)")
    print(header.replace("setting       ", "scale         "))
    guided = {}
    for scale in args.scales:
        start = time.perf_counter()
        images = pipe(labels, num_inference_steps=50, sampler="ddim", guidance_scale=scale, seed=args.seed).cpu()
        wall = time.perf_counter() - start
        guided[scale] = r = score(images, labels, split, test_nn)
        print(row(f"s = {scale:g}", 50, r, None, wall), flush=True)

    ddpm = results[("ddpm", 1000, 0.0)]
    best_eta = min((0.0, 0.5, 1.0), key=lambda e: results[("ddim", 50, e)]["fdd"])
    ddim50 = results[("ddim", 50, best_eta)]
    best_scale = min(guided, key=lambda s: guided[s]["fdd"])  # best samples: lowest FDD
    surest_scale = max(guided, key=lambda s: guided[s]["acc"])  # the first scale with the top accuracy
    fdd_ratio = ddim50["fdd"] / ddpm["fdd"]
    names = {**{f"{sampler.upper()}-{steps}" + (f" e={eta:g}" if sampler == "ddim" else ""): r
                for (sampler, steps, eta), r in results.items()},
             **{f"DDIM-50 s={scale:g}": r for scale, r in guided.items()}}
    below = [name for name, r in names.items() if r["mem"] < 1.0]
    print("\nTargets")
    print(f"  best guidance scale (lowest FDD) {best_scale:g}: accuracy {100 * guided[best_scale]['acc']:.1f} % "
          f"(target >= 95 %): {'MET' if guided[best_scale]['acc'] >= 0.95 else 'MISSED'}; "
          f"top accuracy {100 * guided[surest_scale]['acc']:.1f} % first at scale {surest_scale:g}")
    print(f"  FDD DDIM-50 (eta {best_eta:g}) / DDPM-1000 = {ddim50['fdd']:.2f} / {ddpm['fdd']:.2f} = {fdd_ratio:.3f} "
          f"(target <= 1.10) at {ddpm['wall'] / ddim50['wall']:.1f}x less wall time: "
          f"{'MET' if fdd_ratio <= 1.10 else 'MISSED'}")
    checked = {"DDPM-1000": ddpm, f"DDIM-50 e={best_eta:g}": ddim50, f"DDIM-50 s={best_scale:g}": guided[best_scale]}
    print("  memorisation ratio (target >= 1): " + "; ".join(
        f"{name} {r['mem']:.2f} {'MET' if r['mem'] >= 1.0 else 'MISSED'}" for name, r in checked.items()))
    print(f"  settings below 1 ({len(below)} of {len(names)}): {', '.join(below) or 'none'}")
    most = max(names, key=lambda name: names[name]["copy"])
    print(f"  largest near-copy share: {100 * names[most]['copy']:.1f} % ({most}; real test digits: 5 %)")


if __name__ == "__main__":
    main()

"""The mode-coverage table of Chapter 3.2, with the published rows beside it.

    .venv/bin/python benchmarks/bench_mode_coverage.py                      # shipped checkpoints only
    .venv/bin/python benchmarks/bench_mode_coverage.py --train --seeds 5    # + every recipe from scratch
    .venv/bin/python benchmarks/bench_mode_coverage.py --ablation --seeds 1 # + the best recipe, one trick off at a time

All numbers follow the VEEGAN / PacGAN protocol: 2,500 samples; high quality = within 3 std
of the nearest mode; a mode is captured when a high-quality sample lands on it; reverse KL of
the high-quality mode histogram against uniform.

* **Shipped** (always): the published ``ring-gan`` and ``grid-gan`` scored over 5 sampling
  seeds (0-4), first the generator alone (``sample(2500, seed=s, rejection=False)``, what
  PacGAN's and VEEGAN's rows measure), then with discriminator rejection sampling through
  the shipped critic, with its acceptance rate and so its cost: generator (and critic)
  evaluations per kept sample, ``1 / acceptance``.
* ``--train``: each recipe of ``aigc_course.gan.recipes`` trained from scratch with
  ``--seeds`` seeds (every row gets the best recipe's number of generator steps), scored
  on the generator alone; cells are mean ± std over training seeds.
* ``--ablation``: the best recipe at full length, and at an 8x shorter budget with one trick
  removed at a time (``aigc_course.gan.recipes.BEST_ABLATION``), generator alone, 5 sampling
  seeds per training seed. Chapter 3.2.3 quotes this table.

Last, the shipped ``digits-cgan`` is scored with the digit classifier (``--skip-cgan`` skips it).
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import torch

ROWS = ("vanilla", "non_saturating", "wgan_gp", "best")
LABELS = {"vanilla": "GAN (minimax loss), generator", "non_saturating": "GAN (non-saturating), generator",
          "wgan_gp": "WGAN-GP, generator", "best": "best recipe, generator"}
PUBLISHED = [  # method, ring modes, ring HQ %, grid modes, grid HQ %, ring rKL, grid rKL, source
    ("GAN", 1, 99.3, 3.3, 0.5, None, None, "VEEGAN"),
    ("ALI", 2.8, 0.13, 15.8, 1.6, None, None, "VEEGAN"),
    ("Unrolled GAN", 7.6, 35.6, 23.6, 16.0, None, None, "VEEGAN"),
    ("VEEGAN", 8, 52.9, 24.6, 40.0, None, None, "VEEGAN"),
    ("PacGAN4", 7.8, 95.9, 24.8, 93.6, 0.07, 0.04, "PacGAN"),
]
# the shipped generators alone, mean of 5 sampling seeds (issue 27): modes, high-quality, reverse KL
TARGETS = {"ring": (8, 0.96, 0.05), "grid": (25, 0.94, 0.04)}
DATASETS = ("ring", "grid")
SAMPLING_SEEDS = range(5)
COLUMNS = ("| {first} | Ring modes (of 8) | Ring high-quality % | Ring reverse KL | Grid modes (of 25) "
           "| Grid high-quality % | Grid reverse KL | {extra} | Source |")


def _ms(values: list[float], fmt: str) -> str:
    if any(v == float("inf") for v in values):
        finite = [v for v in values if v != float("inf")]
        tail = f" ({len(values) - len(finite)} inf)"
        values = finite or [float("nan")]
    else:
        tail = ""
    if len(values) == 1:
        return format(values[0], fmt) + tail
    return f"{format(statistics.mean(values), fmt)} ± {format(statistics.pstdev(values), fmt)}{tail}"


def _cells(covs: list[dict]) -> list[str]:
    return [_ms([c["modes_captured"] for c in covs], ".1f"), _ms([100 * c["high_quality"] for c in covs], ".1f"),
            _ms([c["reverse_kl"] for c in covs], ".3f")]


def _mean(covs: list[dict]) -> dict:
    """The mean of each metric over sampling seeds (one training run's score)."""
    return {k: statistics.mean(c[k] for c in covs) for k in ("modes_captured", "high_quality", "reverse_kl")}


def _header(first: str, extra: str) -> None:
    print(COLUMNS.format(first=first, extra=extra))
    print("|" + "---|" * 9)


def _published(extra: str = "—") -> None:
    for name, rm, rh, gm, gh, rk, gk, src in PUBLISHED:
        rk = "—" if rk is None else f"{rk:.2f}"
        gk = "—" if gk is None else f"{gk:.2f}"
        print(f"| {name} (published), generator | {rm} | {rh} | {rk} | {gm} | {gh} | {gk} | {extra} | {src} |")


def shipped_table() -> dict[tuple[str, bool], list[dict]]:
    """Score the shipped ring-gan and grid-gan over 5 sampling seeds, without and with rejection."""
    from aigc_course import pretrained
    from aigc_course.gan.recipes import TOY_DATASETS
    from aigc_course.metrics.modes import NUM_EVAL_SAMPLES

    cells: dict[tuple[str, bool], list[dict]] = {}
    evals: dict[tuple[str, bool], list[float]] = {}
    seconds = {}
    for ds in DATASETS:
        sampler = pretrained.load(f"{ds}-gan", device="cpu")
        training, critic = sampler.config["training"], sampler.config["critic_training"]
        seconds[ds] = (training["train_seconds"], training["train_cpu_seconds"],
                       critic["train_seconds"], critic["train_cpu_seconds"])
        for rejection in (False, True):
            for seed in SAMPLING_SEEDS:
                x = sampler.sample(NUM_EVAL_SAMPLES, seed=seed, rejection=rejection)
                cells.setdefault((ds, rejection), []).append(TOY_DATASETS[ds][1](x).as_dict())
                # every candidate costs one generator and (with rejection) one critic evaluation
                evals.setdefault((ds, rejection), []).append(1 / sampler.acceptance_rate if rejection else 1.0)
    print(f"\nShipped checkpoints, mean ± std over sampling seeds {list(SAMPLING_SEEDS)}; "
          f"{NUM_EVAL_SAMPLES:,} samples each\n")
    _header("Model", "G evaluations per sample")
    for rejection in (False, True):
        label = ("`ring-gan` / `grid-gan` (shipped), generator alone" if not rejection else
                 "`ring-gan` / `grid-gan` (shipped) + critic rejection sampling")
        parts = []
        for ds in DATASETS:
            parts += _cells(cells[(ds, rejection)])
        cost = " / ".join(f"{statistics.mean(evals[(ds, rejection)]):.{0 if not rejection else 1}f}" for ds in DATASETS)
        print(f"| {label} | " + " | ".join(parts) + f" | {cost} | this course |")
    _published("1")
    print("\nShipped training time, wall / CPU seconds on 1 thread (scripts/train_gans.py): "
          + "; ".join(f"{ds}-gan GAN {w:.0f} / {c:.0f}, rejection critic {cw:.0f} / {cc:.0f}"
                      for ds, (w, c, cw, cc) in seconds.items()))
    print("\nTargets for the generator alone (mean of the sampling seeds):")
    for ds, (modes, hq, kl) in TARGETS.items():
        m = _mean(cells[(ds, False)])
        ok = m["modes_captured"] >= modes and m["high_quality"] >= hq and m["reverse_kl"] <= kl
        print(f"  {ds}-gan: modes {m['modes_captured']:.1f}/{modes}, high-quality {100 * m['high_quality']:.1f}% "
              f"(>= {100 * hq:.0f}%), reverse KL {m['reverse_kl']:.3f} (<= {kl}) -> {'MET' if ok else 'MISSED'}")
    return cells


def run_one(job: tuple[str, str, int, str, dict]) -> dict:
    """Train one generator from scratch and score it alone over the sampling seeds."""
    label, dataset, seed, recipe, changes = job
    torch.set_num_threads(1)
    from aigc_course.gan.recipes import RECIPES, TOY_DATASETS, for_dataset, train_toy_gan
    from aigc_course.metrics.modes import NUM_EVAL_SAMPLES
    from aigc_course.runtime import make_generator

    best = RECIPES["best"]
    # every row gets the best recipe's number of generator steps: the table compares tricks
    # at one training budget, not budgets
    steps = best.per_dataset.get(dataset, {}).get("steps", best.config["steps"])
    changes = for_dataset(changes, dataset)
    start, cpu = time.perf_counter(), time.process_time()
    trainer = train_toy_gan(dataset, recipe, seed=seed, progress=False, **{"steps": steps, **changes})
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    G = trainer.sampler_net.eval()
    covs = []
    with torch.no_grad():
        for s in SAMPLING_SEEDS:
            z = torch.randn(NUM_EVAL_SAMPLES, G.latent_dim, generator=make_generator(s))
            covs.append(TOY_DATASETS[dataset][1](G(z)).as_dict())
    return {"label": label, "dataset": dataset, "seed": seed, "seconds": seconds, "cpu": cpu, "cov": _mean(covs)}


def trained_table(title: str, rows: dict[str, tuple[str, dict]], args: argparse.Namespace) -> None:
    """Train every row from scratch with ``args.seeds`` seeds and print the generator-alone table."""
    # seed-major order: if the run is stopped early, the finished seeds are complete
    jobs = [(label, ds, seed, recipe, changes) for seed in range(args.seeds)
            for label, (recipe, changes) in rows.items() for ds in DATASETS]
    start = time.perf_counter()
    results = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for r in pool.map(run_one, jobs):
            results.append(r)
            c = r["cov"]
            print(f"[{time.perf_counter() - start:6.0f} s] {r['label']:40s} {r['dataset']} seed {r['seed']}: "
                  f"modes {c['modes_captured']:4.1f}, HQ {100 * c['high_quality']:5.1f}%, "
                  f"KL {c['reverse_kl']:.3f}, {r['seconds']:.0f} s wall, {r['cpu']:.0f} s CPU", flush=True)
    wall = time.perf_counter() - start
    print(f"\n{title}: generator alone, each run scored as the mean of sampling seeds {list(SAMPLING_SEEDS)}; "
          f"cells are mean ± std over {args.seeds} training seed(s) (wall {wall:.0f} s, {args.workers} worker(s))\n")
    _header("Trained from scratch", "CPU s/run (ring, grid)")
    for label in rows:
        parts, cpu = [], []
        for ds in DATASETS:
            mine = [r for r in results if r["label"] == label and r["dataset"] == ds]
            parts += _cells([r["cov"] for r in mine])
            cpu.append(statistics.mean(r["cpu"] for r in mine))
        print(f"| {label} | " + " | ".join(parts) + f" | {cpu[0]:.0f}, {cpu[1]:.0f} | this course |")


def main() -> None:
    parser = argparse.ArgumentParser(description="GAN mode-coverage table")
    parser.add_argument("--train", action="store_true", help="also train every recipe from scratch")
    parser.add_argument("--ablation", action="store_true", help="also train the best recipe minus one trick at a time")
    parser.add_argument("--seeds", type=int, default=5, help="training seeds for --train and --ablation")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--skip-cgan", action="store_true")
    parser.add_argument("--cgan-only", action="store_true", help="only score the shipped digits-cgan")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.cgan_only:
        shipped_table()
        if args.train:
            trained_table("Recipes", {LABELS[r]: (r, {}) for r in args.rows}, args)
        if args.ablation:
            from aigc_course.gan.recipes import BEST_ABLATION

            trained_table("Ablation of the best recipe",
                          {label: ("best", changes) for label, changes in BEST_ABLATION.items()}, args)
    if not args.skip_cgan:
        cgan_accuracy()


def cgan_accuracy() -> None:
    from aigc_course import pretrained
    from aigc_course.data import load_digits
    from aigc_course.metrics.digits import classifier_accuracy

    pipe = pretrained.load("digits-cgan", device="cpu")
    labels = torch.arange(10).repeat(200)
    accs = [classifier_accuracy(pipe(labels, seed=s), labels) for s in range(5)]
    digits = load_digits()
    real = classifier_accuracy(digits.x_test, digits.y_test)
    print(f"\ndigits-cgan: {100 * statistics.mean(accs):.1f} ± {100 * statistics.pstdev(accs):.1f}% of "
              f"2,000 samples (200 per class, 5 sampling seeds) classified as their label "
              f"(target >= 85%); the classifier scores {100 * real:.1f}% on the real test split.")


if __name__ == "__main__":
    main()

"""Text-to-image (Chapter 5): attribute accuracy, guidance, steps, memorisation, latent vs pixel.

    python benchmarks/bench_text_to_image.py [--n 500] [--seeds 0 1 2] [--sweep-n 200] [--ddpm-n 200]
        [--steps-seeds 0] [--pixel-n 100] [--tables 1 2 3 4 5] [--threads 2]

Every generated image is read by the attribute judge (``scene-judge``, trained on real renders
only) and counted **all right** when the number of objects and every attribute of its caption
are right. Captions come from ``captioned_scenes(n, seed=1000 + s, split)`` -- the training
grammar with seeds the model never saw (``split="train"``), or the held-out compositions
(``split="held_out"``) -- and image ``i`` of seed ``s`` is drawn with ``seed=s``. Each number is
the mean (and the spread, +-, one standard deviation) over the seeds.

1. Accuracy at the pipeline's default guidance scale (DDIM-50): all right and per attribute, for
   both splits, next to the judge reading real renders of the same captions; the CLIP-style score
   (``scene-clip``: mean cosine x 100, and R-precision among all 1,312 captions).
2. Guidance sweep, DDIM-50 (the first ``--sweep-n`` captions of each seed).
3. Steps against quality: DDIM-10/20/50/100 and DDPM-1000 (the first ``--ddpm-n`` captions of
   each of ``--steps-seeds``, all samplers on the same captions), with seconds per image.
4. Memorisation: each sample's pixel distance to its nearest training image (the 20,000 scenes of
   the training run), over the same median for real renders of the same captions (as in 3.3.3).
5. Latent against pixel space: training time (from each checkpoint's config), sampling time and
   accuracy (the first ``--pixel-n`` captions of each seed), when ``text-to-image-pixel`` is published.
6. Round trip prompt -> image -> caption: the shipped ``captioner`` (chapter 2.3b, trained on real
   renders only) captions table 1's samples; exact match of caption and prompt and, per attribute,
   the fraction read as the prompt says -- a second judge, independent of ``scene-judge``, beside
   the same captioner reading real renders of the same captions.

``--tables`` picks which tables to print (tables 4, 5 and 6 reuse table 1's samples, so they draw them).

Targets (issue 16): all right >= 90 % (training grammar, unseen seeds), >= 60 % (held-out
compositions); DDIM-50 within 3 points of DDPM-1000; memorisation ratio >= 1.0. Issue 17: round
trip exact match >= 80 % on the training grammar.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from aigc_course import pretrained
from aigc_course.captioning import caption_scores
from aigc_course.data import captioned_scenes
from aigc_course.metrics import nearest_neighbour_distances
from aigc_course.metrics.scenes import clip_scores, judge_scores

ATTRIBUTES = ("count", "shape", "colour", "size", "position", "shape_1", "colour_1", "relation", "shape_2", "colour_2")


def mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{100 * values[0]:5.1f}"
    return f"{100 * statistics.mean(values):5.1f} +-{100 * statistics.stdev(values):4.1f}"


def generate(pipe, captions: list[str], seed: int, batch: int = 250, **kwargs) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    images = torch.cat([pipe(captions[i : i + batch], seed=seed, **kwargs).cpu() for i in range(0, len(captions), batch)])
    return images, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=500, help="captions per seed and split")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sweep-n", type=int, default=200, help="captions per seed and split for the guidance sweep")
    parser.add_argument("--ddpm-n", type=int, default=200, help="captions per seed for the steps table (DDPM-1000 is slow)")
    parser.add_argument("--steps-seeds", type=int, nargs="+", default=None, help="seeds of the steps table (default: --seeds)")
    parser.add_argument("--pixel-n", type=int, default=100, help="captions per seed and split for the pixel model")
    parser.add_argument("--tables", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6], choices=[1, 2, 3, 4, 5, 6])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 2.0, 3.0, 5.0, 7.5])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = pretrained.load("text-to-image", device="cpu")
    default = pipe.default_guidance_scale
    print(f"text-to-image: {pipe.space} diffusion, trained in {pipe.config['train_seconds']:.0f} s wall, "
          f"{pipe.config.get('train_cpu_seconds', float('nan')):.0f} s CPU "
          f"({pipe.config['train_machine']['threads']} threads); default guidance scale {default:g}; "
          f"n = {args.n} per seed and split, seeds {args.seeds}\n")

    data = {split: [captioned_scenes(args.n, seed=1000 + s, split=split) for s in args.seeds]
            for split in ("train", "held_out")}

    # ---------------------------------------------------------------- 1. accuracy at the default scale
    rows: dict[str, dict[str, list[float]]] = {}
    samples: dict[str, list[torch.Tensor]] = {"train": [], "held_out": []}
    sample_seconds = []
    for split in ("train", "held_out") if {1, 4, 5, 6} & set(args.tables) else ():
        for s, (real, captions, attributes) in zip(args.seeds, data[split], strict=True):
            images, seconds = generate(pipe, captions, s, num_inference_steps=50, guidance_scale=default)
            samples[split].append(images)
            sample_seconds.append(seconds / len(captions))
            for name, imgs in ((f"{split} generated", images), (f"{split} real renders", real)):
                scores = judge_scores(imgs, attributes)
                scores.update(clip_scores(imgs, captions))
                for key, value in scores.items():
                    rows.setdefault(name, {}).setdefault(key, []).append(value)
    if 1 in args.tables:
        print(f"Table 1. DDIM-50 at guidance {default:g}: judge accuracy (%), mean +- sd over {len(args.seeds)} seeds")
        keys = ["all", *ATTRIBUTES]
        print(f"{'':22}" + "".join(f"{k:>12}" for k in keys))
        for name, scores in rows.items():
            print(f"{name:22}" + "".join(f"{mean_sd(scores[k]) if k in scores else '':>12}" for k in keys))
        print(f"\nCLIP-style score (scene-clip): {'':4}{'clip score':>14}{'R-precision %':>16}")
        for name, scores in rows.items():
            cs = scores["clip_score"]
            print(f"  {name:22}{statistics.mean(cs):10.1f} +-{(statistics.stdev(cs) if len(cs) > 1 else 0):4.1f}"
                  f"{mean_sd(scores['r_precision']):>16}")
        print(f"\ntargets: all right >= 90 % on the training grammar (got {mean_sd(rows['train generated']['all'])}), "
              f">= 60 % on held-out compositions (got {mean_sd(rows['held_out generated']['all'])})\n")

    # ---------------------------------------------------------------- 2. guidance sweep
    k = min(args.sweep_n, args.n)
    if 2 in args.tables:
        print(f"Table 2. Guidance scale (DDIM-50, first {k} captions of each seed and split): all right (%) and CLIP score")
        print(f"{'scale':>6}{'train':>14}{'held-out':>14}{'clip (train)':>14}")
    for scale in args.scales if 2 in args.tables else []:
        acc = {"train": [], "held_out": []}
        clip = []
        for split in acc:
            for s, (_, captions, attributes) in zip(args.seeds, data[split], strict=True):
                if scale == default and samples[split]:
                    images = samples[split][args.seeds.index(s)][:k]
                else:
                    images, _ = generate(pipe, captions[:k], s, num_inference_steps=50, guidance_scale=scale)
                acc[split].append(judge_scores(images, attributes[:k])["all"])
                if split == "train":
                    clip.append(clip_scores(images, captions[:k])["clip_score"])
        print(f"{scale:6g}{mean_sd(acc['train']):>14}{mean_sd(acc['held_out']):>14}{statistics.mean(clip):14.1f}")

    # ---------------------------------------------------------------- 3. steps against quality
    m = min(args.ddpm_n, args.n)
    steps_seeds = args.seeds if args.steps_seeds is None else args.steps_seeds
    steps_data = [captioned_scenes(m, seed=1000 + s, split="train") for s in steps_seeds]
    if 3 in args.tables:
        print(f"\nTable 3. Steps against quality at guidance {default:g} (training grammar, "
              f"first {m} captions of seeds {steps_seeds})")
        print(f"{'sampler':>12}{'all right %':>14}{'s / image':>12}")
    steps_acc = {}
    for name, kwargs in () if 3 not in args.tables else (("DDIM-10", {"num_inference_steps": 10}), ("DDIM-20", {"num_inference_steps": 20}),
                         ("DDIM-50", {"num_inference_steps": 50}), ("DDIM-100", {"num_inference_steps": 100}),
                         ("DDPM-1000", {"num_inference_steps": 1000, "sampler": "ddpm"})):
        accs, secs = [], []
        for s, (_, captions, attributes) in zip(steps_seeds, steps_data, strict=True):
            images, seconds = generate(pipe, captions[:m], s, guidance_scale=default, **kwargs)
            accs.append(judge_scores(images, attributes[:m])["all"])
            secs.append(seconds / m)
        steps_acc[name] = accs
        print(f"{name:>12}{mean_sd(accs):>14}{statistics.mean(secs):12.4f}")
    if steps_acc:
        gap = 100 * (statistics.mean(steps_acc["DDIM-50"]) - statistics.mean(steps_acc["DDPM-1000"]))
        print(f"target: DDIM-50 within 3 points of DDPM-1000 (got {gap:+.1f} points)")

    # ---------------------------------------------------------------- 4. memorisation
    if 4 in args.tables:
        recipe = pipe.config["recipe"]
        train_images, _, _ = captioned_scenes(recipe["num_images"], seed=recipe["data_seed"], split="train")
        ratios = []
        for i, (real, _, _) in enumerate(data["train"]):
            sample_nn = nearest_neighbour_distances(samples["train"][i], train_images)
            real_nn = nearest_neighbour_distances(real, train_images)
            ratios.append(float(sample_nn.median() / real_nn.median()))
        print(f"\nTable 4. Memorisation: median distance to the nearest of the {len(train_images):,} training images, "
              f"samples over real renders of the same captions: {statistics.mean(ratios):.3f} "
              f"(+-{statistics.stdev(ratios) if len(ratios) > 1 else 0:.3f}); target >= 1.0")

    # ---------------------------------------------------------------- 6. round trip
    if 6 in args.tables:
        captioner = pretrained.load("captioner", device="cpu")
        keys = ["exact", "shape", "colour", "size", "position", "shape_1", "colour_1", "relation", "shape_2", "colour_2"]
        print(f"\nTable 6. Round trip prompt -> image -> caption (captioner, greedy): % of images, mean +- sd "
              f"over {len(args.seeds)} seeds; 'judge' is table 1's all-right column for the same images")
        print(f"{'':22}{'judge':>13}" + "".join(f"{k:>13}" for k in keys))
        exact_train = []
        for split in ("train", "held_out"):
            for kind in ("generated", "real renders"):
                scores: dict[str, list[float]] = {}
                for i, (real, _, attributes) in enumerate(data[split]):
                    images = samples[split][i] if kind == "generated" else real
                    for key, value in caption_scores(captioner(images), attributes).items():
                        scores.setdefault(key, []).append(value)
                if split == "train" and kind == "generated":
                    exact_train = scores["exact"]
                judge = rows.get(f"{split} {kind}", {}).get("all")
                print(f"{split + ' ' + kind:22}{mean_sd(judge) if judge else '':>13}"
                      + "".join(f"{mean_sd(scores[k]) if k in scores else '':>13}" for k in keys))
        print(f"target: round trip exact match >= 80 % on the training grammar (got {mean_sd(exact_train)})")

    # ---------------------------------------------------------------- 5. latent against pixel
    if 5 not in args.tables:
        return
    q = min(args.pixel_n, args.n)
    print(f"\nTable 5. Latent against pixel space (DDIM-50, guidance as each checkpoint's default; "
          f"accuracy on the first {q} captions of each seed and split)")
    models = {"latent": pipe}
    if "text-to-image-pixel" in pretrained.available():
        models["pixel"] = pretrained.load("text-to-image-pixel", device="cpu")
    else:
        print("  (text-to-image-pixel is not published; run scripts/train_text_to_image.py --space pixel)")
    print(f"{'space':>8}{'params':>11}{'train CPU s':>13}{'denoiser steps':>16}{'sample s/img':>14}"
          f"{'train %':>14}{'held-out %':>14}")
    for space, p in models.items():
        accs = {"train": [], "held_out": []}
        secs = []
        for split in accs:
            for i, (s, (_, captions, attributes)) in enumerate(zip(args.seeds, data[split], strict=True)):
                if space == "latent":
                    images = samples[split][i][:q]
                    seconds = sample_seconds[i if split == "train" else len(args.seeds) + i] * q
                else:
                    images, seconds = generate(p, captions[:q], s, num_inference_steps=50)
                accs[split].append(judge_scores(images, attributes[:q])["all"])
                secs.append(seconds / q)
        params = sum(t.numel() for t in p.state_dict().values())
        print(f"{space:>8}{params:>11,}{p.config.get('train_cpu_seconds', float('nan')):13.0f}"
              f"{p.config['recipe']['steps']:>16}{statistics.mean(secs):14.4f}{mean_sd(accs['train']):>14}"
              f"{mean_sd(accs['held_out']):>14}")

if __name__ == "__main__":
    main()

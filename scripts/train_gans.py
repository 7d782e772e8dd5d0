"""Train and publish the GAN checkpoints of Chapter 3.2: ring-gan, grid-gan and digits-cgan.

    .venv/bin/python scripts/train_gans.py ring grid digits

``ring`` and ``grid`` use the course's best recipe (aigc_course.gan.recipes.RECIPES["best"]),
the same training the benchmark's best row repeats with 5 seeds; ``digits`` trains a conditional GAN (hinge loss,
spectral-norm projection discriminator, EMA generator) on the digits train split. Each
run records its config, data and final metrics into the checkpoint's config.json.
"""

from __future__ import annotations

import argparse
import time

import torch

from aigc_course import pretrained
from aigc_course.data import load_digits
from aigc_course.gan import GANConfig, GANTrainer, ImageDiscriminator, ImageGenerator
from aigc_course.gan.recipes import RECIPES, evaluate_toy, toy_sampler, train_toy_gan

SCRIPT = "scripts/train_gans.py"
DIGITS = dict(latent_dim=32, hidden=256, steps=3000, batch_size=128)


def train_toy(dataset: str, seed: int = 0) -> None:
    start = time.perf_counter()
    recipe = RECIPES["best"]
    trainer = train_toy_gan(dataset, recipe, seed=seed)  # 6,000 steps on the ring, 10,000 on the grid
    seconds = time.perf_counter() - start
    sampler = toy_sampler(trainer, rejection=recipe.rejection)
    cov = evaluate_toy(sampler, dataset)
    plain = evaluate_toy(toy_sampler(trainer, rejection=False), dataset)
    print(f"{dataset}: {cov.as_dict()} (without rejection: {plain.as_dict()}), {seconds:.0f} s")
    tensors = {f"generator.{k}": v for k, v in trainer.sampler_net.state_dict().items()}
    tensors.update({f"discriminator.{k}": v for k, v in trainer.D.state_dict().items()})
    config = {
        "generator": trainer.G.config,
        "discriminator": trainer.D.config,
        "rejection": recipe.rejection,
        "training": {**trainer.config.to_dict(), "seed": seed, "recipe": recipe.name,
                     "data": f"aigc_course.data.{dataset}_gaussians, fresh samples every step",
                     "train_seconds": round(seconds, 1), "torch_threads": torch.get_num_threads()},
        "metrics": {"with_rejection": cov.as_dict(), "without_rejection": plain.as_dict(),
                    "acceptance_rate": sampler.acceptance_rate,
                    "protocol": "2,500 samples, seed 1234; high-quality = within 3 std of nearest mode"},
    }
    pretrained.publish(f"{dataset}-gan", tensors, config, builder="aigc_course.gan:GANSampler",
                       description=f"MLP GAN on the 2-D {dataset} of Gaussians (Chapter 3.2)", script=SCRIPT)


def train_digits(seed: int = 0) -> None:
    from aigc_course.gan import ConditionalGANPipeline
    from aigc_course.metrics.digits import classifier_accuracy

    data = load_digits()
    x, y = data.x_train, data.y_train

    def sample_real(batch: int, rng: torch.Generator):
        idx = torch.randint(len(x), (batch,), generator=rng)
        return x[idx], y[idx]

    start = time.perf_counter()
    torch.manual_seed(seed)
    G = ImageGenerator(latent_dim=DIGITS["latent_dim"], hidden=DIGITS["hidden"])
    D = ImageDiscriminator(hidden=DIGITS["hidden"], spectral_norm=True)
    config = GANConfig(loss="hinge", steps=DIGITS["steps"], batch_size=DIGITS["batch_size"],
                       lr_g=2e-4, lr_d=2e-4, betas=(0.0, 0.9), ema_decay=0.999)
    trainer = GANTrainer(G, D, sample_real, config, seed=seed)
    trainer.train(desc="digits cGAN")
    seconds = time.perf_counter() - start
    pipe = ConditionalGANPipeline(trainer.sampler_net.eval())
    labels = torch.arange(10).repeat(100)
    accuracy = classifier_accuracy(pipe(labels, seed=1234).cpu(), labels)
    real_accuracy = classifier_accuracy(data.x_test, data.y_test)
    print(f"digits cGAN: classifier accuracy {accuracy:.3f} (real test images {real_accuracy:.3f}), {seconds:.0f} s")
    tensors = {f"generator.{k}": v for k, v in trainer.sampler_net.state_dict().items()}
    meta = {
        "generator": G.config,
        "discriminator": D.config,
        "training": {**config.to_dict(), "seed": seed, "data": "aigc_course.data.load_digits() train split (1,437 images)",
                     "train_seconds": round(seconds, 1), "torch_threads": torch.get_num_threads()},
        "metrics": {"classifier_accuracy": accuracy, "classifier_accuracy_real_test": real_accuracy,
                    "protocol": "100 samples per class, seed 1234, digits-classifier"},
    }
    pretrained.publish("digits-cgan", tensors, meta, builder="aigc_course.gan:ConditionalGANPipeline",
                       description="Conditional GAN on the 8x8 digits (Chapter 3.2)", script=SCRIPT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="+", choices=["ring", "grid", "digits"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for which in args.which:
        if which == "digits":
            train_digits(args.seed)
        else:
            train_toy(which, args.seed)


if __name__ == "__main__":
    main()

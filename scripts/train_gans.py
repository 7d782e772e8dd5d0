"""Train and publish the GAN checkpoints of Chapter 3.2: ring-gan, grid-gan and digits-cgan.

    .venv/bin/python scripts/train_gans.py ring grid digits

``ring`` and ``grid`` use the course's best recipe (aigc_course.gan.recipes.RECIPES["best"]),
the same training the benchmark's best row repeats with 5 seeds: the GAN, whose generator
samples alone by default, then a rejection critic fitted to it, shipped too so that
``sample(..., rejection=True)`` can filter the generator's samples
(``--reuse-generator`` refits only the critic of a published generator).
``digits`` trains a conditional GAN (hinge loss, spectral-norm projection discriminator, EMA
generator) on the digits train split. Each run records its config, data and final metrics
into the checkpoint's config.json.
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import torch
from publishing import publish

from aigc_course import pretrained
from aigc_course.data import load_digits
from aigc_course.gan import GANConfig, GANTrainer, Generator, ImageDiscriminator, ImageGenerator
from aigc_course.gan.recipes import (
    RECIPES,
    evaluate_toy,
    fit_toy_critic,
    toy_sampler,
    train_toy_gan,
)

SCRIPT = "scripts/train_gans.py"
DIGITS = dict(latent_dim=32, hidden=256, steps=3000, batch_size=128)


def train_toy(dataset: str, seed: int = 0, reuse_generator: bool = False) -> None:
    """Train the best recipe's GAN, fit its rejection critic, evaluate and publish ``<dataset>-gan``.

    The checkpoint samples with the generator alone (``rejection`` False in its config); the
    critic and its quantile bound serve ``sample(..., rejection=True)``.

    ``reuse_generator`` skips the GAN training and fits a new critic to the generator of the
    published checkpoint (its training record is carried over).
    """
    recipe = RECIPES["best"]
    start, cpu_start = time.perf_counter(), time.process_time()
    if reuse_generator:
        tensors, old = pretrained.load_files(f"{dataset}-gan")
        G = Generator(**old["generator"])
        pretrained.load_module_state(G, {k.removeprefix("generator."): v for k, v in tensors.items()
                                         if k.startswith("generator.")})
        trainer = SimpleNamespace(sampler_net=G.eval(), G=G)
        training = old["training"]
    else:
        trainer = train_toy_gan(dataset, recipe, seed=seed)  # 2,000 steps on the ring, 3,000 on the grid
        training = {**trainer.config.to_dict(), "seed": seed, "recipe": recipe.name,
                    "data": f"aigc_course.data.{dataset}_gaussians, fresh samples every step",
                    "train_seconds": round(time.perf_counter() - start, 1),
                    "train_cpu_seconds": round(time.process_time() - cpu_start, 1),
                    "torch_threads": torch.get_num_threads()}
    critic_start, critic_cpu = time.perf_counter(), time.process_time()
    critic, history = fit_toy_critic(trainer, dataset, recipe, seed=seed)
    critic_seconds, critic_cpu = time.perf_counter() - critic_start, time.process_time() - critic_cpu
    sampler = toy_sampler(trainer, rejection=True, critic=critic, quantile=recipe.quantile)
    cov = evaluate_toy(sampler, dataset)
    plain = evaluate_toy(toy_sampler(trainer, rejection=False), dataset)
    print(f"{dataset}: generator alone {plain.as_dict()}, with rejection {cov.as_dict()}; "
          f"GAN {training['train_seconds']:.0f} s wall / {training.get('train_cpu_seconds', float('nan')):.0f} s CPU, "
          f"critic {critic_seconds:.0f} s wall / {critic_cpu:.0f} s CPU")
    tensors = {f"generator.{k}": v for k, v in trainer.sampler_net.state_dict().items()}
    tensors.update({f"discriminator.{k}": v for k, v in critic.state_dict().items()})
    config = {
        "generator": trainer.G.config,
        "discriminator": critic.config,  # the rejection critic; the GAN's own D is not needed to sample
        "rejection": recipe.rejection,  # False: the generator alone unless sample(rejection=True)
        "rejection_quantile": recipe.quantile,
        "training": training,
        "critic_training": {**recipe.critic, "seed": seed, "final_loss": history.loss[-1],
                            "train_seconds": round(critic_seconds, 1),
                            "train_cpu_seconds": round(critic_cpu, 1),
                            "torch_threads": torch.get_num_threads()},
        "metrics": {"with_rejection": cov.as_dict(), "without_rejection": plain.as_dict(),
                    "acceptance_rate": sampler.acceptance_rate,
                    "protocol": "2,500 samples, seed 1234; high-quality = within 3 std of nearest mode; "
                                "benchmarks/bench_mode_coverage.py scores 5 sampling seeds"},
    }
    publish(f"{dataset}-gan", tensors, config, builder="aigc_course.gan.pipelines:GANSampler",
                       description=f"MLP GAN on the 2-D {dataset} of Gaussians, with an optional "
                                   "rejection critic (Chapter 3.2)", script=SCRIPT)


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
    publish("digits-cgan", tensors, meta, builder="aigc_course.gan.pipelines:ConditionalGANPipeline",
                       description="Conditional GAN on the 8x8 digits (Chapter 3.2)", script=SCRIPT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="+", choices=["ring", "grid", "digits"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reuse-generator", action="store_true",
                        help="ring/grid: keep the published generator, fit and publish a new critic only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for which in args.which:
        if which == "digits":
            train_digits(args.seed)
        else:
            train_toy(which, args.seed, reuse_generator=args.reuse_generator)


if __name__ == "__main__":
    main()

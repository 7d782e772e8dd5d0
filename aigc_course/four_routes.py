"""The four routes of Section 2.1.1 -- GAN, VAE, autoregressive, diffusion -- trained alike on the ring.

Chapter 3.5 trains them briefly and ``benchmarks/bench_four_routes.py`` at full budget, both
with :func:`train_ring_routes` and the recipes below: the same 50,000 training points of the
ring of 8 Gaussians (:func:`ring_training_set`), batches of :data:`RING_BATCH` of them and the
same number of optimiser steps for every route. The recipes are data, so the page prints its
settings from them instead of retyping them.

* **GAN** -- the course's best GAN recipe (:data:`GAN_RECIPE` of :mod:`aigc_course.gan.recipes`);
* **VAE**, **autoregressive** (:class:`~aigc_course.autoregressive.PointGPT`) and **diffusion**
  (:class:`~aigc_course.diffusion.MLPDenoiser`, :data:`NOISE_SCHEDULE`) -- a :class:`RouteRecipe`
  each: the network, the optimiser, and a warm-up + cosine learning rate
  (:func:`~aigc_course.training.warmup_cosine_scheduler`) whose horizon is the run's length.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from aigc_course.autoregressive import PointGPT
from aigc_course.data import ring_gaussians
from aigc_course.diffusion import Diffusion2DPipeline, MLPDenoiser, NoiseSchedule, diffusion_loss_fn
from aigc_course.gan.models import Discriminator, Generator
from aigc_course.gan.recipes import RECIPES
from aigc_course.gan.train import GANTrainer
from aigc_course.training import fit, warmup_cosine_scheduler
from aigc_course.vae import make_vae, vae_loss_fn

RING_POINTS = 50_000  # the fixed training set every route learns from
RING_BATCH = 256
FULL_BUDGET_STEPS = 3000  # the benchmark's steps per route
GAN_RECIPE = "drs"  # trained at RING_BATCH instead of its own batch size, like the other routes
NOISE_SCHEDULE = ("cosine", 1000)  # grid-ddpm's; the denoiser is narrower (hidden 128, not 256) to sample faster


@dataclass(frozen=True)
class RouteRecipe:
    """How one route is trained: its network's arguments, the optimiser and the learning rate.

    The learning rate rises linearly over ``warmup`` steps to ``lr``, then follows a cosine
    down to ``floor * lr`` at the last step; ``grad_clip`` bounds the gradient norm (``None``:
    no clipping). Neither optimiser decays the weights.
    """

    route: str
    model: dict
    lr: float
    optimizer: str = "adamw"  # "adam" or "adamw"
    warmup: int = 100
    floor: float = 0.02
    grad_clip: float | None = None

    def describe(self) -> str:
        """The optimiser settings in words, e.g. for a table on the page."""
        name = {"adam": "Adam", "adamw": "AdamW"}[self.optimizer]
        clip = "" if self.grad_clip is None else f", gradient norm clipped to {self.grad_clip:g}"
        return (f"{name}, learning rate {self.lr:g} after a {self.warmup}-step linear warm-up, then a cosine "
                f"down to {self.floor:.0%} of it{clip}")


RING_RECIPES: dict[str, RouteRecipe] = {
    "vae": RouteRecipe("VAE", dict(data="2d"), lr=1e-3, optimizer="adam"),
    "ar": RouteRecipe("Autoregressive", dict(bins=200, lim=2.5, n_layer=2, n_head=4, n_embd=64), lr=2e-3,
                      grad_clip=1.0),
    "ddpm": RouteRecipe("Diffusion", dict(dim=2, hidden=128, num_blocks=3, time_dim=64), lr=2e-3, grad_clip=1.0),
}


@dataclass
class TrainedRoute:
    """A trained route and what its training cost: ``model`` is a :class:`GANTrainer` (GAN),
    a :class:`~aigc_course.vae.VAE`, a :class:`PointGPT` or a :class:`Diffusion2DPipeline`."""

    model: object
    wall_seconds: float
    cpu_seconds: float


def ring_training_set(seed: int = 0) -> torch.Tensor:
    """The :data:`RING_POINTS` training points ``(N, 2)`` every route learns from."""
    return ring_gaussians(RING_POINTS, generator=torch.Generator().manual_seed(seed))


def _timed(train: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    train()
    return time.perf_counter() - wall, time.process_time() - cpu


def _optimizer(recipe: RouteRecipe, model: torch.nn.Module) -> torch.optim.Optimizer:
    if recipe.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=recipe.lr)
    return torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.0)


def _fit(recipe: RouteRecipe, model: torch.nn.Module, loss_fn, steps: int, progress: bool) -> tuple[float, float]:
    opt = _optimizer(recipe, model)
    schedule = warmup_cosine_scheduler(opt, steps, recipe.warmup, floor=recipe.floor)
    return _timed(lambda: fit(model, opt, loss_fn, steps, grad_clip=recipe.grad_clip, scheduler=schedule,
                              desc=f"ring {recipe.route}", progress=progress))


def train_ring_routes(steps: int, seed: int = 0, *, device: torch.device | str = "cpu",
                      progress: bool = True) -> dict[str, TrainedRoute]:
    """Train the four routes for ``steps`` optimiser steps each on :func:`ring_training_set`.

    Returns ``{"gan", "vae", "ar", "ddpm"}`` -> :class:`TrainedRoute`, the models in eval mode.
    Each route's initial weights come from ``torch.manual_seed(seed)`` and its batches from its
    own generator seeded with ``seed``, so on the CPU a run is repeatable.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    device = torch.device(device)
    data = ring_training_set(seed).to(device)
    routes = {}

    def sample_real(batch: int, rng: torch.Generator) -> torch.Tensor:
        return data[torch.randint(len(data), (batch,), generator=rng).to(device)]

    gan = RECIPES[GAN_RECIPE]
    torch.manual_seed(seed)
    trainer = GANTrainer(Generator(**gan.generator), Discriminator(**gan.discriminator), sample_real,
                         gan.settings(steps=steps, batch_size=RING_BATCH), device=device, seed=seed)
    routes["gan"] = TrainedRoute(trainer, *_timed(lambda: trainer.train(progress=progress, desc="ring GAN")))

    recipe = RING_RECIPES["vae"]
    torch.manual_seed(seed)
    vae = make_vae(**recipe.model).to(device)
    cost = _fit(recipe, vae, vae_loss_fn(data, RING_BATCH, generator=torch.Generator().manual_seed(seed)), steps,
                progress)
    routes["vae"] = TrainedRoute(vae.eval(), *cost)

    recipe = RING_RECIPES["ar"]
    torch.manual_seed(seed)
    ar = PointGPT(**recipe.model).to(device)
    rng = torch.Generator().manual_seed(seed)
    cost = _fit(recipe, ar, lambda m, step: m.loss_points(sample_real(RING_BATCH, rng)), steps, progress)
    routes["ar"] = TrainedRoute(ar.eval(), *cost)

    recipe = RING_RECIPES["ddpm"]
    torch.manual_seed(seed)
    schedule = NoiseSchedule(*NOISE_SCHEDULE)
    net = MLPDenoiser(**recipe.model).to(device)
    cost = _fit(recipe, net, diffusion_loss_fn(data, schedule, RING_BATCH, generator=torch.Generator().manual_seed(seed)),
                steps, progress)
    routes["ddpm"] = TrainedRoute(Diffusion2DPipeline(net.eval(), schedule), *cost)
    return routes

"""Named training recipes for the 2-D ring and grid (the mode-coverage table of Chapter 3.2).

Each recipe fixes the nets, the loss and the optimiser settings, so the notebooks, the
benchmark and the checkpoint scripts all train exactly the same thing. The numbers live in
:data:`RECIPES` only; pages print them with :meth:`ToyRecipe.describe` rather than retype them.

* ``"vanilla"`` -- the original minimax loss (saturating generator loss);
* ``"non_saturating"`` -- the same with the non-saturating generator loss;
* ``"wgan_gp"`` -- the Wasserstein critic with gradient penalty, several critic steps per G step;
* ``"best"`` -- the course's recipe, the one behind the shipped ``ring-gan`` and ``grid-gan``:
  non-saturating loss, a larger batch, Adam's ``beta_2`` lowered, the R1 penalty on real
  data and the learning rate decayed linearly to zero. Its generator is scored alone; a
  rejection critic fitted to the trained generator
  (:func:`aigc_course.gan.rejection.fit_rejection_critic`) makes discriminator rejection
  sampling available as an option (``sample(..., rejection=True)``);
* ``"drs"`` -- the previous best recipe, without R1, which relied on that rejection step by
  default; Chapter 2.1's four-routes comparison trains its GAN route with it.

:data:`BEST_ABLATION` lists the best recipe with one trick taken away at a time, at an 8x shorter
budget, beside the full-length run: the benchmark trains each and Chapter 3.2.3 quotes what
every trick, and the training length, buys the generator alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from aigc_course._checks import check_int
from aigc_course.data import grid_gaussians, ring_gaussians
from aigc_course.gan.models import Discriminator, Generator
from aigc_course.gan.pipelines import GANSampler
from aigc_course.gan.rejection import fit_rejection_critic
from aigc_course.gan.train import GANConfig, GANTrainer
from aigc_course.metrics.modes import NUM_EVAL_SAMPLES, ModeCoverage, grid_coverage, ring_coverage

TOY_DATASETS: dict[str, tuple[Callable, Callable[[torch.Tensor], ModeCoverage]]] = {
    "ring": (ring_gaussians, ring_coverage),
    "grid": (grid_gaussians, grid_coverage),
}


@dataclass(frozen=True)
class ToyRecipe:
    """Nets and training settings of one row of the mode-coverage table."""

    name: str
    config: dict
    generator: dict = field(default_factory=lambda: dict(latent_dim=8, hidden=128, depth=3))
    discriminator: dict = field(default_factory=lambda: dict(hidden=128, depth=3))
    rejection: bool = False  # discriminator rejection sampling when sampling
    per_dataset: dict = field(default_factory=dict)  # e.g. {"grid": {"steps": 6000}}
    critic: dict | None = None  # fit_rejection_critic settings; None: reject with the GAN's own D
    quantile: float | None = None  # rejection_sample's bound

    def settings(self, dataset: str | None = None, **overrides) -> GANConfig:
        """The :class:`GANConfig` this recipe trains with on ``dataset`` (``None``: no dataset's
        own settings), with ``overrides`` replacing fields (e.g. ``steps=400``)."""
        return GANConfig(**{**self.config, **self.per_dataset.get(dataset, {}), **overrides})

    def describe(self, dataset: str | None = None, *, sampling: bool = True, **overrides) -> str:
        """The recipe's loss and optimiser settings in words, read from :meth:`settings`, and
        (with ``sampling``) how it samples."""
        c = self.settings(dataset, **overrides)
        lr = f"{c.lr_g:g} for both players" if c.lr_g == c.lr_d else f"{c.lr_g:g} for G and {c.lr_d:g} for D"
        decay = ", decayed linearly to zero" if c.lr_decay else ""
        text = (f"the {_LOSS_NAMES.get(c.loss, c.loss)} loss; Adam with betas {c.betas} and learning rate "
                f"{lr}{decay}; {c.d_steps} D step{'s' if c.d_steps > 1 else ''} per G step; "
                f"batches of {c.batch_size}; {c.steps:,} steps")
        if c.gp_weight:
            text += f"; gradient penalty weight {c.gp_weight:g}"
        if c.r1_weight:
            text += f"; R1 penalty on real data, gamma {c.r1_weight:g}"
        if c.ema_decay:
            text += f"; samples from a moving average of G's weights (decay {c.ema_decay:g})"
        if sampling and self.rejection:
            text += "; discriminator rejection sampling when sampling"
        elif sampling and self.critic is not None:
            text += "; a rejection critic fitted afterwards, for optional discriminator rejection sampling"
        return text


_LOSS_NAMES = {"non_saturating": "non-saturating", "wgan": "Wasserstein"}


RECIPES: dict[str, ToyRecipe] = {
    "vanilla": ToyRecipe("vanilla", dict(loss="minimax", steps=1500, batch_size=256, lr_g=1e-3,
                                         lr_d=1e-3, betas=(0.5, 0.999))),
    "non_saturating": ToyRecipe("non_saturating", dict(loss="non_saturating", steps=1500, batch_size=256,
                                                       lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.999))),
    "wgan_gp": ToyRecipe("wgan_gp", dict(loss="wgan", steps=500, batch_size=256, lr_g=5e-4, lr_d=5e-4,
                                         betas=(0.5, 0.9), d_steps=5, gp_weight=0.1)),
    "best": ToyRecipe("best", dict(loss="non_saturating", steps=16000, batch_size=512, lr_g=1e-3,
                                   lr_d=1e-3, betas=(0.5, 0.9), lr_decay=True, r1_weight=1.0),
                      per_dataset={"grid": {"steps": 24000}},
                      critic=dict(steps=1500, batch_size=512, lr=1e-3), quantile=0.9995),
    "drs": ToyRecipe("drs", dict(loss="non_saturating", steps=2000, batch_size=512, lr_g=1e-3,
                                 lr_d=1e-3, betas=(0.5, 0.9), lr_decay=True), rejection=True,
                     per_dataset={"grid": {"steps": 3000}},
                     critic=dict(steps=1500, batch_size=512, lr=1e-3), quantile=0.9995),
}


# The best recipe with one trick taken away at a time: row label -> train_toy_gan keyword
# arguments (benchmarks/bench_mode_coverage.py --ablation). The tricks are compared at the
# recipe's earlier, 8x shorter budget (SHORT_STEPS), beside the full-length run that ships;
# a "steps" given per dataset is resolved by for_dataset.
SHORT_STEPS = {"ring": 2000, "grid": 3000}
_SHORT = f"{SHORT_STEPS['ring']:,} / {SHORT_STEPS['grid']:,} steps"
BEST_ABLATION: dict[str, dict] = {
    "best recipe, full length (as shipped)": {},
    f"best recipe, {_SHORT}": {"steps": SHORT_STEPS},
    f"without R1 (gamma 0), {_SHORT}": {"r1_weight": 0.0, "steps": SHORT_STEPS},
    f"without the learning-rate decay, {_SHORT}": {"lr_decay": False, "steps": SHORT_STEPS},
}


def for_dataset(changes: dict, dataset: str) -> dict:
    """``changes`` (:func:`train_toy_gan` keyword arguments) with a per-dataset ``"steps"`` resolved."""
    steps = changes.get("steps")
    return {**changes, "steps": steps[dataset]} if isinstance(steps, dict) else dict(changes)


def ablation_settings(label: str, dataset: str) -> dict:
    """The :func:`train_toy_gan` keyword arguments of one :data:`BEST_ABLATION` row on ``dataset``."""
    if label not in BEST_ABLATION:
        raise ValueError(f"label must be one of {sorted(BEST_ABLATION)}, got {label!r}")
    return for_dataset(BEST_ABLATION[label], dataset)


def _check(dataset: str, recipe: str | ToyRecipe) -> ToyRecipe:
    if not isinstance(dataset, str) or dataset not in TOY_DATASETS:
        raise ValueError(f"dataset must be one of {sorted(TOY_DATASETS)}, got {dataset!r}")
    if isinstance(recipe, ToyRecipe):
        return recipe
    if not isinstance(recipe, str) or recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {sorted(RECIPES)} or a ToyRecipe, got {recipe!r}")
    return RECIPES[recipe]


def train_toy_gan(dataset: str, recipe: str | ToyRecipe = "best", seed: int = 0, *,
                  steps: int | None = None, device: torch.device | str = "cpu", progress: bool = True,
                  callback: Callable[[GANTrainer, int], None] | None = None, every: int = 0,
                  generator: dict | None = None, discriminator: dict | None = None,
                  **overrides) -> GANTrainer:
    """Train a fresh generator/discriminator pair on ``dataset`` (``"ring"`` or ``"grid"``).

    ``overrides`` replace fields of the recipe's :class:`GANConfig` (e.g. ``d_steps=2``);
    ``callback(trainer, step)`` runs every ``every`` steps (e.g. to snapshot samples);
    ``generator`` / ``discriminator`` update the recipe's net settings (e.g. ``{"pack": 4}``).
    Returns the trainer; :func:`toy_sampler` turns it into a sampler.
    """
    r = _check(dataset, recipe)
    seed = check_int(seed, "seed", low=0)
    if steps is not None:
        steps = check_int(steps, "steps", low=0)
    sample_data = TOY_DATASETS[dataset][0]
    torch.manual_seed(seed)  # weight initialisation
    G = Generator(**{**r.generator, **(generator or {})})
    D = Discriminator(**{**r.discriminator, **(discriminator or {})})
    if steps is not None:
        overrides["steps"] = steps  # also the horizon of the learning-rate decay
    config = r.settings(dataset, **overrides)
    trainer = GANTrainer(G, D, lambda b, rng: sample_data(b, generator=rng), config, device=device, seed=seed)
    hook = None if callback is None else (lambda step: callback(trainer, step))
    trainer.train(progress=progress, desc=f"{r.name} GAN on the {dataset}", callback=hook, every=every)
    return trainer


def fit_toy_critic(trainer: GANTrainer, dataset: str, recipe: str | ToyRecipe = "best", seed: int = 0,
                   progress: bool = True):
    """Fit the recipe's rejection critic to the trained generator (``recipe.critic`` settings).

    Returns the critic (a :class:`~aigc_course.gan.models.Discriminator`) and its loss history.
    """
    r = _check(dataset, recipe)
    if r.critic is None:
        raise ValueError(f"recipe {r.name!r} has no rejection critic (its critic setting is None)")
    sample_data = TOY_DATASETS[dataset][0]
    return fit_rejection_critic(trainer.sampler_net, lambda b, rng: sample_data(b, generator=rng),
                                seed=seed, progress=progress, **r.critic)


def toy_sampler(trainer: GANTrainer, rejection: bool = False, critic=None,
                quantile: float | None = None) -> GANSampler:
    """A :class:`GANSampler` over the trainer's generator.

    Rejection uses ``critic`` when given (see :func:`fit_toy_critic`), else the GAN's own
    discriminator; ``quantile`` is :func:`~aigc_course.gan.rejection.rejection_sample`'s bound.
    """
    D = critic if critic is not None else (trainer.D.eval() if rejection or trainer.D.pack == 1 else None)
    return GANSampler(trainer.sampler_net.eval(), {"generator": trainer.G.config}, D, rejection, quantile)


def evaluate_toy(sampler: GANSampler, dataset: str, seed: int = 1234) -> ModeCoverage:
    """Mode coverage of ``2,500`` samples (the VEEGAN / PacGAN protocol)."""
    if dataset not in TOY_DATASETS:
        raise ValueError(f"dataset must be one of {sorted(TOY_DATASETS)}, got {dataset!r}")
    seed = check_int(seed, "seed", low=0)
    return TOY_DATASETS[dataset][1](sampler.sample(NUM_EVAL_SAMPLES, seed=seed).cpu())

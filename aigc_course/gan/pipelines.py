"""Ready-to-use samplers built from shipped checkpoints (``ring-gan``, ``grid-gan``, ``digits-cgan``).

Checkpoints store the generator's weights under ``generator.*`` and its constructor
arguments in ``config["generator"]``; :func:`aigc_course.pretrained.load` calls
``from_checkpoint`` on the class registered for the name.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from aigc_course.gan.models import Discriminator, Generator, ImageGenerator
from aigc_course.gan.rejection import rejection_bound, rejection_sample
from aigc_course.pretrained import load_module_state


def _rng(seed: int | None) -> torch.Generator | None:
    if seed is None:
        return None
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    return torch.Generator().manual_seed(seed)


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def _generator_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return _prefixed(tensors, "generator.")


class GANSampler:
    """Samples 2-D points from a trained :class:`~aigc_course.gan.models.Generator`.

    With a ``discriminator`` (the GAN's own, or a critic from
    :func:`~aigc_course.gan.rejection.fit_rejection_critic`) and ``rejection=True``,
    :meth:`sample` applies :func:`rejection_sample` by default, with ``quantile`` as its bound.
    """

    def __init__(self, generator: Generator, config: dict | None = None,
                 discriminator: Discriminator | None = None, rejection: bool = False,
                 quantile: float | None = None):
        if rejection and discriminator is None:
            raise ValueError("rejection=True needs a discriminator")
        if quantile is not None and not 0 < quantile <= 1:
            raise ValueError(f"quantile must be in (0, 1] or None, got {quantile}")
        self.quantile = quantile
        self._bound: torch.Tensor | None = None  # rejection_sample's M, computed on first use
        self.generator = generator.eval()
        self.discriminator = None if discriminator is None else discriminator.eval()
        self.rejection = rejection
        self.config = dict(config or {})
        self.acceptance_rate: float | None = None

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None, rejection: bool | None = None) -> torch.Tensor:
        """``n`` samples ``(n, 2)`` on the sampler's device; ``seed`` makes them repeatable.

        ``rejection`` (default: the sampler's setting) filters the generator's samples with
        discriminator rejection sampling; the acceptance rate lands in ``.acceptance_rate``.
        """
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise ValueError(f"n must be a positive int, got {n!r}")
        rejection = self.rejection if rejection is None else rejection
        if rejection:
            if self.discriminator is None:
                raise ValueError("rejection=True needs a sampler built with a discriminator")
            if self.quantile is not None and self._bound is None:
                # M depends only on the two nets: compute it once, with its own fixed seed
                self._bound = rejection_bound(self.generator, self.discriminator, self.quantile,
                                              rng=torch.Generator().manual_seed(0))
            x, self.acceptance_rate = rejection_sample(self.generator, self.discriminator, n, _rng(seed),
                                                       quantile=self.quantile, bound=self._bound)
            return x
        z = torch.randn(n, self.generator.latent_dim, generator=_rng(seed))
        return self.generator(z.to(self.device))

    @classmethod
    def from_checkpoint(cls, tensors: dict, config: dict, device: torch.device | str = "cpu") -> GANSampler:
        generator = Generator(**config["generator"])
        load_module_state(generator, _generator_tensors(tensors))
        discriminator = None
        if "discriminator" in config:
            discriminator = Discriminator(**config["discriminator"])
            load_module_state(discriminator, _prefixed(tensors, "discriminator."))
            discriminator = discriminator.to(device)
        return cls(generator.to(device), config, discriminator, bool(config.get("rejection", False)),
                   config.get("rejection_quantile"))


class ConditionalGANPipeline:
    """``pipe(labels, seed=None)`` draws one 8x8 digit per label with a conditional generator."""

    def __init__(self, generator: ImageGenerator, config: dict | None = None):
        self.generator = generator.eval()
        self.config = dict(config or {})

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def num_classes(self) -> int:
        return self.generator.num_classes

    def _labels(self, labels) -> torch.Tensor:
        if isinstance(labels, int) and not isinstance(labels, bool):
            labels = [labels]
        y = torch.as_tensor(labels)
        if y.ndim != 1 or y.numel() == 0:
            raise ValueError(f"labels must be an int or a non-empty 1-D sequence (N,), got shape {tuple(y.shape)}")
        if y.dtype.is_floating_point or y.dtype == torch.bool:
            raise ValueError(f"labels must be integers, got dtype {y.dtype}")
        if y.min() < 0 or y.max() >= self.num_classes:
            raise ValueError(f"labels must lie in [0, {self.num_classes}), got {y.tolist()[:10]}")
        return y.long()

    @torch.no_grad()
    def generate(self, labels: int | Sequence[int] | torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Images ``(N, 1, 8, 8)`` in [0, 1] for given latent codes ``z (N, latent_dim)``."""
        y = self._labels(labels).to(self.device)
        if z.ndim != 2 or len(z) != len(y):
            raise ValueError(f"z must have shape ({len(y)}, latent_dim), got {tuple(z.shape)}")
        return self.generator(z.to(self.device), y)

    def __call__(self, labels: int | Sequence[int] | torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """One image per label: ``(N, 1, 8, 8)`` in [0, 1] on the pipeline's device."""
        y = self._labels(labels)
        z = torch.randn(len(y), self.generator.latent_dim, generator=_rng(seed))
        return self.generate(y, z)

    @classmethod
    def from_checkpoint(cls, tensors: dict, config: dict, device: torch.device | str = "cpu") -> ConditionalGANPipeline:
        generator = ImageGenerator(**config["generator"])
        load_module_state(generator, _generator_tensors(tensors))
        return cls(generator.to(device), config)

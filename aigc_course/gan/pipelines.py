"""Ready-to-use samplers built from shipped checkpoints (``ring-gan``, ``grid-gan``, ``digits-cgan``).

Checkpoints store each network's weights under ``generator.*`` (and ``discriminator.*``) and
its constructor arguments in ``config["generator"]`` (and ``config["discriminator"]``);
``checkpoint_parts`` tells :func:`aigc_course.pretrained.load` so.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from aigc_course._checks import check_bool, check_finite, check_int, check_number
from aigc_course.gan.models import Discriminator, Generator, ImageGenerator
from aigc_course.gan.rejection import rejection_bound, rejection_sample
from aigc_course.pretrained import keyword_options
from aigc_course.runtime import make_generator


class GANSampler:
    """Samples 2-D points from a trained :class:`~aigc_course.gan.models.Generator`.

    With a ``discriminator`` (the GAN's own, or a critic from
    :func:`~aigc_course.gan.rejection.fit_rejection_critic`) and ``rejection=True``,
    :meth:`sample` applies :func:`rejection_sample` by default, with ``quantile`` as its bound.
    """

    # how aigc_course.pretrained builds it from a checkpoint
    checkpoint_parts = {"generator": Generator, "discriminator": Discriminator}
    checkpoint_settings = {"rejection": bool, "rejection_quantile": (float, type(None))}

    def __init__(self, generator: Generator, config: dict | None = None,
                 discriminator: Discriminator | None = None, rejection: bool = False,
                 quantile: float | None = None):
        if rejection and discriminator is None:
            raise ValueError("rejection=True needs a discriminator")
        self.quantile = check_number(quantile, "quantile", low=0, high=1, low_open=True, none_ok=True)
        self._bound: torch.Tensor | None = None  # rejection_sample's M, computed on first use
        self.generator = generator.eval()
        self.discriminator = None if discriminator is None else discriminator.eval()
        self.rejection = rejection
        self.config = dict(config or {})
        self.acceptance_rate: float | None = None

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @keyword_options("seed", "rejection")
    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None, rejection: bool | None = None) -> torch.Tensor:
        """``n`` samples ``(n, 2)`` on the sampler's device; an int ``seed`` repeats them exactly,
        ``None`` draws from torch's global RNG (:func:`~aigc_course.runtime.make_generator`).

        ``rejection`` (default: the sampler's setting) filters the generator's samples with
        discriminator rejection sampling; the acceptance rate lands in ``.acceptance_rate``.
        """
        n = check_int(n, "n", low=1)
        rng = make_generator(seed)  # checks the seed before any work
        rejection = self.rejection if rejection is None else check_bool(rejection, "rejection")
        if rejection:
            if self.discriminator is None:
                raise ValueError("rejection=True needs a sampler built with a discriminator")
            if self.quantile is not None and self._bound is None:
                # M depends only on the two nets: compute it once, with its own fixed seed
                self._bound = rejection_bound(self.generator, self.discriminator, self.quantile,
                                              rng=make_generator(0))
            x, self.acceptance_rate = rejection_sample(self.generator, self.discriminator, n, rng,
                                                       quantile=self.quantile, bound=self._bound)
            return x
        z = torch.randn(n, self.generator.latent_dim, generator=rng)
        return self.generator(z.to(self.device))

    @classmethod
    def from_parts(cls, config: dict, generator: Generator, discriminator: Discriminator) -> GANSampler:
        return cls(generator, config, discriminator, config["rejection"], config["rejection_quantile"])


class ConditionalGANPipeline:
    """``pipe(labels, seed=None)`` draws one 8x8 digit per label with a conditional generator."""

    checkpoint_parts = {"generator": ImageGenerator}  # how aigc_course.pretrained builds it

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
        try:
            y = torch.as_tensor(labels)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"labels must be an int or a non-empty 1-D sequence of ints, got {labels!r:.60}") from err
        if y.ndim != 1 or y.numel() == 0:
            raise ValueError(f"labels must be an int or a non-empty 1-D sequence (N,), got shape {tuple(y.shape)}")
        if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
            raise ValueError(f"labels must be integers, got dtype {y.dtype}")
        if y.min() < 0 or y.max() >= self.num_classes:
            raise ValueError(f"labels must lie in [0, {self.num_classes}), got {y.tolist()[:10]}")
        return y.long()

    @torch.no_grad()
    def generate(self, labels: int | Sequence[int] | torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Images ``(N, 1, 8, 8)`` in [0, 1] for given latent codes ``z (N, latent_dim)``.

        ``z`` must be finite: a NaN or inf code raises ``ValueError`` instead of a NaN image.
        """
        y = self._labels(labels).to(self.device)
        width = self.generator.latent_dim
        if not isinstance(z, torch.Tensor) or z.shape != (len(y), width) or not z.is_floating_point():
            got = f"{z.dtype} {tuple(z.shape)}" if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"z must be a float tensor of shape ({len(y)}, {width}) (one code per label), got {got}")
        return self.generator(check_finite(z, "z").to(self.device), y)

    @keyword_options("seed")
    @torch.no_grad()
    def __call__(self, labels: int | Sequence[int] | torch.Tensor, *, seed: int | None = None) -> torch.Tensor:
        """One image per label: ``(N, 1, 8, 8)`` in [0, 1] on the pipeline's device.

        An int ``seed`` repeats the images exactly; ``None`` draws from torch's global RNG.
        """
        y = self._labels(labels)
        z = torch.randn(len(y), self.generator.latent_dim, generator=make_generator(seed))
        return self.generator(z.to(self.device), y.to(self.device))  # z is drawn here: finite

"""The GAN training loop (book Section 3.2.3): alternating D and G updates.

The loop exposes the three families of training tricks of the chapter as settings:

* **balance of G and D** -- ``d_steps`` discriminator updates per generator update and
  separate learning rates ``lr_d`` / ``lr_g`` (the two time-scale update rule, TTUR);
* **architecture** -- chosen when building the nets (:mod:`aigc_course.gan.models`);
* **regularisation and gradient handling** -- the loss (``"wgan"`` with ``gp_weight``,
  ``"hinge"``...), the R1 penalty ``r1_weight`` (gamma), spectral norm in the nets, and an
  exponential moving average of G's weights (``ema_decay``) used for sampling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from aigc_course._checks import check_bool, check_choice, check_int, check_number
from aigc_course.gan.losses import (
    LOSSES,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    r1_penalty,
)
from aigc_course.training import (
    EMA,
    History,
    linear_decay_scheduler,
    optimizer_step,
    restore_modes_on_error,
    run_steps,
)

RealSampler = Callable[[int, torch.Generator], "torch.Tensor | tuple[torch.Tensor, torch.Tensor]"]


@dataclass
class GANConfig:
    """Hyper-parameters of :class:`GANTrainer`."""

    loss: str = "non_saturating"
    steps: int = 3000
    batch_size: int = 256
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    d_steps: int = 1  # D updates per G update
    gp_weight: float = 0.0  # WGAN-GP lambda
    r1_weight: float = 0.0  # R1 gamma; D's loss gets + gamma/2 * R1
    ema_decay: float = 0.0  # 0 = no moving average of G
    lr_decay: bool = False  # decay both learning rates linearly to 0 over ``steps``

    def __post_init__(self):
        check_choice(self.loss, "loss", LOSSES)
        check_int(self.steps, "steps", low=0)
        check_int(self.batch_size, "batch_size", low=1)
        check_int(self.d_steps, "d_steps", low=1)
        for name in ("lr_g", "lr_d"):
            check_number(getattr(self, name), name, low=0.0, low_open=True)
        for name in ("gp_weight", "r1_weight"):
            check_number(getattr(self, name), name, low=0.0)
        check_number(self.ema_decay, "ema_decay", low=0.0, high=1.0, high_open=True)
        check_bool(self.lr_decay, "lr_decay")
        if isinstance(self.betas, (str, bytes)) or len(self.betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2) of Adam's decay rates, got {self.betas!r}")
        self.betas = tuple(check_number(b, f"betas[{i}]", low=0.0, high=1.0, high_open=True)
                           for i, b in enumerate(self.betas))

    def to_dict(self) -> dict:
        return asdict(self)


class GANTrainer:
    """Trains ``generator`` against ``discriminator`` on batches from ``sample_real``.

    ``sample_real(batch_size, rng)`` returns real samples ``(B, ...)`` or, for a conditional
    GAN, ``(samples, labels)``; fakes then use the same labels. All randomness comes from
    one ``torch.Generator`` seeded with ``seed``, so a run is repeatable on the CPU.
    """

    def __init__(self, generator: torch.nn.Module, discriminator: torch.nn.Module,
                 sample_real: RealSampler, config: GANConfig | None = None,
                 device: torch.device | str = "cpu", seed: int = 0):
        self.config = config or GANConfig()
        self.device = torch.device(device)
        self.G, self.D = generator.to(self.device), discriminator.to(self.device)
        self.sample_real = sample_real
        self.rng = torch.Generator().manual_seed(seed)
        c = self.config
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr_g, betas=c.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr_d, betas=c.betas)
        self.schedulers = []
        if c.lr_decay:
            self.schedulers = [linear_decay_scheduler(o, c.steps) for o in (self.opt_g, self.opt_d)]
        self.g_average = EMA(self.G, c.ema_decay) if c.ema_decay else None
        self.history = History()

    @property
    def ema(self) -> torch.nn.Module | None:
        """The moving average of G's weights (``None`` when ``ema_decay`` is 0)."""
        return None if self.g_average is None else self.g_average.model

    @property
    def sampler_net(self) -> torch.nn.Module:
        """The generator to sample from: the moving average when there is one."""
        return self.ema if self.ema is not None else self.G

    def _batch(self):
        out = self.sample_real(self.config.batch_size, self.rng)
        x, y = out if isinstance(out, tuple) else (out, None)
        z = torch.randn(len(x), self.G.latent_dim, generator=self.rng)
        to = self.device
        return x.to(to), (None if y is None else y.to(to)), z.to(to)

    def _fake(self, z, y):
        return self.G(z) if y is None else self.G(z, y)

    def _d(self, x, y):
        return self.D(x) if y is None else self.D(x, y)

    def step(self, step: int) -> dict[str, torch.Tensor | float]:
        """``d_steps`` discriminator updates, then one generator update.

        Each update is checked before it is applied (:func:`~aigc_course.training.optimizer_step`):
        a non-finite loss or gradient raises ``NonFiniteLossError`` and leaves that update and the
        ones after it (G's, the schedules, the EMA) undone, and the nets in the modes they had.
        """
        c = self.config
        with restore_modes_on_error(self.G, self.D):
            self.G.train()
            for _ in range(c.d_steps):
                x, y, z = self._batch()
                with torch.no_grad():
                    fake = self._fake(z, y)
                d_loss = discriminator_loss(self._d(x, y), self._d(fake, y), c.loss)
                total = d_loss
                if c.gp_weight:
                    total = total + c.gp_weight * gradient_penalty(self.D, x, fake, y, generator=self.rng)
                if c.r1_weight:
                    total = total + 0.5 * c.r1_weight * r1_penalty(self.D, x, y)
                optimizer_step(self.opt_d, total, name="d_loss")
            _, y, z = self._batch()
            g_loss = generator_loss(self._d(self._fake(z, y), y), c.loss)
            g_value = optimizer_step(self.opt_g, g_loss, name="g_loss")
        for scheduler in self.schedulers:
            scheduler.step()
        if self.g_average is not None:
            self.g_average.update(self.G)
        return {"d_loss": d_loss.detach(), "g_loss": g_value}  # D's loss without its penalties

    def train(self, steps: int | None = None, *, progress: bool = True, desc: str = "GAN",
              callback: Callable[[int], None] | None = None, every: int = 0) -> History:
        """Run ``steps`` (default ``config.steps``) steps; ``callback(step)`` every ``every`` steps."""
        steps = self.config.steps if steps is None else steps
        start = len(self.history.loss)

        def step_fn(i: int):
            out = self.step(start + i)
            if callback is not None and every and (i + 1) % every == 0:
                callback(start + i + 1)
            return out

        run_steps(step_fn, steps, desc=desc, progress=progress, history=self.history)
        self.G.eval()
        return self.history

"""Discriminator rejection sampling (Azadi et al., 2019) and the critic it relies on.

Chapter 4.2 shows that the optimal discriminator's logit is a log density ratio,

    logit D*(x) = log p_data(x) - log p_g(x)                                  (book eq. 4.2.2)

so accepting a generated ``x`` with probability ``min(1, exp(logit(x) - M))`` turns ``p_g``
into ``p_data`` wherever ``p_data / p_g <= exp(M)``. Two practical points decide how well this
works on the tight 2-D mixtures of the mode-coverage table:

* **The critic.** The GAN's own discriminator stops being optimal the moment training ends,
  and an MLP on raw coordinates is too smooth to resolve modes of width 0.05. So, as Azadi et
  al. do, a critic is fitted *after* training, against the frozen generator:
  :func:`fit_rejection_critic`, an MLP on random Fourier features of ``x`` (Tancik et al.,
  2020), trained with the logistic loss of eq. 4.2.1.
* **The bound** ``M``. With ``M`` the largest logit ever seen, one over-confident logit makes
  the acceptance rate collapse. ``quantile = q`` sets ``M`` to the ``q``-quantile of the logits
  of a burn-in batch and clips the acceptance probability at 1: the fraction ``1 - q`` of
  samples with the largest ratios is kept with probability 1, slightly under-weighted.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from aigc_course._checks import check_int, check_number
from aigc_course.gan.models import Discriminator, Generator
from aigc_course.training import History, linear_decay_scheduler, optimizer_step, run_steps


def _draw(generator: Generator, discriminator: Discriminator, m: int, rng: torch.Generator | None):
    z = torch.randn(m, generator.latent_dim, generator=rng).to(next(generator.parameters()).device)
    x = generator(z)
    return x, discriminator(x)


@torch.no_grad()
def rejection_bound(generator: Generator, discriminator: Discriminator, quantile: float,
                    burn_in: int = 100_000, rng: torch.Generator | None = None) -> torch.Tensor:
    """``M``: the ``quantile`` of the logits of ``burn_in`` generated samples (a 0-dim tensor)."""
    check_number(quantile, "quantile", low=0.0, high=1.0, low_open=True)
    burn_in = check_int(burn_in, "burn_in", low=1)
    _, logits = _draw(generator, discriminator, burn_in, rng)
    return torch.quantile(logits.float().cpu(), quantile).to(logits.device)


@torch.no_grad()
def rejection_sample(generator: Generator, discriminator: Discriminator, n: int,
                     rng: torch.Generator | None = None, burn_in: int = 100_000,
                     max_rounds: int = 1000, quantile: float | None = None,
                     bound: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
    """Draw ``n`` accepted samples ``(n, 2)``; returns them and the acceptance rate.

    A fake ``x`` is kept with probability ``min(1, exp(logit(x) - M))``. ``quantile=None``
    sets ``M`` to the largest logit seen (updated as sampling goes on: exact for an optimal
    D); ``quantile=q`` in ``(0, 1]`` fixes ``M`` at the ``q``-quantile of ``burn_in`` logits
    (:func:`rejection_bound`). A ``bound`` computed once beforehand skips the burn-in.
    """
    n = check_int(n, "n", low=1)
    burn_in = check_int(burn_in, "burn_in", low=1)
    max_rounds = check_int(max_rounds, "max_rounds", low=1)
    check_number(quantile, "quantile", low=0, high=1, low_open=True, none_ok=True)
    if discriminator.pack != 1:
        raise ValueError("rejection sampling needs a discriminator with pack=1")
    device = next(generator.parameters()).device

    def draw(m: int):
        return _draw(generator, discriminator, m, rng)

    if bound is None and quantile is not None:
        bound = rejection_bound(generator, discriminator, quantile, burn_in, rng)
    elif bound is None:
        bound = draw(burn_in)[1].max()
    bound = torch.as_tensor(bound, device=device)
    kept, drawn, total = [], 0, 0
    for _ in range(max_rounds):
        x, logits = draw(max(2 * n, 1024))
        if quantile is None:
            bound = torch.maximum(bound, logits.max())
        u = torch.rand(len(x), generator=rng).to(device)
        accept = u < torch.exp(logits - bound)  # probabilities above 1 simply always accept
        kept.append(x[accept])
        drawn += len(x)
        total += int(accept.sum())
        if total >= n:
            break
    else:
        raise RuntimeError(f"rejection sampling accepted only {total} of {drawn} samples")
    return torch.cat(kept)[:n], total / drawn


CRITIC_DEFAULTS = dict(hidden=256, depth=2, fourier_features=64, fourier_scale=3.0)


def fit_rejection_critic(
    generator: Generator,
    sample_real: Callable[[int, torch.Generator], torch.Tensor],
    steps: int = 1500,
    batch_size: int = 512,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    **net: object,
) -> tuple[Discriminator, History]:
    """Fit a fresh critic to separate ``sample_real(b, rng)`` from the frozen ``generator``.

    Logistic loss ``softplus(-D(x_real)) + softplus(D(G(z)))`` (eq. 4.2.1 with the signs of a
    minimisation), Adam with the learning rate decayed linearly to zero. ``net`` overrides
    :data:`CRITIC_DEFAULTS` (the critic's :class:`Discriminator` arguments). Returns the
    critic in eval mode and the loss history.
    """
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        check_int(value, name, low=1)
    check_number(lr, "lr", low=0.0, low_open=True)
    check_int(seed, "seed", low=0)
    device = next(generator.parameters()).device
    torch.manual_seed(seed)  # the critic's initial weights
    critic = Discriminator(in_dim=generator.config["out_dim"], **{**CRITIC_DEFAULTS, **net}).to(device)
    rng = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(critic.parameters(), lr=lr)
    schedule = linear_decay_scheduler(optimizer, steps)
    generator.eval()

    def step_fn(step: int) -> float:
        real = sample_real(batch_size, rng).to(device)
        with torch.no_grad():
            fake = generator(torch.randn(batch_size, generator.latent_dim, generator=rng).to(device))
        loss = F.softplus(-critic(real)).mean() + F.softplus(critic(fake)).mean()
        return optimizer_step(optimizer, loss, scheduler=schedule)

    history = run_steps(step_fn, steps, desc="rejection critic", progress=progress)
    return critic.eval(), history

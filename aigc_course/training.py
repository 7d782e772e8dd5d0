"""The small training loop every chapter uses.

:func:`run_steps` drives any step function (one optimiser or several, as in a GAN) with a
``tqdm.auto`` progress bar that shows the loss, and stops with :class:`NonFiniteLossError`
the moment a loss turns NaN or infinite, naming the step. :func:`fit` is the common case:
one model, one optimiser, one loss. Both are bit-for-bit repeatable on the CPU for a
fixed seed, because all randomness comes from the caller's seeded generators.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

StepResult = torch.Tensor | float | Mapping[str, torch.Tensor | float]


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; training stopped before the weights were ruined."""


@dataclass
class History:
    """Per-step losses recorded by :func:`run_steps`."""

    losses: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    def __getitem__(self, key: str) -> list[float]:
        return self.losses[key]

    @property
    def loss(self) -> list[float]:
        """The main loss curve (the ``"loss"`` key, or the first one recorded)."""
        if "loss" in self.losses:
            return self.losses["loss"]
        return next(iter(self.losses.values()), [])


def _as_float_dict(result: StepResult) -> dict[str, float]:
    if isinstance(result, Mapping):
        items = result.items()
    else:
        items = [("loss", result)]
    out = {}
    for key, value in items:
        out[key] = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
    return out


def run_steps(
    step_fn: Callable[[int], StepResult],
    num_steps: int,
    *,
    desc: str = "training",
    progress: bool = True,
    refresh_every: int = 10,
    history: History | None = None,
) -> History:
    """Call ``step_fn(step)`` for ``step = 0 .. num_steps-1`` and record what it returns.

    ``step_fn`` does one optimisation step and returns the loss (a tensor or float) or a
    dict of named losses, e.g. ``{"d_loss": ..., "g_loss": ...}``. Every value is
    checked; a NaN or infinite one raises :class:`NonFiniteLossError` naming the step
    and the loss, so a diverging run fails loudly instead of training on garbage.
    """
    if not isinstance(num_steps, int) or num_steps < 0:
        raise ValueError(f"num_steps must be a non-negative int, got {num_steps!r}")
    history = History() if history is None else history
    start = time.perf_counter()
    offset = len(history.loss)
    bar = tqdm(range(num_steps), desc=desc, disable=not progress, leave=True)
    for step in bar:
        values = _as_float_dict(step_fn(step))
        for key, value in values.items():
            if not math.isfinite(value):
                bar.close()
                raise NonFiniteLossError(
                    f"{key} became {value} at step {offset + step} of '{desc}'; "
                    "lower the learning rate or check the data for NaNs."
                )
            history.losses.setdefault(key, []).append(value)
        if step % refresh_every == 0 or step == num_steps - 1:
            bar.set_postfix({k: f"{v:.4f}" for k, v in values.items()}, refresh=False)
    bar.close()
    history.seconds += time.perf_counter() - start
    return history


def fit(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.nn.Module, int], torch.Tensor],
    num_steps: int,
    *,
    grad_clip: float | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    desc: str = "training",
    progress: bool = True,
    history: History | None = None,
) -> History:
    """Train ``model`` for ``num_steps`` steps; ``loss_fn(model, step)`` returns the loss.

    ``loss_fn`` fetches its own batch for the step (so the caller controls the data and
    its random generator). Gradients are optionally clipped to ``grad_clip`` in norm.
    """
    model.train()

    def step_fn(step: int) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model, step)
        if not torch.isfinite(loss.detach()).all():
            return loss  # run_steps names the step; skip the update that would poison weights
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        return loss

    history = run_steps(step_fn, num_steps, desc=desc, progress=progress, history=history)
    model.eval()
    return history

"""The training toolkit every chapter, script and benchmark uses.

* **Schedules** -- :func:`warmup_cosine` (linear warm-up, then a cosine down to a floor) and
  :func:`linear_decay`, plain functions of the step, with :func:`warmup_cosine_scheduler` and
  :func:`linear_decay_scheduler` wrapping them as ``torch`` ``LambdaLR`` schedulers.
* **One guarded update** -- :func:`optimizer_step` back-propagates a loss, measures (and
  optionally clips) the gradient norm, and steps the optimiser only if the loss *and* the norm
  are finite; otherwise it raises :class:`NonFiniteLossError` with the weights, the optimiser
  state and the schedule untouched.
* **EMA** -- :class:`EMA`, an exponential moving average of a model's weights.
* **Loops** -- :func:`run_steps` drives any step function (one optimiser or several, as in a
  GAN) with a ``tqdm.auto`` progress bar and records the losses in a :class:`History`;
  :func:`fit` is the common case: one model, one optimiser, one loss.
* **Memory** -- :func:`training_memory` adds up what one training step holds: parameters,
  gradients, optimiser state and the activations of the forward pass (measured).

Every loop is bit-for-bit repeatable on the CPU for a fixed seed, because all randomness comes
from the caller's seeded generators.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

StepResult = torch.Tensor | float | Mapping[str, torch.Tensor | float]


# --------------------------------------------------------------------------- schedules


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, *, floor: float = 0.0,
                  peak: float = 1.0) -> float:
    """The learning rate at ``step`` (counted from 0): linear warm-up, then a cosine decay.

    For ``step < warmup_steps`` it is ``peak * (step + 1) / warmup_steps``; after that it falls
    along half a cosine from ``peak`` to ``floor * peak``, reached at ``step = total_steps``:
    ``peak * (floor + (1 - floor) * (1 + cos(pi * progress)) / 2)`` with
    ``progress = (step - warmup_steps) / (total_steps - warmup_steps)``. With ``peak = 1`` it is
    the factor a ``LambdaLR`` multiplies the base learning rate by (:func:`warmup_cosine_scheduler`).
    """
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def linear_decay(step: int, total_steps: int) -> float:
    """The factor ``1 - step / total_steps``, from 1 at step 0 to 0 at ``total_steps`` (never below 0)."""
    return max(0.0, 1.0 - step / max(1, total_steps))


def _check_schedule(total_steps: int, warmup_steps: int = 0, floor: float = 0.0) -> None:
    for name, value in (("total_steps", total_steps), ("warmup_steps", warmup_steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"floor must be in [0, 1], got {floor!r}")


def warmup_cosine_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, *,
                            floor: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` whose factor is :func:`warmup_cosine` (``peak = 1``); step it after each update."""
    _check_schedule(total_steps, warmup_steps, floor)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, total_steps, warmup_steps, floor=floor))


def linear_decay_scheduler(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` whose factor is :func:`linear_decay`; step it after each update."""
    _check_schedule(total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: linear_decay(step, total_steps))


def make_adamw(model: torch.nn.Module, lr: float, weight_decay: float = 0.1,
               betas: tuple[float, float] = (0.9, 0.99)) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices only (biases, norms and gains are not decayed).

    Only parameters that require gradients are included; the matrices form the first
    parameter group, the rest the second, each in ``model.parameters()`` order.
    """
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=betas)


# --------------------------------------------------------------------------- the guarded update


class NonFiniteLossError(FloatingPointError):
    """A loss or its gradient became NaN or infinite; the update it would have made was not applied.

    Attributes: ``name`` (which loss), ``value`` (its value), ``grad_norm`` (the gradient norm,
    or ``None`` when only the loss was checked), ``step`` and ``desc`` (where, once known).
    """

    def __init__(self, name: str, value: float, grad_norm: float | None = None, *,
                 step: int | None = None, desc: str | None = None):
        self.name, self.value, self.grad_norm = name, value, grad_norm
        self.step, self.desc = step, desc
        super().__init__(self._message())

    def _message(self) -> str:
        if math.isfinite(self.value) and self.grad_norm is not None:
            what = f"the gradient norm of {self.name} became {self.grad_norm} (the loss, {self.value:.6g}, is finite)"
        else:
            what = f"{self.name} became {self.value}"
        where = "" if self.step is None else f" at step {self.step}"
        where += "" if self.desc is None else f" of '{self.desc}'"
        return (f"{what}{where}; the update was not applied. Lower the learning rate or check the "
                "data for NaNs.")

    def locate(self, step: int, desc: str) -> NonFiniteLossError:
        """Record where it happened (the loop's step and name) and return ``self``."""
        self.step, self.desc = step, desc
        self.args = (self._message(),)
        return self


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, *,
                   parameters: Iterable[torch.Tensor] | None = None, grad_clip: float | None = None,
                   lr: float | None = None, scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                   name: str = "loss") -> float:
    """One guarded update on the scalar ``loss``; returns the loss as a float.

    Clears the gradients, back-propagates, and measures the total gradient norm of ``parameters``
    (default: the optimiser's), clipping it to ``grad_clip`` when given (``clip_grad_norm_``,
    which returns the norm anyway). The loss and the norm are then read in one host sync. Only
    if both are finite are the learning rate of every parameter group set to ``lr`` (when
    given), the optimiser stepped, and ``scheduler`` stepped. Otherwise the gradients are
    cleared and :class:`NonFiniteLossError` is raised, naming ``name``: the weights, the
    optimiser's state and the schedule are exactly as before the call.
    """
    params = [p for group in optimizer.param_groups for p in group["params"]] if parameters is None \
        else list(parameters)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
    else:
        norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    value, norm_value = torch.stack([loss.detach().reshape(()).double(),
                                     norm.to(loss.device, torch.float64)]).tolist()
    if not (math.isfinite(value) and math.isfinite(norm_value)):
        optimizer.zero_grad(set_to_none=True)
        raise NonFiniteLossError(name, value, norm_value)
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return value


@contextmanager
def restore_modes_on_error(*modules: torch.nn.Module) -> Iterator[None]:
    """On an exception in the block, put every submodule back in the train/eval mode it had."""
    saved = [(m, m.training) for module in modules for m in module.modules()]
    try:
        yield
    except BaseException:
        for m, training in saved:
            m.training = training
        raise


@contextmanager
def training_mode(*modules: torch.nn.Module) -> Iterator[None]:
    """Train mode inside the block, eval mode after it; if the block fails, the modes it began with."""
    with restore_modes_on_error(*modules):
        for module in modules:
            module.train()
        yield
    for module in modules:
        module.eval()


# --------------------------------------------------------------------------- EMA


class EMA:
    """An exponential moving average of a model's weights, kept in a frozen copy ``self.model``.

    Call :meth:`update` after each optimiser step:
    ``w_ema <- decay * w_ema + (1 - decay) * w``. With ``warmup=True`` the decay of the
    ``n``-th update is ``min(decay, (1 + n) / (10 + n))``, so the first averages are not
    dominated by the random initial weights. Buffers are copied, not averaged.
    """

    def __init__(self, model: torch.nn.Module, decay: float, *, warmup: bool = False):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.warmup = decay, warmup
        self.updates = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates)) if self.warmup else self.decay
        for ema_p, p in zip(self.model.parameters(), model.parameters(), strict=True):
            ema_p.lerp_(p.detach(), 1 - decay)
        for ema_b, b in zip(self.model.buffers(), model.buffers(), strict=True):
            ema_b.copy_(b)


# --------------------------------------------------------------------------- loops


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
    """The step's values as floats, reading every tensor in one host sync."""
    items = list(result.items()) if isinstance(result, Mapping) else [("loss", result)]
    tensors = [(i, v.detach().reshape(()).double()) for i, (_, v) in enumerate(items) if isinstance(v, torch.Tensor)]
    values = [float(v) if not isinstance(v, torch.Tensor) else 0.0 for _, v in items]
    if tensors:
        device = tensors[0][1].device
        read = torch.stack([t.to(device) for _, t in tensors]).tolist()
        for (i, _), value in zip(tensors, read, strict=True):
            values[i] = value
    return {key: value for (key, _), value in zip(items, values, strict=True)}


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

    ``step_fn`` does one optimisation step and returns the loss (a tensor or float) or a dict
    of named losses, e.g. ``{"d_loss": ..., "g_loss": ...}``. A step that updates through
    :func:`optimizer_step` is stopped *before* a non-finite loss or gradient reaches the
    weights; every returned value is checked too. Either way :class:`NonFiniteLossError` names
    the step and the loss, and that step records nothing: every key of the history keeps the
    same length.
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 0:
        raise ValueError(f"num_steps must be a non-negative int, got {num_steps!r}")
    history = History() if history is None else history
    start = time.perf_counter()
    offset = len(history.loss)
    bar = tqdm(range(num_steps), desc=desc, disable=not progress, leave=True)
    try:
        for step in bar:
            try:
                values = _as_float_dict(step_fn(step))
            except NonFiniteLossError as err:
                raise err.locate(offset + step, desc) from None
            for key, value in values.items():
                if not math.isfinite(value):
                    raise NonFiniteLossError(key, value, step=offset + step, desc=desc)
            for key, value in values.items():
                history.losses.setdefault(key, []).append(value)
            if step % refresh_every == 0 or step == num_steps - 1:
                bar.set_postfix({k: f"{v:.4f}" for k, v in values.items()}, refresh=False)
    finally:
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
    ema: EMA | None = None,
    desc: str = "training",
    progress: bool = True,
    history: History | None = None,
) -> History:
    """Train ``model`` for ``num_steps`` steps; ``loss_fn(model, step)`` returns the loss.

    ``loss_fn`` fetches its own batch for the step (so the caller controls the data and its
    random generator). Each step is one :func:`optimizer_step` (gradients optionally clipped
    to ``grad_clip`` in norm), then ``scheduler.step()`` and ``ema.update(model)``. The model
    trains in train mode and is left in eval mode; if a step fails, every submodule is put
    back in the mode it had before the call.
    """
    def step_fn(step: int) -> float:
        value = optimizer_step(optimizer, loss_fn(model, step), parameters=model.parameters(),
                               grad_clip=grad_clip, scheduler=scheduler)
        if ema is not None:
            ema.update(model)
        return value

    with training_mode(model):
        return run_steps(step_fn, num_steps, desc=desc, progress=progress, history=history)


# --------------------------------------------------------------------------- memory


def training_memory(model: torch.nn.Module, loss_fn: Callable[[], torch.Tensor], *,
                    optimizer_slots: int = 2) -> dict[str, int]:
    """Bytes one training step of ``model`` holds, by kind (the sum is ``"total"``).

    * ``"parameters"``: the trainable parameters, ``sum(numel * itemsize)``;
    * ``"gradients"``: the same again, one gradient per trainable parameter;
    * ``"optimizer"``: ``optimizer_slots`` tensors like each parameter (Adam and AdamW keep two
      moments: 2; SGD with momentum: 1; plain SGD: 0);
    * ``"activations"``: measured, not estimated -- the peak bytes of the tensors the forward
      pass ``loss_fn()`` creates with gradients on, most of which autograd keeps for the
      backward pass (:func:`aigc_course.attention.peak_memory` with ``grad=True``). It grows
      with the batch size and the sequence length; the other three do not.

    ``loss_fn()`` runs once, without ``backward``, so the model's gradients are not touched.
    The backward pass's own temporaries are not counted: the total is a floor, close to what
    ``torch.cuda.max_memory_allocated`` reports for the same step on a GPU.
    """
    from aigc_course.attention import peak_memory  # attention imports nothing from here

    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise ValueError(f"loss_fn must be a function of no arguments returning the loss, got {loss_fn!r}")
    if isinstance(optimizer_slots, bool) or not isinstance(optimizer_slots, int) or optimizer_slots < 0:
        raise ValueError(f"optimizer_slots must be a non-negative int (Adam: 2, SGD with momentum: 1, "
                         f"SGD: 0), got {optimizer_slots!r}")
    params = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    parts = {"parameters": params, "gradients": params, "optimizer": optimizer_slots * params,
             "activations": peak_memory(loss_fn, grad=True)}
    return {**parts, "total": sum(parts.values())}

"""GAN losses and gradient regularisers (book Sections 3.2.3 and 4.2).

Every loss takes the discriminator's raw *logits* ``(B,)``; ``D(x) = sigmoid(logit)``.
Writing the log-losses with ``softplus`` keeps them finite where ``log D`` would underflow:
``-log sigmoid(t) = softplus(-t)`` and ``-log(1 - sigmoid(t)) = softplus(t)``.

The value function of the minimax game (Eq. 4.2) is

    min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))].

* ``"minimax"``: D ascends V, G *descends* ``E log(1 - D(G(z)))`` -- the saturating loss
  of the original paper, whose gradient vanishes when D confidently rejects the fakes.
* ``"non_saturating"``: same D loss, G ascends ``E log D(G(z))`` instead.
* ``"wgan"``: the Wasserstein critic ``E D(fake) - E D(real)``; needs a gradient penalty.
* ``"hinge"``: ``E relu(1 - D(real)) + E relu(1 + D(fake))`` for D, ``-E D(fake)`` for G.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aigc_course._checks import check_tensor

LOSSES = ("minimax", "non_saturating", "wgan", "hinge")


def _check_kind(kind: str) -> None:
    if kind not in LOSSES:
        raise ValueError(f"loss kind must be one of {LOSSES}, got {kind!r}")


def _check_logits(logits: torch.Tensor, name: str) -> None:
    if not isinstance(logits, torch.Tensor) or logits.ndim != 1 or logits.numel() == 0 \
            or not logits.is_floating_point():
        shape = f"{logits.dtype} {tuple(logits.shape)}" if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"{name} must be a non-empty 1-D tensor of logits (B,) with a float dtype, got {shape}")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    """The loss D minimises, from logits on real ``(B,)`` and fake ``(B',)`` samples.

    For ``"minimax"`` and ``"non_saturating"`` it is ``-V(D, G)`` (Eq. 4.2), the binary
    cross-entropy of calling real samples 1 and fakes 0.
    """
    _check_kind(kind)
    _check_logits(real_logits, "real_logits")
    _check_logits(fake_logits, "fake_logits")
    if kind in ("minimax", "non_saturating"):
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    if kind == "wgan":
        return fake_logits.mean() - real_logits.mean()
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    """The loss G minimises, from D's logits on fakes ``(B,)``.

    ``"minimax"``: ``E log(1 - D(G(z)))`` (saturating); ``"non_saturating"``:
    ``-E log D(G(z))``; ``"wgan"`` and ``"hinge"``: ``-E D(G(z))``.
    """
    _check_kind(kind)
    _check_logits(fake_logits, "fake_logits")
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()  # = mean log(1 - sigmoid(t))
    if kind == "non_saturating":
        return F.softplus(-fake_logits).mean()  # = -mean log sigmoid(t)
    return -fake_logits.mean()


def _input_grad(discriminator, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    out = discriminator(x) if labels is None else discriminator(x, labels)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    # one row per logit: with PacGAN packing, the m packed samples form one input
    return grad.reshape(len(out), -1)


def gradient_penalty(
    discriminator,
    real: torch.Tensor,
    fake: torch.Tensor,
    labels: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty ``E (||grad_x D(x_hat)|| - 1)^2`` at random interpolates ``x_hat``.

    ``real`` and ``fake`` have the same shape ``(B, ...)``; ``x_hat = a real + (1-a) fake``
    with ``a ~ U(0, 1)`` per sample (Gulrajani et al., 2017). Differentiable w.r.t. D's weights.
    """
    check_tensor(real, "real", floating=True)
    check_tensor(fake, "fake", floating=True)
    if real.shape != fake.shape:
        raise ValueError(f"fake must have the shape of real {tuple(real.shape)}, got {tuple(fake.shape)}")
    shape = (len(real),) + (1,) * (real.ndim - 1)
    alpha = torch.rand(shape, generator=generator).to(real.device)
    x_hat = alpha * real.detach() + (1 - alpha) * fake.detach()
    grad = _input_grad(discriminator, x_hat, labels)
    return ((grad.norm(dim=1) - 1.0) ** 2).mean()


def r1_penalty(discriminator, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """R1 penalty ``E ||grad_x D(x)||^2`` on real samples ``(B, ...)`` (Mescheder et al., 2018).

    The trainer adds ``gamma / 2`` times this to D's loss.
    """
    check_tensor(real, "real", floating=True)
    grad = _input_grad(discriminator, real, labels)
    return grad.pow(2).sum(dim=1).mean()

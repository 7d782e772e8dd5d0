"""Chapter 3.2 exercises: the GAN losses and the WGAN-GP gradient penalty.

References: :func:`aigc_course.gan.generator_loss`, :func:`aigc_course.gan.discriminator_loss`
and :func:`aigc_course.gan.gradient_penalty`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aigc_course.exercises.core import Case, Exercise, Variant, compare, register
from aigc_course.gan import Discriminator, discriminator_loss, generator_loss, gradient_penalty


def _randn(gen: torch.Generator, device, *shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=gen).to(device)


def _finite_diagnostic(case: Case, expected, actual) -> str | None:
    if isinstance(actual, torch.Tensor) and actual.numel() == 1 and not torch.isfinite(actual).all():
        return ("the loss is not finite: log(sigmoid(t)) underflows for large |t|. Write the log-losses "
                "with F.softplus: -log sigmoid(t) = softplus(-t) and -log(1 - sigmoid(t)) = softplus(t)")
    return None


# ---------------------------------------------------------------------------- 3.2.1 generator loss


def _ns_reference(fake_logits):
    return generator_loss(fake_logits, "non_saturating")


def _gen_cases(gen: torch.Generator, device) -> list[Case]:
    return [
        Case("random logits (16,)", (_randn(gen, device, 16) * 2,)),
        Case("random logits (5,)", (_randn(gen, device, 5),)),
        Case("D confidently rejects the fakes: logits near -200", (torch.full((4,), -200.0, device=device),)),
        Case("D is fooled: logits near +200", (torch.full((3,), 200.0, device=device),)),
    ]


register(Exercise(
    id="3.2.1",
    title="The non-saturating generator loss",
    function="generator_loss_ns",
    reference=_ns_reference,
    cases=_gen_cases,
    diagnostics=[_finite_diagnostic],
    variants=[
        Variant("this is the saturating minimax loss E log(1 - D(G(z))); the non-saturating loss "
                "is -E log D(G(z))", lambda c: generator_loss(c.args[0], "minimax")),
        Variant("wrong sign: G minimises -E log D(G(z)), i.e. it maximises log D(G(z))",
                lambda c: -_ns_reference(c.args[0])),
        Variant("you summed over the batch; take the mean",
                lambda c: _ns_reference(c.args[0]) * len(c.args[0])),
        Variant("D(G(z)) is sigmoid(logit): apply the sigmoid (or use softplus) before the log",
                lambda c: -c.args[0].mean()),
        Variant("you used the discriminator's target 0 for the fakes; the generator wants D to call its "
                "samples real, target 1: -E log D(G(z)) = softplus(-logit)", lambda c: F.softplus(c.args[0]).mean()),
    ],
    hints=[
        "D(x) = sigmoid(logit). The non-saturating generator loss is -mean(log D(G(z))).",
        "-log(sigmoid(t)) = softplus(-t), and F.softplus stays finite for t = -200 where "
        "torch.log(torch.sigmoid(t)) gives inf.",
        "return F.softplus(-fake_logits).mean()",
    ],
    explanation=(
        "$-\\log D(G(z)) = -\\log\\sigma(t) = \\operatorname{softplus}(-t)$ for the logit $t$. "
        "When D confidently rejects a fake ($t \\ll 0$) its gradient is close to $-1$, not 0: the "
        "generator keeps learning, unlike with the saturating $\\log(1-D(G(z)))$. softplus keeps "
        "the value finite where $\\log\\sigma(t)$ underflows."
    ),
))


# ---------------------------------------------------------------------------- 3.2.2 discriminator loss


def _d_reference(real_logits, fake_logits):
    return discriminator_loss(real_logits, fake_logits, "non_saturating")


def _d_cases(gen: torch.Generator, device) -> list[Case]:
    return [
        Case("random logits, 8 real and 8 fake", (_randn(gen, device, 8) * 2, _randn(gen, device, 8) * 2)),
        Case("4 real and 12 fake samples", (_randn(gen, device, 4) + 1, _randn(gen, device, 12) - 1)),
        Case("confident logits of +-150", (torch.full((3,), 150.0, device=device),
                                           torch.full((3,), -150.0, device=device))),
        Case("a badly wrong D: logits of -+150", (torch.full((2,), -150.0, device=device),
                                                 torch.full((2,), 150.0, device=device))),
    ]


register(Exercise(
    id="3.2.2",
    title="The discriminator loss",
    function="discriminator_loss_bce",
    reference=_d_reference,
    cases=_d_cases,
    diagnostics=[_finite_diagnostic],
    variants=[
        Variant("the labels are swapped: real samples are labelled 1 and fakes 0",
                lambda c: _d_reference(c.args[1], c.args[0])),
        Variant("missing the fake term -E log(1 - D(G(z)))", lambda c: F.softplus(-c.args[0]).mean()),
        Variant("missing the real term -E log D(x)", lambda c: F.softplus(c.args[1]).mean()),
        Variant("this is the Wasserstein critic loss E D(fake) - E D(real), not the cross-entropy",
                lambda c: c.args[1].mean() - c.args[0].mean()),
        Variant("you averaged over real and fake samples together; the loss is the mean over the real "
                "batch plus the mean over the fake batch (their sizes can differ)",
                lambda c: torch.cat([F.softplus(-c.args[0]), F.softplus(c.args[1])]).mean()),
        Variant("you averaged the two terms; the loss is their sum, -E log D(x) - E log(1 - D(G(z)))",
                lambda c: _d_reference(*c.args) / 2),
        Variant("wrong sign: D *minimises* the cross-entropy -E log D(x) - E log(1 - D(G(z)))",
                lambda c: -_d_reference(*c.args)),
    ],
    hints=[
        "D minimises -V(D, G): the binary cross-entropy of calling real samples 1 and fakes 0, "
        "i.e. -E log D(x) - E log(1 - D(G(z))).",
        "-log sigmoid(t) = softplus(-t) and -log(1 - sigmoid(t)) = softplus(t); average each term "
        "over its own batch.",
        "return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()",
    ],
    explanation=(
        "$-\\log D(x) = \\operatorname{softplus}(-t)$ and $-\\log(1-D(G(z))) = "
        "\\operatorname{softplus}(t)$; each expectation is a mean over its own batch, which "
        "matters when the real and fake batches differ in size. This equals "
        "`F.binary_cross_entropy_with_logits` with targets 1 and 0, averaged per batch."
    ),
))


# ---------------------------------------------------------------------------- 3.2.3 gradient penalty


def _gp_cases(gen: torch.Generator, device) -> list[Case]:
    cases = []
    for name, batch, dim in (("2-D points, batch 8", 8, 2), ("6-D points, batch 5", 5, 6), ("batch of 1", 1, 3)):
        seed = int(torch.randint(2**31 - 1, (1,), generator=gen))
        with torch.random.fork_rng(devices=[]):  # seed the critic's weights, leave the global RNG alone
            torch.manual_seed(seed)
            critic = Discriminator(in_dim=dim, hidden=16, depth=2).to(device)
        real, fake = _randn(gen, device, batch, dim), _randn(gen, device, batch, dim) * 2
        alpha_seed = int(torch.randint(2**31 - 1, (1,), generator=gen))
        alpha = torch.rand((batch, 1), generator=torch.Generator().manual_seed(alpha_seed)).to(device)
        expected = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(alpha_seed))
        cases.append(Case(name, (critic, real, fake, alpha), expected=expected))
    return cases


def _gp_variant(kind: str):
    def wrong(case: Case):
        critic, real, fake, alpha = case.args
        x = real if kind == "at_real" else alpha * real + (1 - alpha) * fake
        if kind == "alpha_at_fake":
            x = alpha * fake + (1 - alpha) * real
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
        norms = grad.reshape(len(x), -1).norm(dim=1)
        if kind == "squared":
            return ((norms**2 - 1) ** 2).mean()
        if kind == "one_sided":
            return (F.relu(norms - 1) ** 2).mean()
        if kind == "batch_norm":
            return (grad.norm() - 1) ** 2
        if kind == "no_square":
            return (norms - 1).abs().mean()
        if kind == "summed":
            return ((norms - 1) ** 2).sum()
        if kind == "no_minus_one":
            return (norms**2).mean()
        return ((norms - 1) ** 2).mean()

    return wrong


def _gp_differentiable(case: Case, expected, actual) -> str | None:
    critic = case.args[0]
    params = [p for p in critic.parameters() if p.requires_grad]
    if not actual.requires_grad:
        return ("the penalty is not differentiable with respect to the critic's weights: call "
                "torch.autograd.grad(..., create_graph=True) and do not detach the result")
    want = torch.autograd.grad(expected, params, retain_graph=True, allow_unused=True)
    got = torch.autograd.grad(actual, params, retain_graph=True, allow_unused=True)
    for p_want, p_got in zip(want, got, strict=True):
        if p_want is None:
            continue
        if p_got is None:
            return ("the penalty's gradient does not reach every critic weight: compute the "
                    "gradient with create_graph=True")
        problem = compare(p_want, p_got, 1e-4, 1e-3, "the penalty's gradient w.r.t. the critic")
        if problem:
            return problem + "\n  Use torch.autograd.grad(..., create_graph=True) so the penalty trains the critic."
    return None


register(Exercise(
    id="3.2.3",
    title="The WGAN-GP gradient penalty",
    function="gradient_penalty_gp",
    reference=None,
    cases=_gp_cases,
    extra_checks=[_gp_differentiable],
    variants=[
        Variant("you evaluated the gradient at the real samples; use the interpolates "
                "x̂ = α·real + (1−α)·fake", _gp_variant("at_real")),
        Variant("penalise (‖∇D(x̂)‖ − 1)², with the norm itself, not the squared norm",
                _gp_variant("squared")),
        Variant("one-sided penalty: WGAN-GP penalises gradient norms below 1 too, (‖∇‖ − 1)²",
                _gp_variant("one_sided")),
        Variant("take the gradient norm per sample (flatten to (B, -1), norm over dim=1), not over "
                "the whole batch", _gp_variant("batch_norm")),
        Variant("square the deviation: the penalty is (‖∇‖ − 1)², not |‖∇‖ − 1|", _gp_variant("no_square")),
        Variant("α weighs the real sample: x̂ = α·real + (1−α)·fake; you swapped real and fake",
                _gp_variant("alpha_at_fake")),
        Variant("you summed the per-sample penalties; average them over the batch", _gp_variant("summed")),
        Variant("the penalty pulls the gradient norm towards 1: (‖∇‖ − 1)², not ‖∇‖²", _gp_variant("no_minus_one")),
    ],
    hints=[
        "Mix each real sample with its fake: x̂ = α·real + (1−α)·fake. Take the gradient of the "
        "critic's output at x̂ with respect to x̂, one gradient row per sample, and penalise "
        "(norm − 1)², averaged over the batch.",
        "x_hat = (...).detach().requires_grad_(True); torch.autograd.grad(critic(x_hat).sum(), x_hat, "
        "create_graph=True) gives the per-sample input gradients (the sum separates the samples); "
        "create_graph keeps the penalty differentiable for the critic's optimizer.",
        "x_hat = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(True)\n"
        "(grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)\n"
        "return ((grad.reshape(len(x_hat), -1).norm(dim=1) - 1) ** 2).mean()",
    ],
    explanation=(
        "WGAN-GP (Gulrajani et al., 2017) asks the critic to be 1-Lipschitz by pushing the norm of "
        "its input gradient towards 1 on random points between real and fake samples. Summing the "
        "critic's outputs before `autograd.grad` gives each sample's own gradient, because sample "
        "$i$'s output depends only on input $i$. `create_graph=True` makes the penalty a "
        "differentiable function of the critic's weights, so the critic's optimizer can reduce it."
    ),
    atol=1e-5,
    rtol=1e-4,
))

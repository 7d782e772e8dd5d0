"""GAN losses, regularisers, the optimal-discriminator identity, training and shipped checkpoints."""

import math

import pytest
import torch

from aigc_course import pretrained
from aigc_course.data import ring_gaussians
from aigc_course.gan import (
    LOSSES,
    ConditionalGANPipeline,
    Discriminator,
    GANConfig,
    GANSampler,
    GANTrainer,
    Generator,
    ImageDiscriminator,
    ImageGenerator,
    discriminator_loss,
    gaussian_pdf,
    generator_loss,
    gradient_penalty,
    js_divergence,
    optimal_discriminator,
    r1_penalty,
    value_function,
)
from aigc_course.gan.recipes import (
    BEST_ABLATION,
    RECIPES,
    SHORT_STEPS,
    ablation_settings,
    evaluate_toy,
    toy_sampler,
    train_toy_gan,
)
from aigc_course.gan.rejection import fit_rejection_critic, rejection_sample
from aigc_course.metrics.modes import grid_coverage, ring_coverage

LOG3 = math.log(3.0)  # sigmoid(log 3) = 0.75

# ----------------------------------------------------------------------------- losses


def test_bce_discriminator_loss_by_hand():
    real = torch.tensor([LOG3, LOG3])  # D(real) = 0.75
    fake = torch.tensor([-LOG3])  # D(fake) = 0.25
    expected = -math.log(0.75) - math.log(1 - 0.25)
    for kind in ("minimax", "non_saturating"):
        assert discriminator_loss(real, fake, kind).item() == pytest.approx(expected, rel=1e-6)


def test_generator_losses_by_hand():
    fake = torch.tensor([-LOG3, LOG3])  # D(fake) = 0.25 and 0.75
    saturating = (math.log(1 - 0.25) + math.log(1 - 0.75)) / 2
    non_saturating = -(math.log(0.25) + math.log(0.75)) / 2
    assert generator_loss(fake, "minimax").item() == pytest.approx(saturating, rel=1e-6)
    assert generator_loss(fake, "non_saturating").item() == pytest.approx(non_saturating, rel=1e-6)
    assert generator_loss(fake, "wgan").item() == pytest.approx(0.0, abs=1e-7)
    assert generator_loss(torch.tensor([1.0, 2.0]), "hinge").item() == pytest.approx(-1.5)


def test_wgan_and_hinge_discriminator_losses_by_hand():
    real = torch.tensor([0.5, 2.0])
    fake = torch.tensor([-2.0, 0.5])
    assert discriminator_loss(real, fake, "wgan").item() == pytest.approx(-0.75 - 1.25)
    # relu(1 - real) = [0.5, 0], relu(1 + fake) = [0, 1.5]
    assert discriminator_loss(real, fake, "hinge").item() == pytest.approx(0.25 + 0.75)


def test_saturating_gradient_vanishes_where_non_saturating_does_not():
    t = torch.tensor([-8.0], requires_grad=True)  # D(G(z)) = 3e-4: D rejects the fake
    (g_sat,) = torch.autograd.grad(generator_loss(t, "minimax"), t)
    (g_ns,) = torch.autograd.grad(generator_loss(t, "non_saturating"), t)
    d = torch.sigmoid(t).item()
    assert g_sat.item() == pytest.approx(-d, rel=1e-5)  # d/dt log(1 - D) = -D
    assert g_ns.item() == pytest.approx(-(1 - d), rel=1e-5)  # d/dt -log D = -(1 - D)
    assert abs(g_ns.item()) > 1000 * abs(g_sat.item())


def test_losses_are_finite_for_extreme_logits():
    big = torch.tensor([-200.0, 200.0])
    for kind in LOSSES:
        assert torch.isfinite(discriminator_loss(big, big, kind))
        assert torch.isfinite(generator_loss(big, kind))


def test_bad_loss_inputs_raise():
    with pytest.raises(ValueError, match="loss kind"):
        generator_loss(torch.zeros(3), "lsgan")
    with pytest.raises(ValueError, match="1-D tensor of logits"):
        discriminator_loss(torch.zeros(3, 1), torch.zeros(3), "hinge")


# ----------------------------------------------------------------------------- penalties


class Quadratic(torch.nn.Module):
    """D(x) = a * sum(x^2) / 2, so grad_x D = a x."""

    def __init__(self, a: float):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(a))

    def forward(self, x):
        return 0.5 * self.a * x.pow(2).sum(dim=1)


def test_r1_penalty_matches_known_gradient():
    x = torch.tensor([[1.0, 2.0], [0.0, -3.0]])
    d = Quadratic(2.0)
    pen = r1_penalty(d, x)
    assert pen.item() == pytest.approx((4 * 5 + 4 * 9) / 2)  # mean ||2x||^2
    (g,) = torch.autograd.grad(pen, d.a)  # d/da mean a^2 ||x||^2 = 2a mean ||x||^2
    assert g.item() == pytest.approx(2 * 2.0 * (5 + 9) / 2)


def test_gradient_penalty_matches_autograd_on_known_function():
    torch.manual_seed(0)
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    d = Quadratic(1.5)
    gen = torch.Generator().manual_seed(3)
    pen = gradient_penalty(d, real, fake, generator=gen)
    alpha = torch.rand(6, 1, generator=torch.Generator().manual_seed(3))
    x_hat = alpha * real + (1 - alpha) * fake
    expected = ((1.5 * x_hat).norm(dim=1) - 1).pow(2).mean()
    assert pen.item() == pytest.approx(expected.item(), rel=1e-6)
    # on a linear critic with unit-norm weights the penalty is exactly zero
    lin = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.6, 0.8]]))
    assert gradient_penalty(lambda x: lin(x).squeeze(1), real, fake).item() == pytest.approx(0.0, abs=1e-10)


def test_gradient_penalty_shapes_must_match():
    with pytest.raises(ValueError, match="fake must have the shape of real"):
        gradient_penalty(Quadratic(1.0), torch.zeros(4, 2), torch.zeros(3, 2))


# ----------------------------------------------------------------------------- theory (Eq. 4.2)


def _grid():
    x = torch.linspace(-12, 12, 48001, dtype=torch.float64)
    return x, float(x[1] - x[0])


def test_optimal_discriminator_identity():
    x, dx = _grid()
    p, q = gaussian_pdf(x, 0.0, 1.0), gaussian_pdf(x, 1.5, 0.7)
    d_star = optimal_discriminator(p, q)
    v_star = value_function(d_star, p, q, dx)
    assert v_star.item() == pytest.approx(-math.log(4) + 2 * js_divergence(p, q, dx).item(), abs=1e-9)
    # D* beats every perturbed discriminator
    for eps in (0.05, -0.05):
        other = (d_star + eps * torch.sin(x)).clamp(1e-6, 1 - 1e-6)
        assert value_function(other, p, q, dx) < v_star


def test_jsd_bounds():
    x, dx = _grid()
    p = gaussian_pdf(x, 0.0, 1.0)
    assert js_divergence(p, p, dx).item() == pytest.approx(0.0, abs=1e-12)
    far = gaussian_pdf(x, 10.0, 0.3)
    near_disjoint = gaussian_pdf(x, -10.0, 0.3)
    assert js_divergence(far, near_disjoint, dx).item() == pytest.approx(math.log(2), abs=1e-6)
    # identical densities: D* = 1/2 and V = -log 4
    assert value_function(optimal_discriminator(p, p), p, p, dx).item() == pytest.approx(-math.log(4), abs=1e-9)


# ----------------------------------------------------------------------------- models and training


def test_shapes_and_packing():
    g, d = Generator(latent_dim=4), Discriminator(pack=4, minibatch_std=True, spectral_norm=True)
    x = g(torch.randn(16, 4))
    assert x.shape == (16, 2)
    assert d(x).shape == (4,)
    with pytest.raises(ValueError, match="multiple of pack"):
        d(torch.zeros(6, 2))
    with pytest.raises(ValueError, match="z must have shape"):
        g(torch.zeros(3, 5))


def test_conditional_models_check_labels():
    g, d = ImageGenerator(latent_dim=8, hidden=16), ImageDiscriminator(hidden=16)
    y = torch.tensor([0, 9, 3])
    img = g(torch.randn(3, 8), y)
    assert img.shape == (3, 1, 8, 8) and img.min() >= 0 and img.max() <= 1
    assert d(img, y).shape == (3,)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        g(torch.randn(3, 8), torch.tensor([0, 10, 1]))
    with pytest.raises(ValueError, match="x must have shape"):
        d(torch.zeros(3, 1, 7, 7), y)


def _trainer(seed, **cfg):
    torch.manual_seed(seed)
    g, d = Generator(latent_dim=4, hidden=32, depth=2), Discriminator(hidden=32, depth=2)
    config = GANConfig(steps=5, batch_size=32, **cfg)
    return GANTrainer(g, d, lambda b, r: ring_gaussians(b, generator=r), config, seed=seed)


def test_training_is_repeatable_and_counts_d_steps():
    a, b = _trainer(1, d_steps=3, loss="wgan", gp_weight=1.0), _trainer(1, d_steps=3, loss="wgan", gp_weight=1.0)
    ha, hb = a.train(progress=False), b.train(progress=False)
    assert ha["d_loss"] == hb["d_loss"] and len(ha["g_loss"]) == 5
    for pa, pb in zip(a.G.parameters(), b.G.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert a.opt_d.state[next(iter(a.D.parameters()))]["step"] == 15
    assert a.opt_g.state[next(iter(a.G.parameters()))]["step"] == 5


@pytest.mark.parametrize("kind", LOSSES)
def test_every_loss_trains_with_regularisers(kind):
    t = _trainer(0, loss=kind, r1_weight=1.0, ema_decay=0.9, lr_decay=True)
    h = t.train(progress=False)
    assert all(math.isfinite(v) for v in h["d_loss"] + h["g_loss"])
    assert t.sampler_net is t.ema
    assert t.opt_g.param_groups[0]["lr"] == pytest.approx(0.0)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="loss must be one of"):
        GANConfig(loss="lsgan")
    with pytest.raises(ValueError, match="lr_g must be a finite number > 0"):
        GANConfig(lr_g=0.0)


def test_sampler_rejects_bad_n_and_is_seeded():
    s = GANSampler(Generator(latent_dim=3))
    assert torch.equal(s.sample(7, seed=1), s.sample(7, seed=1))
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="n must be a positive int"):
            s.sample(bad)


def test_conditional_pipeline_rejects_bad_labels():
    pipe = ConditionalGANPipeline(ImageGenerator(latent_dim=8, hidden=16))
    assert pipe([1, 2], seed=0).shape == (2, 1, 8, 8)
    assert pipe(4, seed=0).shape == (1, 1, 8, 8)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        pipe([3, -1])
    with pytest.raises(ValueError, match="1-D"):
        pipe(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="integers"):
        pipe([0.5, 1.0])


class _Identity(torch.nn.Module):
    latent_dim = 2

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, z):
        return z + self.dummy


class _RejectLeft(torch.nn.Module):
    """A 'discriminator' whose logit is 0 on the right half-plane and -30 on the left."""

    pack = 1

    def forward(self, x):
        return torch.where(x[:, 0] < 0, -30.0, 0.0)


def test_rejection_sampling_keeps_what_d_accepts():
    x, rate = rejection_sample(_Identity(), _RejectLeft(), 4000, torch.Generator().manual_seed(0))
    assert x.shape == (4000, 2)
    assert (x[:, 0] >= 0).all()
    assert rate == pytest.approx(0.5, abs=0.03)
    sampler = GANSampler(_Identity(), discriminator=_RejectLeft(), rejection=True)
    assert (sampler.sample(100, seed=0)[:, 0] >= 0).all()
    assert (sampler.sample(2000, seed=0, rejection=False)[:, 0] < 0).any()
    with pytest.raises(ValueError, match="needs a discriminator"):
        GANSampler(_Identity(), rejection=True)


def test_rejection_quantile_bound_clips_acceptance_at_one():
    # quantile 0.9 puts the bound at logit 0: every right-half sample has probability 1
    x, rate = rejection_sample(_Identity(), _RejectLeft(), 4000, torch.Generator().manual_seed(0),
                               burn_in=1000, quantile=0.9)
    assert (x[:, 0] >= 0).all()
    assert rate == pytest.approx(0.5, abs=0.03)
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="quantile must be a finite number in"):
            rejection_sample(_Identity(), _RejectLeft(), 10, quantile=bad)
        with pytest.raises(ValueError, match=r"quantile must be a finite number in \(0, 1\]"):
            GANSampler(_Identity(), discriminator=_RejectLeft(), rejection=True, quantile=bad)


def test_fourier_feature_discriminator_shapes_state_and_errors():
    D = Discriminator(hidden=16, depth=2, fourier_features=8, fourier_scale=2.0)
    assert D(torch.randn(6, 2)).shape == (6,)
    assert D.fourier.shape == (2, 8) and "fourier" in D.state_dict()
    again = Discriminator(**D.config)
    again.load_state_dict(D.state_dict())
    x = torch.randn(5, 2)
    assert torch.equal(D(x), again(x))
    packed = Discriminator(hidden=16, depth=1, pack=2, fourier_features=4)
    assert packed(torch.randn(6, 2)).shape == (3,)
    with pytest.raises(ValueError, match="fourier_features must be a non-negative int"):
        Discriminator(fourier_features=-1)
    with pytest.raises(ValueError, match="fourier_scale must be a finite number > 0"):
        Discriminator(fourier_features=4, fourier_scale=0.0)


class _Blob(torch.nn.Module):
    """A 'generator' drawing a wide Gaussian blob N(0, 1.5^2 I) over the whole ring."""

    latent_dim = 2
    config = {"out_dim": 2}

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(1.5))

    def forward(self, z):
        return z * self.scale


def test_rejection_critic_turns_a_blob_into_the_ring():
    # Almost no blob sample is high-quality; the fitted critic's density ratio must recover the
    # ring: every mode, most samples high-quality, an even spread over the modes.
    G = _Blob()
    critic, history = fit_rejection_critic(G, lambda b, rng: ring_gaussians(b, generator=rng), steps=300,
                                           batch_size=256, seed=0, progress=False)
    assert len(history.loss) == 300 and history.loss[-1] < 0.5 * history.loss[0]
    assert ring_coverage(GANSampler(G).sample(2000, seed=0)).high_quality < 0.02
    kept = ring_coverage(GANSampler(G, discriminator=critic, rejection=True, quantile=0.999).sample(500, seed=0))
    assert kept.modes_captured == 8 and kept.high_quality > 0.6 and kept.reverse_kl < 0.1
    with pytest.raises(ValueError, match="steps must be a positive int"):
        fit_rejection_critic(G, lambda b, rng: ring_gaussians(b, generator=rng), steps=0)


def test_recipes_train_and_validate_names():
    trainer = train_toy_gan("grid", "best", seed=0, steps=3, progress=False, batch_size=64)
    assert len(trainer.history["g_loss"]) == 3
    cov = evaluate_toy(toy_sampler(trainer, rejection=True), "grid")
    assert cov.num_modes == 25
    with pytest.raises(ValueError, match="dataset must be one of"):
        train_toy_gan("spiral", "best", steps=1, progress=False)
    with pytest.raises(ValueError, match="recipe must be one of"):
        train_toy_gan("ring", "magic", steps=1, progress=False)


def test_best_recipe_samples_with_its_generator_and_ablates_one_trick_at_a_time():
    best = RECIPES["best"]
    assert not best.rejection and best.critic is not None  # rejection is an option, not the default
    assert best.settings().r1_weight > 0 and best.settings().lr_decay
    assert "R1 penalty on real data" in best.describe() and "optional discriminator rejection" in best.describe()
    full, short = list(BEST_ABLATION)[:2]
    assert BEST_ABLATION[full] == {}
    for dataset in ("ring", "grid"):
        assert ablation_settings(short, dataset) == {"steps": SHORT_STEPS[dataset]}
        assert SHORT_STEPS[dataset] * 8 == RECIPES["best"].settings(dataset).steps  # the page says 8x
    for label in BEST_ABLATION:
        changes = {k: v for k, v in ablation_settings(label, "ring").items() if k != "steps"}
        trainer = train_toy_gan("ring", "best", seed=0, steps=2, progress=False, batch_size=32, **changes)
        for key, value in changes.items():
            assert getattr(trainer.config, key) == value, label
    with pytest.raises(ValueError, match="label must be one of"):
        ablation_settings("without everything", "ring")


# ----------------------------------------------------------------------------- shipped checkpoints


# floors a little below what the shipped generators score alone and with rejection
# (benchmarks/bench_mode_coverage.py: 5 sampling seeds of 2,500 samples; ring 8 modes, 97.4% HQ,
# reverse KL 0.002, 96.0% HQ with rejection; grid 25 modes, 96.5%, 0.005, 89.5% with rejection)
@pytest.mark.parametrize("name, coverage, modes, min_hq, max_kl, min_hq_kept", [
    ("ring-gan", ring_coverage, 8, 0.95, 0.02, 0.85),
    ("grid-gan", grid_coverage, 25, 0.95, 0.03, 0.85),
])
def test_shipped_2d_gans(name, coverage, modes, min_hq, max_kl, min_hq_kept):
    sampler = pretrained.load(name, device="cpu")
    assert sampler.rejection is False  # sample() is the generator alone unless asked otherwise
    x = sampler.sample(2500, seed=0)
    assert x.shape == (2500, 2)
    assert torch.equal(x, sampler.sample(2500, seed=0))
    cov = coverage(x)
    assert cov.modes_captured >= modes and cov.high_quality >= min_hq and cov.reverse_kl <= max_kl
    # rejection through the shipped critic works, but against a generator this close to the data it
    # does not raise the share of good samples (Chapter 3.2.3)
    kept = coverage(sampler.sample(2500, seed=0, rejection=True))
    assert kept.modes_captured == kept.num_modes and kept.high_quality >= min_hq_kept
    assert kept.high_quality < cov.high_quality + 0.005 and 0 < sampler.acceptance_rate < 1
    with pytest.raises(ValueError, match="n must be a positive int"):
        sampler.sample(0)


def test_shipped_digits_cgan():
    pipe = pretrained.load("digits-cgan", device="cpu")
    labels = torch.arange(10).repeat(5)
    images = pipe(labels, seed=0)
    assert images.shape == (50, 1, 8, 8)
    assert images.min() >= 0 and images.max() <= 1
    assert torch.equal(images, pipe(labels, seed=0))
    with pytest.raises(ValueError, match="labels must lie"):
        pipe([10])


def test_shipped_digits_cgan_draws_the_requested_class():
    from aigc_course.metrics.digits import classifier_accuracy

    pipe = pretrained.load("digits-cgan", device="cpu")
    labels = torch.arange(10).repeat(100)
    assert classifier_accuracy(pipe(labels, seed=3).cpu(), labels) >= 0.85


def test_the_conditional_pipeline_returns_images_without_an_autograd_graph():
    pipe = pretrained.load("digits-cgan")
    images = pipe([0, 1, 2], seed=0)
    assert not images.requires_grad and images.grad_fn is None

"""The noise schedules and the forward process, checked against diffusers' DDPMScheduler."""

from __future__ import annotations

import pytest
import torch

from aigc_course.diffusion import NoiseSchedule, beta_schedule
from aigc_course.diffusion.schedule import noise_from_velocity

diffusers = pytest.importorskip("diffusers")

DIFFUSERS_NAME = {"linear": "linear", "cosine": "squaredcos_cap_v2"}


def reference_ddpm(name: str, timesteps: int):
    # Constructed locally from its config: nothing is downloaded.
    return diffusers.DDPMScheduler(
        num_train_timesteps=timesteps, beta_schedule=DIFFUSERS_NAME[name], clip_sample=False,
        variance_type="fixed_small",
    )


@pytest.mark.parametrize("name,timesteps", [("linear", 1000), ("cosine", 1000), ("cosine", 200)])
def test_betas_and_alphas_cumprod_match_diffusers(name, timesteps):
    ours = NoiseSchedule(name, timesteps)
    ref = reference_ddpm(name, timesteps)
    assert ours.betas.dtype == torch.float32 and ours.betas.shape == (timesteps,)
    torch.testing.assert_close(ours.betas, ref.betas, atol=1e-6, rtol=0)
    torch.testing.assert_close(ours.alphas_cumprod, ref.alphas_cumprod, atol=1e-6, rtol=0)


def test_linear_schedule_endpoints_and_cosine_cap():
    betas = beta_schedule("linear", 1000)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)
    cos = beta_schedule("cosine", 1000)
    assert cos.max().item() == pytest.approx(0.999) and (cos > 0).all()
    # the total noise of the linear schedule does not depend on T (betas are rescaled by 1000/T)
    ab_short = torch.cumprod(1 - beta_schedule("linear", 250).double(), 0)[-1]
    ab_long = torch.cumprod(1 - beta_schedule("linear", 1000).double(), 0)[-1]
    assert abs(ab_short.log() - ab_long.log()) / abs(ab_long.log()) < 0.03


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_posterior_variance_matches_diffusers(name):
    ours = NoiseSchedule(name, 1000)
    ref = reference_ddpm(name, 1000)
    ref.set_timesteps(1000)
    x = torch.zeros(1)
    for t in [0, 1, 2, 10, 250, 500, 998, 999]:
        _, variance = ours.posterior(x, x, t)
        torch.testing.assert_close(variance, ref._get_variance(t), atol=1e-6, rtol=0)


def test_q_sample_matches_add_noise_and_has_the_right_statistics():
    ours = NoiseSchedule("linear", 1000)
    ref = reference_ddpm("linear", 1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(8, 1, 8, 8, generator=g) * 2 - 1
    noise = torch.randn(8, 1, 8, 8, generator=g)
    t = torch.tensor([0, 1, 50, 100, 400, 700, 998, 999])
    torch.testing.assert_close(ours.q_sample(x0, t, noise), ref.add_noise(x0, noise, t), atol=1e-6, rtol=0)

    # Monte Carlo: x_t | x_0 has mean sqrt(ab) x_0 and variance 1 - ab (eq. 4.4.2)
    n = 200_000
    x0 = torch.full((n,), 0.7)
    for step in [10, 300, 900]:
        xt = ours.q_sample(x0, step, torch.randn(n, generator=g))
        ab = ours.alphas_cumprod[step].item()
        assert xt.mean().item() == pytest.approx(ab**0.5 * 0.7, abs=0.01)
        assert xt.var().item() == pytest.approx(1 - ab, abs=0.01)


def test_closed_form_equals_iterated_steps_in_distribution():
    ours = NoiseSchedule("cosine", 100)
    g = torch.Generator().manual_seed(1)
    n, t = 100_000, 60
    x = torch.full((n,), -0.5)
    for s in range(t + 1):
        x = ours.q_step(x, s, torch.randn(n, generator=g))
    ab = ours.alphas_cumprod[t].item()
    assert x.mean().item() == pytest.approx(ab**0.5 * -0.5, abs=0.01)
    assert x.var().item() == pytest.approx(1 - ab, abs=0.01)


def test_posterior_mean_is_the_bayes_mean():
    # q(x_{t-1} | x_t, x_0): draw (x_{t-1}, x_t) pairs from the forward process for one x_0, keep
    # the pairs whose x_t falls in a thin bin, and compare E[x_{t-1}] with the closed form.
    ours = NoiseSchedule("linear", 1000)
    g = torch.Generator().manual_seed(2)
    n, t, x0 = 2_000_000, 300, torch.tensor(0.4)
    x_prev = ours.q_sample(x0.expand(n), t - 1, torch.randn(n, generator=g))
    x_t = ours.q_step(x_prev, t, torch.randn(n, generator=g))
    centre = 0.1
    keep = (x_t - centre).abs() < 0.01
    mean, variance = ours.posterior(x0, torch.tensor(centre), t)
    assert x_prev[keep].mean().item() == pytest.approx(mean.item(), abs=0.01)
    assert x_prev[keep].var().item() == pytest.approx(variance.item(), rel=0.05)


def test_predict_x0_inverts_q_sample():
    ours = NoiseSchedule("linear", 1000)
    x0, eps = torch.randn(4, 3), torch.randn(4, 3)
    t = torch.tensor([0, 100, 500, 900])
    torch.testing.assert_close(ours.predict_x0(ours.q_sample(x0, t, eps), t, eps), x0, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_velocity_matches_get_velocity_and_turns_back_into_the_noise(name):
    ours, ref = NoiseSchedule(name, 1000), reference_ddpm(name, 1000)
    x0, eps = torch.randn(4, 2, 3, 3), torch.randn(4, 2, 3, 3)
    t = torch.tensor([0, 250, 700, 999])
    v = ours.velocity(x0, t, eps)
    torch.testing.assert_close(v, ref.get_velocity(x0, eps, t), atol=1e-6, rtol=1e-5)
    xt = ours.q_sample(x0, t, eps)
    torch.testing.assert_close(noise_from_velocity(ours.alphas_cumprod, xt, t, v), eps, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 999\]"):
        noise_from_velocity(ours.alphas_cumprod, xt, torch.tensor([0, 1, 2, 1000]), v)
    with pytest.raises(ValueError, match="noise must have the shape of x0"):
        ours.velocity(x0, t, eps[:2])


def test_signal_to_noise_falls_with_t():
    for name in ["linear", "cosine"]:
        snr = NoiseSchedule(name, 1000).signal_to_noise()
        assert (snr[1:] < snr[:-1]).all()


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match=r"name must be one of \('linear', 'cosine'\)"):
        beta_schedule("quadratic", 1000)
    with pytest.raises(ValueError, match="timesteps"):
        beta_schedule("linear", 0)
    s = NoiseSchedule("linear", 1000)
    x = torch.zeros(2, 2)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 999\]"):
        s.q_sample(x, torch.tensor([0, 1000]), x)
    with pytest.raises(ValueError, match=r"t must lie"):
        s.q_sample(x, -1, x)
    with pytest.raises(ValueError, match="integer"):
        s.q_sample(x, torch.tensor([0.5, 1.0]), x)
    with pytest.raises(ValueError, match="noise"):
        s.q_sample(x, 3, torch.zeros(3))
    with pytest.raises(ValueError, match="prev_t"):
        s.posterior(x, x, 5, prev_t=5)


@pytest.mark.parametrize("timesteps", [2, 10, 20])
def test_linear_schedule_with_too_few_steps_raises_instead_of_giving_nan(timesteps):
    # the last linear beta is 20 / T: T <= 20 takes a square root of 1 - beta <= 0
    with pytest.raises(ValueError, match=rf"timesteps={timesteps} in torch.float32 has betas .* outside \(0, 1\).*timesteps >= 21"):
        beta_schedule("linear", timesteps)
    with pytest.raises(ValueError, match="outside"):
        NoiseSchedule("linear", timesteps)


@pytest.mark.parametrize("name,timesteps", [("linear", 1), ("linear", 21), ("cosine", 1), ("cosine", 2), ("cosine", 5)])
def test_every_accepted_schedule_is_finite_and_in_range(name, timesteps):
    s = NoiseSchedule(name, timesteps)
    assert ((s.betas > 0) & (s.betas < 1)).all()
    assert ((s.alphas_cumprod > 0) & (s.alphas_cumprod < 1)).all()
    x0, noise = torch.ones(3, 2), torch.ones(3, 2)
    assert torch.isfinite(s.q_sample(x0, timesteps - 1, noise)).all()
    assert torch.isfinite(s.predict_x0(x0, timesteps - 1, noise)).all()


def test_alpha_bar_underflow_in_a_narrow_dtype_raises():
    with pytest.raises(ValueError, match="underflows"):
        NoiseSchedule("cosine", 1000, dtype=torch.float16)
    with pytest.raises(ValueError, match="dtype"):
        NoiseSchedule("linear", 100, dtype=torch.int64)


@pytest.mark.parametrize("bad", [True, 2.0, "100", None, -5])
def test_timesteps_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="timesteps must be a positive int"):
        beta_schedule("cosine", bad)

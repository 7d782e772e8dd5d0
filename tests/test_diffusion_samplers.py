"""DDPM and DDIM steps against diffusers, guidance, the sampling loop's determinism and errors."""

from __future__ import annotations

import pytest
import torch

from aigc_course.diffusion import (
    MLPDenoiser,
    NoiseSchedule,
    classifier_free_guidance,
    ddim_step,
    ddpm_step,
    inference_timesteps,
    predict_noise,
    sample,
)

diffusers = pytest.importorskip("diffusers")

DIFFUSERS_NAME = {"linear": "linear", "cosine": "squaredcos_cap_v2"}


def make_ref(cls, name: str, steps: int, timesteps: int = 1000):
    ref = cls(num_train_timesteps=timesteps, beta_schedule=DIFFUSERS_NAME[name], clip_sample=False)
    ref.set_timesteps(steps)
    return ref


@pytest.mark.parametrize("steps", [1, 3, 7, 10, 20, 50, 100, 1000])
def test_leading_spacing_matches_diffusers(steps):
    ref = make_ref(diffusers.DDIMScheduler, "linear", steps)
    assert inference_timesteps(1000, steps).tolist() == ref.timesteps.tolist()
    ref = make_ref(diffusers.DDPMScheduler, "linear", steps)
    assert inference_timesteps(1000, steps).tolist() == ref.timesteps.tolist()


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("steps", [1000, 50, 7])
def test_ddpm_step_matches_diffusers(name, steps):
    schedule = NoiseSchedule(name, 1000)
    ref = make_ref(diffusers.DDPMScheduler, name, steps)
    g = torch.Generator().manual_seed(0)
    ratio = 1000 // steps
    for t in ref.timesteps.tolist()[:: max(1, steps // 6)] + [0]:
        x = torch.randn(4, 1, 8, 8, generator=g)
        eps = torch.randn(4, 1, 8, 8, generator=g)
        prev_t = t - ratio
        # diffusers draws its own noise; give it the same stream through a seeded generator
        expected = ref.step(eps, t, x, generator=torch.Generator().manual_seed(7)).prev_sample
        noise = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(7))
        ours = ddpm_step(schedule, eps, t, x, prev_t, noise if prev_t >= 0 else None)
        torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-5)
        # the mean alone (no noise): diffusers' pred_prev_sample before the variance is added
        mean_ref = ref.step(eps, t, x, generator=torch.Generator().manual_seed(7)).prev_sample
        if prev_t >= 0:
            std = ref._get_variance(t) ** 0.5
            mean_ref = mean_ref - std * noise
        mean_ours = ddpm_step(schedule, eps, t, x, prev_t, torch.zeros_like(x) if prev_t >= 0 else None)
        torch.testing.assert_close(mean_ours, mean_ref, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("steps", [100, 50, 20, 10])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_step_matches_diffusers(name, steps, eta):
    schedule = NoiseSchedule(name, 1000)
    ref = make_ref(diffusers.DDIMScheduler, name, steps)
    g = torch.Generator().manual_seed(1)
    for t in ref.timesteps.tolist():
        x = torch.randn(3, 2, generator=g)
        eps = torch.randn(3, 2, generator=g)
        noise = torch.randn(3, 2, generator=g)
        expected = ref.step(eps, t, x, eta=eta, variance_noise=noise if eta > 0 else None).prev_sample
        ours = ddim_step(schedule, eps, t, x, t - 1000 // steps, eta, noise if eta > 0 else None)
        torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-5)


def test_ddim_eta_one_has_the_ddpm_variance():
    # eta = 1 gives sigma_t^2 = the DDPM posterior variance (DDIM paper, eq. 16)
    schedule = NoiseSchedule("linear", 1000)
    x, eps = torch.randn(5, 2), torch.randn(5, 2)
    for t in [999, 500, 10, 1]:
        noise = torch.randn(5, 2)
        a = ddim_step(schedule, eps, t, x, t - 1, 1.0, noise) - ddim_step(schedule, eps, t, x, t - 1, 1.0, 0 * noise)
        _, var = schedule.posterior(x, x, t)
        torch.testing.assert_close(a, var.sqrt() * noise, atol=1e-6, rtol=1e-5)


def test_classifier_free_guidance_formula():
    eu, ec = torch.randn(4, 2), torch.randn(4, 2)
    torch.testing.assert_close(classifier_free_guidance(eu, ec, 1.0), ec)
    torch.testing.assert_close(classifier_free_guidance(eu, ec, 0.0), eu)
    torch.testing.assert_close(classifier_free_guidance(eu, ec, 3.0), eu + 3 * (ec - eu))
    with pytest.raises(ValueError, match="guidance_scale"):
        classifier_free_guidance(eu, ec, -0.5)


class LabelledToy(torch.nn.Module):
    """eps = x * w[label] -- enough to check that guidance batches cond and null passes."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.arange(1.0, 5.0))  # label 3 is the null label
        self.calls = 0

    def forward(self, x, t, labels):
        self.calls += 1
        labels = torch.full((len(x),), 3) if labels is None else labels
        return x * self.w[labels][:, None]


def test_predict_noise_runs_one_batched_pass_for_guidance():
    model, x = LabelledToy(), torch.ones(2, 2)
    labels = torch.tensor([0, 1])
    out = predict_noise(model, x, 5, labels, null_label=3, guidance_scale=2.0)
    assert model.calls == 1
    expected = 4 + 2 * (torch.tensor([1.0, 2.0]) - 4)
    torch.testing.assert_close(out, expected[:, None].expand(2, 2))
    assert torch.equal(predict_noise(model, x, 5, labels, 3, 1.0), x * torch.tensor([[1.0], [2.0]]))


@pytest.mark.parametrize("sampler,eta", [("ddpm", 0.0), ("ddim", 0.0), ("ddim", 1.0)])
def test_sampling_is_deterministic_under_a_seed_and_shapes_are_right(sampler, eta):
    torch.manual_seed(0)
    model = MLPDenoiser(hidden=16, num_blocks=1).eval()
    schedule = NoiseSchedule("linear", 100)
    kw = {"num_inference_steps": 20, "sampler": sampler, "eta": eta}
    a = sample(model, schedule, (6, 2), generator=torch.Generator().manual_seed(3), **kw)
    b = sample(model, schedule, (6, 2), generator=torch.Generator().manual_seed(3), **kw)
    c = sample(model, schedule, (6, 2), generator=torch.Generator().manual_seed(4), **kw)
    assert a.shape == (6, 2) and torch.equal(a, b) and not torch.equal(a, c)
    x, traj = sample(model, schedule, (6, 2), generator=torch.Generator().manual_seed(3), return_trajectory=True, **kw)
    assert traj.shape == (21, 6, 2) and torch.equal(traj[-1], x) and torch.equal(x, a)


def test_ddim_eta0_is_deterministic_given_the_start():
    # with eta = 0 the only randomness is x_T; the loop equals stepping by hand from the same x_T
    torch.manual_seed(0)
    model = MLPDenoiser(hidden=16, num_blocks=1).eval()
    schedule = NoiseSchedule("linear", 100)
    x = torch.randn((4, 2), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        for t in inference_timesteps(100, 10).tolist():
            x = ddim_step(schedule, model(x, torch.full((4,), t), None), t, x, t - 10, 0.0)
    y = sample(model, schedule, (4, 2), num_inference_steps=10, sampler="ddim",
               generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(x, y)


def test_bad_input_raises_clear_errors():
    model = MLPDenoiser(hidden=16, num_blocks=1).eval()
    schedule = NoiseSchedule("linear", 100)
    with pytest.raises(ValueError, match=r"sampler must be one of \('ddpm', 'ddim'\)"):
        sample(model, schedule, (2, 2), sampler="euler")
    with pytest.raises(ValueError, match="num_inference_steps"):
        sample(model, schedule, (2, 2), num_inference_steps=101)
    with pytest.raises(ValueError, match="num_inference_steps"):
        inference_timesteps(100, 0)
    with pytest.raises(ValueError, match="guidance_scale"):
        sample(model, schedule, (2, 2), guidance_scale=-1.0)
    with pytest.raises(ValueError, match="eta"):
        sample(model, schedule, (2, 2), sampler="ddim", eta=-0.1)
    with pytest.raises(ValueError, match="needs noise"):
        ddpm_step(schedule, torch.zeros(2, 2), 50, torch.zeros(2, 2), 49)
    with pytest.raises(ValueError, match="t must lie"):
        ddim_step(schedule, torch.zeros(2, 2), 100, torch.zeros(2, 2), 90)


@pytest.mark.parametrize("cls", ["DDPMScheduler", "DDIMScheduler"])
def test_clipped_steps_match_diffusers_clip_sample(cls):
    schedule = NoiseSchedule("linear", 1000)
    ref = getattr(diffusers, cls)(num_train_timesteps=1000, beta_schedule="linear", clip_sample=True)
    ref.set_timesteps(20)
    g = torch.Generator().manual_seed(5)
    for t in ref.timesteps.tolist():
        x, eps = 2 * torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
        if cls == "DDPMScheduler":
            expected = ref.step(eps, t, x, generator=torch.Generator().manual_seed(9)).prev_sample
            noise = torch.randn(4, 3, generator=torch.Generator().manual_seed(9)) if t - 50 >= 0 else None
            ours = ddpm_step(schedule, eps, t, x, t - 50, noise, clip_sample=1.0)
        else:
            expected = ref.step(eps, t, x, eta=0.0).prev_sample
            ours = ddim_step(schedule, eps, t, x, t - 50, 0.0, clip_sample=1.0)
        torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="clip_sample"):
        ddim_step(schedule, eps, 10, x, 5, clip_sample=0.0)


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), -1.0, True, "2"])
def test_guidance_scale_must_be_finite_and_non_negative(bad):
    # inf passed the old ">= 0" check and gave NaN images
    eps = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="guidance_scale must be a finite number >= 0"):
        classifier_free_guidance(eps, eps, bad)
    model = MLPDenoiser(hidden=16, num_blocks=1).eval()
    with pytest.raises(ValueError, match="guidance_scale"):
        sample(model, NoiseSchedule("linear", 100), (2, 2), guidance_scale=bad)


@pytest.mark.parametrize("option,bad", [("eta", float("nan")), ("eta", float("inf")), ("eta", True),
                                        ("clip_sample", float("nan")), ("clip_sample", float("inf")),
                                        ("clip_sample", -1.0), ("num_inference_steps", 2.0),
                                        ("num_inference_steps", True), ("sampler", None)])
def test_sample_checks_every_option_before_any_work(option, bad):
    model = MLPDenoiser(hidden=16, num_blocks=1).eval()
    with pytest.raises(ValueError, match=option):
        sample(model, NoiseSchedule("linear", 100), (2, 2), **{option: bad})


def test_sample_rejects_float_labels_instead_of_truncating_them():
    from aigc_course.diffusion import DigitUNet

    model = DigitUNet(channels=(8, 16), emb_dim=16, num_heads=2).eval()
    with pytest.raises(ValueError, match="labels must be integer"):
        sample(model, NoiseSchedule("linear", 100), (2, 1, 8, 8), labels=[1.7, 2.2], null_label=10)
    with pytest.raises(ValueError, match=r"shape\[0\]"):
        sample(model, NoiseSchedule("linear", 100), (0, 1, 8, 8))


def test_steps_check_shapes_but_do_not_scan_values():
    schedule = NoiseSchedule("linear", 100)
    with pytest.raises(ValueError, match="eps must have the shape of x"):
        ddpm_step(schedule, torch.zeros(2, 3), 50, torch.zeros(2, 2), 49, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="noise must be a tensor of the shape of x"):
        ddim_step(schedule, torch.zeros(2, 2), 50, torch.zeros(2, 2), 40, 1.0, torch.zeros(3))
    with pytest.raises(ValueError, match="prev_t"):
        ddim_step(schedule, torch.zeros(2, 2), 50, torch.zeros(2, 2), 50)
    # a per-step function propagates NaN rather than synchronising to look for it
    x = torch.full((2, 2), float("nan"))
    assert torch.isnan(ddim_step(schedule, torch.zeros(2, 2), 50, x, 40)).all()

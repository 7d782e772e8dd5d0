"""The denoising networks, the loss, and the shipped pipelines' interface and errors."""

from __future__ import annotations

import pytest
import torch

from aigc_course import pretrained
from aigc_course.attention import MultiHeadAttention
from aigc_course.diffusion import (
    DigitsDDPMPipeline,
    DigitUNet,
    MLPDenoiser,
    NoiseSchedule,
    noise_prediction_loss,
    timestep_embedding,
)


def test_timestep_embedding_shape_and_distinctness():
    emb = timestep_embedding(torch.tensor([0, 1, 500, 999]), 64)
    assert emb.shape == (4, 64)
    torch.testing.assert_close(emb[0, :32], torch.ones(32))  # cos(0) = 1
    torch.testing.assert_close(emb[0, 32:], torch.zeros(32))  # sin(0) = 0
    assert torch.cdist(emb, emb).fill_diagonal_(1.0).min() > 0.5
    with pytest.raises(ValueError, match="even"):
        timestep_embedding(torch.tensor([1]), 63)


def test_mlp_denoiser_shapes_and_errors():
    model = MLPDenoiser(dim=2, hidden=32, num_blocks=2)
    out = model(torch.randn(5, 2), torch.randint(0, 1000, (5,)))
    assert out.shape == (5, 2)
    with pytest.raises(ValueError, match="unconditional"):
        model(torch.randn(5, 2), torch.zeros(5, dtype=torch.long), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2\)"):
        model(torch.randn(5, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"t must be a tensor of shape \(5,\)"):
        model(torch.randn(5, 2), torch.zeros(4, dtype=torch.long))


def test_unet_shapes_labels_and_attention_reuse():
    torch.manual_seed(0)
    model = DigitUNet(channels=(16, 32), emb_dim=32, num_heads=2).eval()
    assert any(isinstance(m, MultiHeadAttention) for m in model.modules())
    x, t = torch.randn(6, 1, 8, 8), torch.randint(0, 1000, (6,))
    labels = torch.tensor([0, 1, 2, 3, 9, 10])  # 10 is the null label
    out = model(x, t, labels)
    assert out.shape == (6, 1, 8, 8)
    # labels=None is the null label, and the label changes the prediction
    torch.testing.assert_close(model(x, t, None), model(x, t, torch.full((6,), 10)))
    assert not torch.allclose(model(x, t, torch.zeros(6, dtype=torch.long)), model(x, t, torch.ones(6, dtype=torch.long)))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\]"):
        model(x, t, torch.tensor([0, 1, 2, 3, 4, 11]))
    with pytest.raises(ValueError, match=r"labels must lie"):
        model(x, t, torch.tensor([0, 1, 2, 3, 4, -1]))
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.randn(6, 8, 8), t, labels)


def test_unet_items_do_not_mix_across_the_batch():
    # each output depends on its own input only (GroupNorm, not BatchNorm)
    torch.manual_seed(0)
    model = DigitUNet(channels=(16, 32), emb_dim=32, num_heads=2).eval()
    x, t, y = torch.randn(4, 1, 8, 8), torch.randint(0, 1000, (4,)), torch.tensor([1, 2, 3, 4])
    full = model(x, t, y)
    torch.testing.assert_close(model(x[:1], t[:1], y[:1]), full[:1], atol=1e-5, rtol=1e-4)


def test_noise_prediction_loss_and_one_training_step_lowers_it():
    torch.manual_seed(0)
    schedule = NoiseSchedule("linear", 100)
    model = MLPDenoiser(hidden=64, num_blocks=2)
    data = torch.randn(512, 2) * 0.1 + 1.0
    g = torch.Generator().manual_seed(0)
    loss0 = noise_prediction_loss(model, schedule, data, generator=torch.Generator().manual_seed(1))
    assert loss0.ndim == 0 and loss0 > 0
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        opt.zero_grad()
        noise_prediction_loss(model, schedule, data, generator=g).backward()
        opt.step()
    loss1 = noise_prediction_loss(model, schedule, data, generator=torch.Generator().manual_seed(1))
    assert loss1 < 0.7 * loss0
    with pytest.raises(ValueError, match="p_uncond"):
        noise_prediction_loss(model, schedule, data, p_uncond=1.5)


def test_label_dropout_uses_the_null_label():
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x, t, labels):
            seen.append(labels.clone())
            return torch.zeros_like(x)

    schedule = NoiseSchedule("linear", 100)
    labels = torch.zeros(10_000, dtype=torch.long)
    noise_prediction_loss(Spy(), schedule, torch.zeros(10_000, 2), labels, p_uncond=0.2, null_label=10,
                          generator=torch.Generator().manual_seed(0))
    frac = (seen[0] == 10).float().mean().item()
    assert 0.18 < frac < 0.22 and set(seen[0].tolist()) == {0, 10}


@pytest.fixture(scope="module")
def tiny_pipe():
    torch.manual_seed(0)
    model = DigitUNet(channels=(16, 32), emb_dim=32, num_heads=2).eval()
    return DigitsDDPMPipeline(model, NoiseSchedule("linear", 1000))


def test_pipeline_shapes_range_and_determinism(tiny_pipe):
    a = tiny_pipe([0, 1, 2], num_inference_steps=5, sampler="ddim", seed=3)
    b = tiny_pipe([0, 1, 2], num_inference_steps=5, sampler="ddim", seed=3)
    assert a.shape == (3, 1, 8, 8) and torch.equal(a, b)
    assert 0.0 <= a.min() and a.max() <= 1.0
    c = tiny_pipe([0, 1, 2], num_inference_steps=5, sampler="ddpm", guidance_scale=3.0, seed=3)
    d = tiny_pipe([0, 1, 2], num_inference_steps=5, sampler="ddpm", guidance_scale=3.0, seed=3)
    assert torch.equal(c, d) and not torch.equal(a, c)
    assert tiny_pipe(num_inference_steps=2, sampler="ddim", seed=0, num_images=5).shape == (5, 1, 8, 8)
    assert tiny_pipe(7, num_inference_steps=2, sampler="ddim", seed=0).shape == (1, 1, 8, 8)
    x, traj = tiny_pipe([4], num_inference_steps=4, sampler="ddim", seed=0, return_trajectory=True)
    assert traj.shape == (5, 1, 1, 8, 8) and torch.equal(traj[-1], x)


def test_pipeline_bad_input(tiny_pipe):
    with pytest.raises(ValueError, match="sampler"):
        tiny_pipe([1], sampler="plms")
    with pytest.raises(ValueError, match="num_inference_steps"):
        tiny_pipe([1], num_inference_steps=1001)
    with pytest.raises(ValueError, match="num_inference_steps"):
        tiny_pipe([1], num_inference_steps=0)
    with pytest.raises(ValueError, match="guidance_scale"):
        tiny_pipe([1], guidance_scale=-1.0)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 9\]"):
        tiny_pipe([3, 10])
    with pytest.raises(ValueError, match="labels"):
        tiny_pipe([1.5])
    with pytest.raises(ValueError, match="seed"):
        tiny_pipe([1], seed=-2)


@pytest.mark.skipif("digits-ddpm" not in pretrained.available(), reason="digits-ddpm not published yet")
def test_shipped_digits_ddpm_loads_and_samples():
    pipe = pretrained.load("digits-ddpm", device="cpu")
    images = pipe([0, 5, 9], num_inference_steps=10, sampler="ddim", seed=0)
    assert images.shape == (3, 1, 8, 8) and 0 <= images.min() and images.max() <= 1
    assert pipe.schedule.timesteps == 1000


@pytest.mark.skipif("grid-ddpm" not in pretrained.available(), reason="grid-ddpm not published yet")
def test_shipped_grid_ddpm_loads_and_samples():
    pipe = pretrained.load("grid-ddpm", device="cpu")
    points = pipe.sample(50, num_inference_steps=20, sampler="ddim", seed=0)
    assert points.shape == (50, 2) and torch.isfinite(points).all()


def test_min_snr_weight_down_weights_only_the_nearly_clean_timesteps():
    schedule = NoiseSchedule("cosine", 1000)

    class Zero(torch.nn.Module):
        def forward(self, x, t, labels=None):
            return torch.zeros_like(x)

    x0 = torch.randn(512, 4)
    plain = noise_prediction_loss(Zero(), schedule, x0, generator=torch.Generator().manual_seed(0))
    huge = noise_prediction_loss(Zero(), schedule, x0, generator=torch.Generator().manual_seed(0), snr_gamma=1e9)
    torch.testing.assert_close(huge, plain)  # gamma above every SNR: no timestep is down-weighted
    weighted = noise_prediction_loss(Zero(), schedule, x0, generator=torch.Generator().manual_seed(0), snr_gamma=5.0)
    assert weighted < plain  # the low-noise half counts less
    with pytest.raises(ValueError, match="snr_gamma must be positive"):
        noise_prediction_loss(Zero(), schedule, x0, snr_gamma=0.0)

"""The text-conditioned U-Net and the latent autoencoder (Chapter 5)."""

from __future__ import annotations

import pytest
import torch

from aigc_course.data import all_scene_attributes, captioned_scenes
from aigc_course.data.scenes import caption
from aigc_course.diffusion import (
    NoiseSchedule,
    ddim_step,
    noise_prediction_loss,
    predict_noise,
    velocity_loss,
)
from aigc_course.diffusion.autoencoder import SceneAutoencoder
from aigc_course.diffusion.text_conditioning import PromptTokenizer
from aigc_course.diffusion.text_unet import TextConditionedUNet


@pytest.fixture(scope="module")
def tokenizer() -> PromptTokenizer:
    return PromptTokenizer.train([caption(a) for a in all_scene_attributes("train")])


def small_unet(tokenizer, **kwargs) -> TextConditionedUNet:
    torch.manual_seed(0)
    defaults = dict(in_channels=4, image_size=8, channels=(16, 32), emb_dim=32, text_width=16, text_layers=1,
                    num_heads=2)
    return TextConditionedUNet(tokenizer.vocab_size, tokenizer.pad_id, tokenizer.context_length, **{**defaults, **kwargs})


def test_latent_and_pixel_unets_keep_the_shape(tokenizer):
    ids, _ = tokenizer(["a red circle above a blue square", "a small green cross at the top"])
    unet = small_unet(tokenizer).eval()
    x = torch.randn(2, 4, 8, 8)
    assert unet(x, torch.tensor([3, 900]), ids).shape == x.shape
    names = [name for name, _ in unet.cross_attention_layers()]
    assert names == ["down.0", "down.1", "mid", "up.0", "up.1"]  # every level at <= 8x8, and the middle
    pixel = small_unet(tokenizer, in_channels=3, image_size=32, channels=(16, 16, 32),
                       attention_resolution=8, cross_attention_resolution=16).eval()
    x = torch.randn(2, 3, 32, 32)
    assert pixel(x, torch.tensor([3, 900]), ids).shape == x.shape
    assert [n for n, _ in pixel.cross_attention_layers()] == ["down.1", "down.2", "mid", "up.0", "up.1"]


def test_the_prompt_changes_the_prediction_and_padding_does_not(tokenizer):
    unet = small_unet(tokenizer).eval()
    x, t = torch.randn(1, 4, 8, 8), torch.tensor([500])
    a, _ = tokenizer(["a red circle above a blue square"])
    b, _ = tokenizer(["a blue circle above a red square"])
    assert not torch.allclose(unet(x, t, a), unet(x, t, b), atol=1e-5)
    longer = torch.cat([a, torch.full((1, 0), tokenizer.pad_id)], dim=1)
    torch.testing.assert_close(unet(x, t, longer), unet(x, t, a))


def test_guided_prediction_batches_the_empty_prompt(tokenizer):
    unet = small_unet(tokenizer).eval()
    ids, _ = tokenizer(["a red circle above a blue square", "a small green cross at the top"])
    null, _ = tokenizer([""])
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        guided = predict_noise(unet, x, 400, ids, null[0], guidance_scale=3.0)
        t = torch.full((2,), 400)
        cond, uncond = unet(x, t, ids), unet(x, t, null.expand(2, -1))
    torch.testing.assert_close(guided, uncond + 3.0 * (cond - uncond), atol=1e-5, rtol=1e-4)


def test_unet_trains_on_the_simple_loss(tokenizer):
    unet = small_unet(tokenizer)
    ids, _ = tokenizer(["a red circle above a blue square"] * 8)
    x0 = torch.randn(8, 4, 8, 8)
    schedule = NoiseSchedule("cosine", 100)
    opt = torch.optim.Adam(unet.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss = noise_prediction_loss(unet, schedule, x0, ids, generator=torch.Generator().manual_seed(1))
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.8 * first


def test_a_v_model_turns_its_velocity_into_the_noise(tokenizer):
    """eps = sqrt(1 - abar) x_t + sqrt(abar) v is exact for the true v, and is what forward returns."""
    unet = small_unet(tokenizer, prediction="v", schedule="cosine", timesteps=1000).eval()
    schedule = NoiseSchedule("cosine", 1000)
    torch.manual_seed(1)
    x0, eps, t = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8), torch.tensor([0, 500, 999])
    ab = schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
    xt = schedule.q_sample(x0, t, eps)
    v = ab.sqrt() * eps - (1 - ab).sqrt() * x0
    torch.testing.assert_close((1 - ab).sqrt() * xt + ab.sqrt() * v, eps, atol=1e-5, rtol=0)
    ids, _ = tokenizer(["a red circle above a blue square"] * 3)
    with torch.no_grad():
        torch.testing.assert_close(unet(xt, t, ids), (1 - ab).sqrt() * xt + ab.sqrt() * unet.network_output(xt, t, ids))
    assert "alphas_cumprod" not in unet.state_dict()  # rebuilt from the config, not shipped
    with pytest.raises(ValueError, match=r"t must lie in \[0, 999\]"):
        unet(xt, torch.tensor([0, 1, 1000]), ids)
    with pytest.raises(ValueError, match="prediction must be one of"):
        small_unet(tokenizer, prediction="x0")


def test_velocity_loss_is_the_noise_loss_over_alpha_bar(tokenizer):
    """Same (t, noise) draws for one seed; ||v - v_hat||^2 = ||eps - eps_hat||^2 / abar (book eq. 4.4.8)."""
    unet = small_unet(tokenizer, prediction="v", schedule="cosine", timesteps=100).eval()
    schedule = NoiseSchedule("cosine", 100)
    x0 = torch.randn(1, 4, 8, 8)
    ids, _ = tokenizer(["a small red circle at the top left"])
    for seed in range(4):
        t = int(torch.randint(100, (1,), generator=torch.Generator().manual_seed(seed)))
        with torch.no_grad():
            v_loss = velocity_loss(unet, schedule, x0, ids, generator=torch.Generator().manual_seed(seed))
            eps_loss = noise_prediction_loss(unet, schedule, x0, ids, generator=torch.Generator().manual_seed(seed))
        torch.testing.assert_close(v_loss, eps_loss / schedule.alphas_cumprod[t], rtol=1e-3, atol=1e-6)
    with pytest.raises(ValueError, match="model must predict v"):
        velocity_loss(small_unet(tokenizer), schedule, x0, ids)


def test_v_model_steps_like_diffusers_v_prediction(tokenizer):
    """Golden test: the course's DDIM on the v-model's noise = diffusers' DDIM on its raw v output."""
    diffusers = pytest.importorskip("diffusers")
    unet = small_unet(tokenizer, prediction="v", schedule="cosine", timesteps=1000).eval()
    schedule = NoiseSchedule("cosine", 1000)
    scheduler = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                                        clip_sample=False, prediction_type="v_prediction")
    scheduler.set_timesteps(10)
    ids, _ = tokenizer(["a red circle above a blue square", "a large blue cross at the bottom"])
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    ours = x.clone()
    timesteps = scheduler.timesteps.tolist()
    with torch.no_grad():
        for i, t in enumerate(timesteps):
            prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1
            tt = torch.full((2,), t)
            x = scheduler.step(unet.network_output(x, tt, ids), t, x).prev_sample
            ours = ddim_step(schedule, unet(ours, tt, ids), t, ours, prev)
    torch.testing.assert_close(ours, x, atol=1e-4, rtol=1e-4)


def test_unet_input_errors(tokenizer):
    unet = small_unet(tokenizer)
    ids, _ = tokenizer(["a red circle above a blue square"])
    with pytest.raises(ValueError, match=r"x must have shape \(B, 4, 8, 8\)"):
        unet(torch.randn(1, 3, 8, 8), torch.tensor([1]), ids)
    with pytest.raises(ValueError, match="labels must be prompt ids"):
        unet(torch.randn(1, 4, 8, 8), torch.tensor([1]), torch.tensor([1]))
    with pytest.raises(ValueError, match=r"image_size 10 must be divisible by 2\*\*2"):
        small_unet(tokenizer, image_size=10, channels=(8, 8, 8))


def test_autoencoder_shapes_standardisation_and_a_short_fit():
    torch.manual_seed(0)
    images, _, _ = captioned_scenes(64, seed=0)
    ae = SceneAutoencoder(latent_channels=4, channels=(16, 32))
    assert ae.latent_shape == (4, 8, 8)
    z = ae.encode(images)
    assert z.shape == (64, 4, 8, 8)
    out = ae.decode(z)
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1
    ae.fit_latent_scale(images)
    z = ae.encode(images)
    torch.testing.assert_close(z.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(dim=(0, 2, 3)), torch.ones(4), atol=1e-4, rtol=0)
    opt = torch.optim.Adam(ae.parameters(), lr=3e-3)
    first = float(ae.loss(images).detach())
    for _ in range(40):
        loss = ae.loss(images)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, 32, 32\)"):
        ae.encode(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"latents must have shape \(B, 4, 8, 8\)"):
        ae.decode(torch.randn(2, 4, 4, 4))

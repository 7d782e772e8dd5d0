"""The text-to-image pipeline: bad inputs, seeds, diffusers' DDIMScheduler, attention maps (Chapter 5).

A small randomly initialised pipeline checks the machinery; the shipped ``text-to-image``
checkpoint is checked where it exists.
"""

from __future__ import annotations

import pytest
import torch

from aigc_course import pretrained
from aigc_course.data import all_scene_attributes
from aigc_course.data.scenes import caption
from aigc_course.diffusion import NoiseSchedule
from aigc_course.diffusion.autoencoder import SceneAutoencoder
from aigc_course.diffusion.pipelines import PixelTextToImagePipeline, TextToImagePipeline
from aigc_course.diffusion.text_conditioning import PromptTokenizer
from aigc_course.diffusion.text_unet import TextConditionedUNet

PROMPTS = ["a red circle above a blue square", "a small green cross at the top left"]


@pytest.fixture(scope="module")
def pipe() -> TextToImagePipeline:
    torch.manual_seed(0)
    tokenizer = PromptTokenizer.train([caption(a) for a in all_scene_attributes("train")])
    unet = TextConditionedUNet(tokenizer.vocab_size, tokenizer.pad_id, tokenizer.context_length, in_channels=4,
                               image_size=8, channels=(16, 32), emb_dim=32, text_width=16, text_layers=1, num_heads=2)
    ae = SceneAutoencoder(4, (16, 16))
    config = {"guidance_scale": 2.0, "image_size": 32}
    return TextToImagePipeline(unet, tokenizer, NoiseSchedule("cosine", 1000), ae, config)


def test_output_shape_range_and_seeds(pipe):
    images = pipe(PROMPTS, num_inference_steps=5, seed=3)
    assert images.shape == (2, 3, 32, 32) and images.min() >= 0 and images.max() <= 1
    assert torch.equal(images, pipe(PROMPTS, num_inference_steps=5, seed=3))
    assert not torch.equal(images, pipe(PROMPTS, num_inference_steps=5, seed=4))
    one = pipe(PROMPTS[0], num_inference_steps=5, seed=3)
    assert one.shape == (1, 3, 32, 32)
    torch.manual_seed(0)
    a = pipe(PROMPTS[0], num_inference_steps=3)
    torch.manual_seed(0)
    assert torch.equal(a, pipe(PROMPTS[0], num_inference_steps=3))  # seed=None follows torch's global RNG
    images, latents = pipe(PROMPTS, num_inference_steps=3, seed=0, return_latents=True)
    assert latents.shape == (2, 4, 8, 8)


def test_guidance_scale_one_is_the_conditional_model_alone(pipe):
    a = pipe(PROMPTS, num_inference_steps=4, guidance_scale=1.0, seed=0)
    b = pipe(PROMPTS, num_inference_steps=4, guidance_scale=3.0, seed=0)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("eta", [0.0, 0.7])
def test_diffusers_ddim_scheduler_gives_the_same_images(pipe, eta):
    diffusers = pytest.importorskip("diffusers")
    scheduler = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=False)
    ours, our_latents = pipe(PROMPTS, num_inference_steps=20, eta=eta, seed=1, return_latents=True)
    theirs, their_latents = pipe(PROMPTS, num_inference_steps=20, eta=eta, seed=1, scheduler=scheduler,
                                 return_latents=True)
    torch.testing.assert_close(their_latents, our_latents, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-5)


def test_an_incompatible_diffusers_scheduler_is_refused(pipe):
    diffusers = pytest.importorskip("diffusers")
    with pytest.raises(ValueError, match="scheduler must use this model's noise schedule"):
        pipe(PROMPTS, num_inference_steps=5, scheduler=diffusers.DDIMScheduler(beta_schedule="linear", clip_sample=False))
    clipped = diffusers.DDIMScheduler(beta_schedule="squaredcos_cap_v2")  # clip_sample=True by default
    with pytest.raises(ValueError, match=r"scheduler.config.clip_sample must be False"):
        pipe(PROMPTS, num_inference_steps=5, scheduler=clipped)
    with pytest.raises(ValueError, match="scheduler must be a diffusers scheduler"):
        pipe(PROMPTS, num_inference_steps=5, scheduler="ddim")


@pytest.mark.parametrize("prompt, match", [
    ("", "prompt is empty"),
    ("   ", "prompt is empty"),
    ([], "prompt must hold at least one string"),
    (["a red circle above a blue square", ""], r"prompt\[1\] is empty"),
    (3, "prompt must be a str or a list of str, got int"),
    (None, "prompt must be a str or a list of str, got NoneType"),
    (["a red circle above a blue square", 7], r"prompt\[1\] must be a str, got int"),
    ("a purple star in the middle", r"prompt = 'a purple star in the middle' has words the model was never "
                                    r"trained on: \['purple', 'star'\]"),
    (["a red circle above a blue square", "a purple circle"], r"prompt\[1\] = 'a purple circle' has words"),
    ("a red circle above a blue square to the left of a green cross below a yellow triangle",
     "is 18 tokens long; the text encoder's context holds 15"),
])
def test_bad_prompts_name_the_argument(pipe, prompt, match):
    with pytest.raises(ValueError, match=match):
        pipe(prompt, num_inference_steps=2)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_inference_steps": 0}, r"num_inference_steps must be an int in \[1, 1000\]"),
    ({"num_inference_steps": 2.5}, "num_inference_steps must be an int"),
    ({"guidance_scale": -1.0}, "guidance_scale must be a finite number >= 0"),
    ({"guidance_scale": "high"}, "guidance_scale must be a number"),
    ({"eta": -0.1}, "eta must be a finite number >= 0"),
    ({"seed": -1}, "seed must be a non-negative int"),
    ({"seed": True}, "seed must be a non-negative int"),
    ({"sampler": "euler"}, "sampler must be one of"),
])
def test_bad_options_name_the_argument(pipe, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pipe(PROMPTS[0], **{"num_inference_steps": 2, **kwargs})


def test_cross_attention_maps(pipe):
    image, tokens, maps = pipe.cross_attention_maps(PROMPTS[0], num_inference_steps=4, seed=0)
    assert image.shape == (3, 32, 32)
    assert tokens == ["<start>", "a", " red", " circle", " above", " a", " blue", " square"]
    assert maps.shape == (8, 32, 32)
    # each pixel's weights over the prompt's tokens sum to 1 (padding gets none)
    torch.testing.assert_close(maps.sum(0), torch.ones(32, 32), atol=1e-4, rtol=0)
    assert all(m.attn._weights_sink is None for _, m in pipe.unet.cross_attention_layers())  # recording stopped
    with pytest.raises(ValueError, match="one string"):
        pipe.cross_attention_maps(PROMPTS, num_inference_steps=2)


def test_the_course_builder_rebuilds_both_pipelines_from_tensors_and_config(pipe):
    config = dict(pipe.config, unet=pipe.unet.config, autoencoder=pipe.autoencoder.config,
                  tokenizer=pipe.tokenizer.to_dict(), schedule="cosine", timesteps=1000)
    copy = pretrained.build(TextToImagePipeline, pipe.state_dict(), config)
    torch.testing.assert_close(copy(PROMPTS, num_inference_steps=3, seed=0), pipe(PROMPTS, num_inference_steps=3, seed=0))
    pixel_unet = TextConditionedUNet(pipe.tokenizer.vocab_size, pipe.tokenizer.pad_id, in_channels=3, image_size=32,
                                     channels=(8, 8, 16), emb_dim=16, text_width=16, text_layers=1, num_heads=2)
    pixel = PixelTextToImagePipeline(pixel_unet, pipe.tokenizer, pipe.schedule, config=dict(config, unet=pixel_unet.config))
    assert pixel.space == "pixel" and pixel.sample_shape == (3, 32, 32)
    rebuilt = pretrained.build(PixelTextToImagePipeline, pixel.state_dict(), pixel.config)
    torch.testing.assert_close(rebuilt(PROMPTS, num_inference_steps=2, seed=0), pixel(PROMPTS, num_inference_steps=2, seed=0))
    with pytest.raises(ValueError, match="autoencoder must be None"):
        PixelTextToImagePipeline(pixel_unet, pipe.tokenizer, pipe.schedule, pipe.autoencoder)


shipped = pytest.mark.skipif("text-to-image" not in pretrained.available(), reason="text-to-image not published yet")


@shipped
def test_shipped_pipeline_loads_and_generates():
    pipe = pretrained.load("text-to-image", device="cpu")
    images = pipe(PROMPTS, num_inference_steps=10, seed=0)
    assert images.shape == (2, 3, 32, 32) and 0 <= images.min() and images.max() <= 1
    assert pipe.space == "latent" and pipe.config["train_cpu_seconds"] <= 2 * 20 * 60  # 20 minutes of 2 cores

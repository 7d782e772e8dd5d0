"""Training the text-to-image model (Chapter 5): the two stages, the report, the recipes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from aigc_course.data import captioned_scenes
from aigc_course.diffusion.pipelines import PixelTextToImagePipeline, TextToImagePipeline
from aigc_course.diffusion.text_training import (
    RECIPES,
    TextToImageRecipe,
    finetune_decoder,
    train_text_to_image,
)

TINY = TextToImageRecipe(latent_channels=4, ae_channels=(8, 16), ae_steps=3, ae_batch_size=8, channels=(16, 32),
                         decoder_steps=0, emb_dim=32, text_width=16, text_layers=1, num_heads=2, steps=3, batch_size=8, warmup=1)


@pytest.fixture(scope="module")
def data():
    images, captions, _ = captioned_scenes(48, seed=3)
    return images, captions


def test_latent_run_trains_both_stages_and_returns_a_pipeline(data):
    seen = []
    pipe, report = train_text_to_image(TINY, data=data, progress=False, callback=lambda step, p: seen.append(step))
    assert isinstance(pipe, TextToImagePipeline) and pipe.sample_shape == (4, 8, 8)
    assert len(report["autoencoder_history"].loss) == 3 and len(report["denoiser_history"].loss) == 3
    assert all(torch.isfinite(torch.tensor(report["denoiser_history"].loss)))
    assert set(report["seconds"]) == {"data", "autoencoder", "denoiser"}
    assert seen == [1, 2, 3]  # after every update, the last one included
    assert pipe.config["recipe"] == TINY.to_dict() and pipe.config["space"] == "latent"
    images = pipe(data[1][:2], num_inference_steps=2, seed=0)
    assert images.shape == (2, 3, 32, 32) and 0 <= images.min() and images.max() <= 1


def test_a_trained_autoencoder_is_reused_and_must_match_the_recipe(data):
    pipe, _ = train_text_to_image(TINY, data=data, progress=False)
    again, report = train_text_to_image(TINY, data=data, progress=False, autoencoder=pipe.autoencoder)
    assert "autoencoder_history" not in report and again.autoencoder is pipe.autoencoder
    # the denoiser has its own random streams: reusing the autoencoder gives the full run's denoiser
    for key, value in pipe.unet.state_dict().items():
        torch.testing.assert_close(again.unet.state_dict()[key], value, msg=key)
    with pytest.raises(ValueError, match="latent channels"):
        train_text_to_image(dataclasses.replace(TINY, latent_channels=8), data=data, progress=False,
                            autoencoder=pipe.autoencoder)


def test_decoder_finetuning_leaves_the_encoder_and_so_the_latents_alone(data):
    pipe, report = train_text_to_image(dataclasses.replace(TINY, decoder_steps=3), data=data, progress=False)
    assert len(report["decoder_history"].loss) == 3 and "decoder" in report["seconds"]
    ae = pipe.autoencoder
    encoder_before = {k: v.clone() for k, v in ae.encoder.state_dict().items()}
    decoder_before = {k: v.clone() for k, v in ae.decoder.state_dict().items()}
    finetune_decoder(ae, data[0], 2, batch_size=4, progress=False)
    assert all(torch.equal(v, ae.encoder.state_dict()[k]) for k, v in encoder_before.items())
    assert not all(torch.equal(v, ae.decoder.state_dict()[k]) for k, v in decoder_before.items())


def test_pixel_run_has_no_autoencoder(data):
    recipe = dataclasses.replace(TINY, space="pixel", channels=(16, 16, 32), attention_resolution=8,
                                 cross_attention_resolution=16, steps=2)
    pipe, report = train_text_to_image(recipe, data=data, progress=False)
    assert isinstance(pipe, PixelTextToImagePipeline) and "autoencoder_history" not in report
    assert pipe(data[1][:1], num_inference_steps=2, seed=0).shape == (1, 3, 32, 32)


def test_recipes():
    assert RECIPES["latent"] == TextToImageRecipe() and RECIPES["latent"].space == "latent"
    assert RECIPES["pixel"].space == "pixel"
    with pytest.raises(ValueError, match="space"):
        TextToImageRecipe(space="voxel")
    with pytest.raises(ValueError, match="prediction must be one of"):
        TextToImageRecipe(prediction="x0")
    assert RECIPES["latent"].prediction == "v" and TINY.prediction == "v"


def test_an_epsilon_recipe_trains_on_the_simple_loss(data):
    recipe = dataclasses.replace(TINY, prediction="epsilon", snr_gamma=5.0)
    pipe, report = train_text_to_image(recipe, data=data, progress=False)
    assert pipe.unet.prediction == "epsilon" and pipe.config["unet"]["prediction"] == "epsilon"
    assert len(report["denoiser_history"].loss) == 3

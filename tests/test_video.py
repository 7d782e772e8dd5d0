"""Text-to-video (Chapter 2.3.4): moving scenes, the factorised video U-Net, the pipeline, the judges."""

from __future__ import annotations

import pytest
import torch

from aigc_course import pretrained
from aigc_course.data import (
    HELD_OUT_MOTIONS,
    MOTIONS,
    all_video_attributes,
    moving_scenes,
    parse_video_caption,
)
from aigc_course.data.moving import VIDEO_KEYS, video_caption, video_split_of
from aigc_course.diffusion.text_conditioning import PromptTokenizer
from aigc_course.diffusion.video_training import TextToVideoRecipe, train_text_to_video, video_loss
from aigc_course.diffusion.video_unet import TemporalAttention, TemporalConv, TextToVideoUNet
from aigc_course.metrics.video import read_clip, video_scores

# --------------------------------------------------------------------------- data


def test_moving_scenes_shapes_captions_and_determinism():
    videos, captions, attributes = moving_scenes(6, seed=3, num_frames=5, image_size=16)
    assert videos.shape == (6, 5, 3, 16, 16) and videos.dtype == torch.float32
    assert videos.min() >= 0 and videos.max() <= 1 and videos.max() > 0.5
    assert torch.equal(videos * 255, (videos * 255).round())  # 8-bit values
    for text, attrs in zip(captions, attributes, strict=True):
        assert set(attrs) == set(VIDEO_KEYS) and all(isinstance(v, str) for v in attrs.values())
        assert text == video_caption(attrs) and text.rsplit(" ", 2)[-2:] == ["moving", attrs["motion"]]
        assert parse_video_caption(text) == attrs
    again = moving_scenes(6, seed=3, num_frames=5, image_size=16)
    assert torch.equal(videos, again[0]) and captions == again[1]
    first = moving_scenes(2, seed=3, num_frames=5, image_size=16)
    assert torch.equal(first[0], videos[:2])  # the first k clips do not depend on n
    assert not torch.equal(moving_scenes(6, seed=4, num_frames=5, image_size=16)[0], videos)
    assert moving_scenes(1)[0].shape == (1, 8, 3, 16, 16)  # the defaults


def test_held_out_split_is_a_latin_square_of_object_motion_pairs():
    train, held = all_video_attributes("train"), all_video_attributes("held_out")
    assert len(train) == 96 and len(held) == 32 and len(all_video_attributes()) == 128
    assert all(HELD_OUT_MOTIONS[(a["colour"], a["shape"])] == a["motion"] for a in held)
    for key in VIDEO_KEYS:  # every value is seen in training
        assert {a[key] for a in train} == {a[key] for a in all_video_attributes()}
    assert {(a["colour"], a["shape"]) for a in train} == set(HELD_OUT_MOTIONS)  # every object too
    _, _, attrs = moving_scenes(40, seed=1, split="held_out", image_size=16)
    assert all(video_split_of(a) == "held_out" for a in attrs)
    _, _, attrs = moving_scenes(40, seed=1, split="train", image_size=16)
    assert all(video_split_of(a) == "train" for a in attrs)


def test_the_object_moves_steadily_in_the_captioned_direction():
    videos, _, attributes = moving_scenes(8, seed=2, image_size=16)
    for clip, attrs in zip(videos, attributes, strict=True):
        read = read_clip(clip)
        assert read["motion"] == attrs["motion"] and read["steady"] and 0.25 < read["travel"] < 0.47


@pytest.mark.parametrize("kwargs, name", [({"n": 0}, "n"), ({"n": 2, "num_frames": 0}, "num_frames"),
                                          ({"n": 2, "split": "test"}, "split"), ({"n": 2, "seed": -1}, "seed"),
                                          ({"n": True}, "n")])
def test_moving_scenes_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        moving_scenes(**kwargs)


# --------------------------------------------------------------------------- model


def _tiny_unet(**kwargs) -> tuple[TextToVideoUNet, torch.Tensor]:
    torch.manual_seed(0)
    tokenizer = PromptTokenizer.train([video_caption(a) for a in all_video_attributes()], 12)
    unet = TextToVideoUNet(tokenizer.vocab_size, tokenizer.pad_id, 12, image_size=8, max_frames=4, channels=(16, 16),
                           emb_dim=16, text_width=16, text_layers=1, num_heads=2, attention_resolution=4,
                           temporal_resolution=8, cross_attention_resolution=8, **kwargs).eval()
    ids, _ = tokenizer(["a small red circle moving left", "a large blue cross moving up"])
    return unet, ids


@torch.no_grad()
def test_unet_shapes_and_temporal_attention_mixes_frames_only_when_on():
    unet, ids = _tiny_unet()
    x, t = torch.randn(2, 4, 3, 8, 8), torch.tensor([10, 500])
    out = unet(x, t, ids)
    assert out.shape == x.shape
    changed = x.clone()
    changed[:, 0] += 1.0  # change frame 0 only
    delta = (unet(changed, t, ids) - out)[:, 1:].abs().amax()
    assert delta > 1e-3  # with temporal attention, later frames see frame 0
    off = unet(x, t, ids, temporal=False)
    assert (unet(changed, t, ids, temporal=False) - off)[:, 1:].abs().amax() == 0
    mixed = unet(x, t, ids, temporal=torch.tensor([True, False]))  # one flag per clip
    assert torch.allclose(mixed[0], out[0], atol=1e-5) and torch.allclose(mixed[1], off[1], atol=1e-5)


@torch.no_grad()
def test_temporal_off_equals_the_image_model_run_on_each_frame():
    unet, ids = _tiny_unet()
    x, t = torch.randn(2, 4, 3, 8, 8), torch.tensor([10, 500])
    joint = unet(x, t, ids, temporal=False)
    for f in range(4):
        alone = unet(x[:, f : f + 1], t, ids, temporal=False)[:, 0]
        assert torch.allclose(joint[:, f], alone, atol=1e-5)


@torch.no_grad()
def test_temporal_attention_is_per_pixel_attention_over_frames():
    torch.manual_seed(0)
    block = TemporalAttention(8, 2, max_frames=3, groups=2)
    torch.nn.init.normal_(block.attn.c_proj.weight, std=0.3)
    h = torch.randn(2 * 3, 8, 4, 4)  # (B*F, C, H, W), B = 2, F = 3
    out = block(h, 3)
    normed = block.norm(h).reshape(2, 3, 8, 4, 4)
    for b, (i, j) in [(0, (0, 0)), (1, (2, 3))]:  # one pixel's sequence of 3 frames, by hand
        seq = normed[b, :, :, i, j] + block.frame_embedding  # (F, C)
        expected = h.reshape(2, 3, 8, 4, 4)[b, :, :, i, j] + block.attn(seq[None])[0]
        assert torch.allclose(out.reshape(2, 3, 8, 4, 4)[b, :, :, i, j], expected, atol=1e-5)


@torch.no_grad()
def test_temporal_conv_is_a_3d_convolution_over_frames():
    torch.manual_seed(0)
    block = TemporalConv(8, groups=2)
    h = torch.randn(2 * 5, 8, 3, 3)  # B = 2 clips of F = 5 frames
    x = torch.nn.functional.silu(block.norm(h)).reshape(2, 5, 8, 3, 3).transpose(1, 2)  # (B, C, F, H, W)
    expected = h + block.conv(x).transpose(1, 2).reshape(10, 8, 3, 3)
    assert torch.allclose(block(h, 5), expected, atol=1e-5)
    assert torch.equal(block(h, 5, torch.tensor([False, False])), h)


def test_unet_bad_inputs_are_named():
    unet, ids = _tiny_unet()
    with pytest.raises(ValueError, match="x must have shape"):
        unet(torch.randn(2, 5, 3, 8, 8), torch.tensor([1, 2]), ids)  # more frames than max_frames
    with pytest.raises(ValueError, match="temporal"):
        unet(torch.randn(2, 4, 3, 8, 8), torch.tensor([1, 2]), ids, temporal=torch.tensor([1, 0]))


def test_a_few_training_steps_lower_the_loss_and_give_a_pipeline():
    recipe = TextToVideoRecipe(num_clips=8, num_frames=3, image_size=8, channels=(16, 16), emb_dim=16, text_width=16,
                               text_layers=1, num_heads=2, attention_resolution=4, temporal_resolution=8,
                               cross_attention_resolution=8, steps=8, batch_size=4, warmup=2)
    pipe, report = train_text_to_video(recipe, progress=False)
    loss = report["history"].loss
    assert len(loss) == 8 and sum(loss[-3:]) < sum(loss[:3])
    clips = pipe("a small red circle moving left", num_frames=3, num_inference_steps=2, seed=0)
    assert clips.shape == (1, 3, 3, 8, 8)
    value = video_loss(pipe.unet, pipe.schedule, torch.zeros(2, 3, 3, 8, 8), pipe.encode_prompt(["a red cross moving up"] * 2),
                       torch.tensor([True, False]), snr_gamma=5.0)
    assert value.ndim == 0 and value > 0


@torch.no_grad()
def test_a_v_model_returns_the_noise_and_trains_on_the_velocity():
    from aigc_course.diffusion import NoiseSchedule
    from aigc_course.diffusion.schedule import noise_from_velocity

    unet, ids = _tiny_unet(prediction="v", schedule="cosine", timesteps=100)
    schedule = NoiseSchedule("cosine", 100)
    x, t = torch.randn(2, 4, 3, 8, 8), torch.tensor([3, 99])
    torch.testing.assert_close(unet(x, t, ids), noise_from_velocity(schedule.alphas_cumprod, x, t, unet.network_output(x, t, ids)))
    x0 = torch.randn(2, 4, 3, 8, 8)
    draw = torch.Generator().manual_seed(0)
    t = torch.randint(100, (2,), generator=draw)
    noise = torch.randn(x0.shape, generator=draw)
    expected = (unet.network_output(schedule.q_sample(x0, t, noise), t, ids) - schedule.velocity(x0, t, noise)).pow(2).mean()
    value = video_loss(unet, schedule, x0, ids, torch.tensor([True, True]), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(value, expected)
    # the per-clip temporal flag reaches the network: frames denoised alone give their own loss
    alone = torch.tensor([False, False])
    expected_alone = (unet.network_output(schedule.q_sample(x0, t, noise), t, ids, alone)
                      - schedule.velocity(x0, t, noise)).pow(2).mean()
    value_alone = video_loss(unet, schedule, x0, ids, alone, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(value_alone, expected_alone)
    assert not torch.isclose(value_alone, value)
    with pytest.raises(ValueError, match="prediction must be one of"):
        _tiny_unet(prediction="x0")


# --------------------------------------------------------------------------- the shipped pipeline


@pytest.fixture(scope="module")
def shipped():
    return pretrained.load("text-to-video", device="cpu")


@torch.no_grad()
def test_shipped_pipeline_shape_range_and_seed(shipped):
    prompts = ["a small red circle moving left", "a large blue square moving down"]
    clips = shipped(prompts, num_inference_steps=3, seed=1)
    s = shipped.image_size
    assert clips.shape == (2, 8, 3, s, s) and clips.min() >= 0 and clips.max() <= 1
    assert torch.equal(clips, shipped(prompts, num_inference_steps=3, seed=1))
    assert not torch.equal(clips, shipped(prompts, num_inference_steps=3, seed=2))
    assert shipped(prompts[0], num_frames=4, num_inference_steps=2, seed=0).shape == (1, 4, 3, s, s)
    info = pretrained.info("text-to-video")
    assert info["bytes"] < 3_000_000 and shipped.config["train_seconds"] > 0


@pytest.mark.parametrize("prompt, kwargs, name", [
    ("", {}, "prompt"), ([], {}, "prompt"), ("a small purple circle moving left", {}, "prompt"),
    (["a red circle moving up", 3], {}, r"prompt\[1\]"),
    ("a red circle moving up", {"num_frames": 0}, "num_frames"),
    ("a red circle moving up", {"num_frames": 9}, "num_frames"),
    ("a red circle moving up", {"num_inference_steps": 0}, "num_inference_steps"),
    ("a red circle moving up", {"guidance_scale": True}, "guidance_scale"),
    ("a red circle moving up", {"temporal": "no"}, "temporal"),
])
def test_shipped_pipeline_bad_inputs_are_named(shipped, prompt, kwargs, name):
    with pytest.raises(ValueError, match=name):
        shipped(prompt, **kwargs)


# --------------------------------------------------------------------------- judges


def test_judges_are_right_on_real_clips():
    for split in ("train", "held_out"):
        videos, _, attributes = moving_scenes(40, seed=11, split=split, image_size=16)
        scores = video_scores(videos, attributes)
        assert scores["motion"] == 1.0 and scores["attributes"] >= 0.99 and scores["consistent"] >= 0.99, scores


def test_judges_see_reversed_and_shuffled_clips():
    videos, _, attributes = moving_scenes(6, seed=5, image_size=16)
    opposite = {"left": "right", "right": "left", "up": "down", "down": "up"}
    reversed_clips = videos.flip(1)
    assert video_scores(reversed_clips, [{**a, "motion": opposite[a["motion"]]} for a in attributes])["motion"] == 1.0
    shuffled = videos[:, [0, 7, 1, 6, 2, 5, 3, 4]]
    assert video_scores(shuffled, attributes)["steady"] == 0.0
    assert video_scores(torch.zeros(2, 8, 3, 16, 16), attributes[:2])["motion"] == 0.0  # empty frames: no motion
    assert read_clip(torch.zeros(8, 3, 16, 16))["motion"] == "none"
    wrong = [{**a, "colour": "red" if a["colour"] != "red" else "blue"} for a in attributes]
    assert video_scores(videos, wrong)["attributes"] == 0.0
    with pytest.raises(ValueError, match="clips"):
        video_scores(videos[0], attributes)
    with pytest.raises(ValueError, match="attributes"):
        video_scores(videos, attributes[:2])
    assert set(MOTIONS) == {"left", "right", "up", "down"}

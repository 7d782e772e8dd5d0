"""The captioner: vocabulary, model, pipeline, scores, and the shipped checkpoint."""

import pytest
import torch

from aigc_course import pretrained
from aigc_course.captioning import (
    Captioner,
    CaptionPipeline,
    CaptionVocabulary,
    PatchEncoder,
    caption_scores,
)
from aigc_course.data import captioned_scenes, scenes

TINY = {"vocab_size": 26, "block_size": 12, "image_size": 32, "patch_size": 8, "n_embd": 32, "n_head": 2,
        "encoder_layers": 1, "decoder_layers": 1}


@pytest.fixture(scope="module")
def tiny_pipe():
    torch.manual_seed(0)
    return CaptionPipeline(Captioner(**TINY), CaptionVocabulary())


def test_vocabulary_round_trip_and_teacher_forcing():
    voc = CaptionVocabulary()
    text = "a red circle above a blue square"
    ids = voc.encode(text)
    assert ids[0] == voc.bos_id and ids[-1] == voc.eos_id and voc.decode(ids) == text
    idx, targets = voc.batch([text, "a small red circle at the top"], 11)
    assert idx.shape == targets.shape == (2, 11)
    assert torch.equal(idx[0, 1:8], targets[0, :7]) and targets[0, 7] == voc.eos_id and targets[0, 8] == -1
    assert CaptionVocabulary.from_dict(voc.to_dict()).itos == voc.itos
    with pytest.raises(ValueError, match="vocabulary"):
        voc.encode("a purple circle")


def test_patch_encoder_shapes_and_patch_order():
    enc = PatchEncoder(image_size=32, patch_size=8, n_embd=16, n_layer=1, n_head=2).eval()
    assert enc(torch.rand(2, 3, 32, 32)).shape == (2, 16, 16)
    # patch k of the row-major grid is the k-th token: change one patch, see which token's input moves
    x = torch.zeros(1, 3, 32, 32)
    y = x.clone()
    y[..., 8:16, 24:32] = 1  # grid row 1, column 3
    moved = (enc.patchify(y) - enc.patchify(x)).flatten(2).abs().sum(1)[0]
    assert moved.nonzero().flatten().tolist() == [1 * 4 + 3]


def test_pipeline_greedy_beams_and_word_attention(tiny_pipe):
    images = captioned_scenes(3, seed=1)[0]
    greedy = tiny_pipe(images)
    assert isinstance(greedy, list) and len(greedy) == 3 and all(isinstance(c, str) for c in greedy)
    ids = tiny_pipe.token_ids(images)
    assert ids.shape == (3, 12) and torch.all(ids[:, 0] == 0) and torch.all(ids[:, 1:] != 0)  # <bos> only first
    assert tiny_pipe(images, num_beams=1) == greedy
    assert len(tiny_pipe(images, num_beams=3)) == 3
    words, maps = tiny_pipe.word_attention(images[0])
    assert maps.shape == (len(words), 4, 4)
    assert torch.allclose(maps.sum((1, 2)), torch.ones(len(words)), atol=1e-5)
    assert tiny_pipe(images[:1], batch_size=1) == greedy[:1]


@pytest.mark.parametrize(("images", "options", "argument"), [
    (torch.rand(2, 3, 16, 16), {}, "images"),
    (torch.rand(0, 3, 32, 32), {}, "images"),
    (torch.rand(2, 32, 32), {}, "images"),
    (torch.rand(2, 3, 32, 32) * 255, {}, "images"),
    (torch.rand(2, 3, 32, 32) - 0.5, {}, "images"),
    (torch.full((1, 3, 32, 32), float("nan")), {}, "images"),
    (torch.randint(0, 2, (2, 3, 32, 32)), {}, "images"),
    ([[0.0]], {}, "images"),
    (torch.rand(2, 3, 32, 32), {"num_beams": 0}, "num_beams"),
    (torch.rand(1, 3, 16, 16), {"num_beams": 0}, "num_beams"),
    (torch.rand(2, 3, 32, 32), {"num_beams": 2.0}, "num_beams"),
    (torch.rand(2, 3, 32, 32), {"batch_size": 0}, "batch_size"),
])
def test_bad_inputs_name_the_argument(tiny_pipe, images, options, argument):
    with pytest.raises(ValueError, match=argument):
        tiny_pipe(images, **options)


def test_caption_scores_use_the_canonical_form():
    _, _, attrs = captioned_scenes(40, seed=5)
    truth = [scenes.caption(a) for a in attrs]
    assert caption_scores(truth, attrs)["exact"] == 1.0
    pair = next(a for a in attrs if "relation" in a)
    flipped = {**pair, "relation": {"above": "below", "below": "above", "left of": "right of",
                                    "right of": "left of"}[pair["relation"]],
               "shape_1": pair["shape_2"], "colour_1": pair["colour_2"],
               "shape_2": pair["shape_1"], "colour_2": pair["colour_1"]}
    assert caption_scores([scenes.caption(flipped)], [pair])["exact"] == 1.0
    single = next(a for a in attrs if "size" in a)
    wrong = {**single, "colour": next(c for c in scenes.COLOURS if c != single["colour"])}
    scores = caption_scores([scenes.caption(wrong), "not a caption"], [single, single])
    assert scores["exact"] == 0.0 and scores["shape"] == 0.5 and scores["colour"] == 0.0
    with pytest.raises(ValueError, match="captions"):
        caption_scores([], [])


@pytest.mark.skipif("captioner" not in pretrained.available(), reason="the captioner checkpoint is not shipped")
def test_shipped_captioner_reads_training_compositions():
    pipe = pretrained.load("captioner")
    images, _, attributes = captioned_scenes(64, seed=31, split="train")
    assert caption_scores(pipe(images), attributes)["exact"] >= 0.85
    assert caption_scores(pipe(images, num_beams=3), attributes)["exact"] >= 0.85

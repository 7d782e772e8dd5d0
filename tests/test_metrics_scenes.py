"""The scene judge and the CLIP-style score (Chapter 5)."""

from __future__ import annotations

import pytest
import torch

from aigc_course import pretrained
from aigc_course.data import captioned_scenes, parse_caption
from aigc_course.metrics.scenes import HEADS, IGNORE, SceneJudge, judge_scores, judge_targets


def test_targets_use_the_canonical_form_and_ignore_heads_that_do_not_apply():
    attrs = [parse_caption("a red circle below a blue square"), parse_caption("a small green cross at the top")]
    t = judge_targets(attrs)
    assert set(t) == set(HEADS)
    assert t["count"].tolist() == [1, 0]
    # canonical: the blue square (top) is object 1, the relation is "above"
    assert HEADS["shape_1"][t["shape_1"][0]] == "square" and HEADS["colour_1"][t["colour_1"][0]] == "blue"
    assert HEADS["relation"][t["relation"][0]] == "above"
    assert t["shape"][0] == IGNORE and t["relation"][1] == IGNORE
    assert HEADS["position"][t["position"][1]] == "top"
    with pytest.raises(ValueError, match="attributes must be a list"):
        judge_targets(attrs[0])


class _Fixed(SceneJudge):
    """A judge that reads every image as the given canonical scene."""

    def __init__(self, reading: dict[str, str]):
        super().__init__(width=8, hidden=8)
        self.reading = reading

    def forward(self, images):
        out = {}
        for name, values in HEADS.items():
            logits = torch.zeros(len(images), len(values))
            value = self.reading.get(name)
            if value is not None:
                logits[:, values.index(value)] = 1.0
            out[name] = logits
        return out


def test_scores_count_a_wrong_object_count_against_every_attribute():
    asked = [parse_caption("a blue square above a red circle"), parse_caption("a red circle below a blue square")]
    reading = {"count": "two", "shape_1": "square", "colour_1": "blue", "relation": "above", "shape_2": "circle",
               "colour_2": "red"}
    scores = judge_scores(torch.zeros(2, 3, 32, 32), asked, judge=_Fixed(reading))
    assert scores["all"] == 1.0 and scores["relation"] == 1.0  # both phrasings describe this picture
    wrong_count = judge_scores(torch.zeros(2, 3, 32, 32), asked, judge=_Fixed({**reading, "count": "one",
                                                                               "shape": "square"}))
    assert wrong_count["all"] == 0.0 and wrong_count["colour_1"] == 0.0 and wrong_count["count"] == 0.0
    swapped = judge_scores(torch.zeros(1, 3, 32, 32), asked[:1], judge=_Fixed({**reading, "colour_1": "red",
                                                                                "colour_2": "blue"}))
    assert swapped["all"] == 0.0 and swapped["shape_1"] == 1.0 and swapped["colour_1"] == 0.0
    with pytest.raises(ValueError, match="one dict per image"):
        judge_scores(torch.zeros(3, 3, 32, 32), asked, judge=_Fixed(reading))
    with pytest.raises(ValueError, match=r"images must be a tensor of shape \(N, 3, 32, 32\)"):
        judge_scores(torch.zeros(2, 1, 32, 32), asked, judge=_Fixed(reading))


@pytest.mark.skipif("scene-judge" not in pretrained.available(), reason="scene-judge not published")
@pytest.mark.parametrize("split", ["train", "held_out"])
def test_shipped_judge_reads_fresh_real_renders(split):
    images, _, attributes = captioned_scenes(400, seed=31337, split=split)
    scores = judge_scores(images, attributes, judge=pretrained.load("scene-judge", device="cpu"))
    assert all(v >= 0.99 for v in scores.values()), scores
    # and a blank canvas is not a scene of the grammar
    blank = judge_scores(torch.zeros(len(images), 3, 32, 32), attributes, judge=pretrained.load("scene-judge", device="cpu"))
    assert blank["all"] < 0.05


def test_scene_clip_embeds_both_towers_and_scores_against_the_whole_grammar():
    from aigc_course.data import all_scene_attributes
    from aigc_course.data.scenes import caption
    from aigc_course.diffusion.text_conditioning import PromptTokenizer
    from aigc_course.metrics.scenes import SceneCLIP, clip_scores

    torch.manual_seed(0)
    tokenizer = PromptTokenizer.train([caption(a) for a in all_scene_attributes()])
    model = SceneCLIP(tokenizer.to_dict(), embed_dim=16, width=8, text_width=16, text_layers=1, num_heads=2).eval()
    assert model.config["tokenizer"] == tokenizer.to_dict()  # the config is plain JSON
    images, captions, _ = captioned_scenes(6, seed=0)
    u, v = model.encode_images(images), model.encode_texts(captions)
    assert u.shape == v.shape == (6, 16)
    torch.testing.assert_close(u.norm(dim=1), torch.ones(6))
    loss = model(images, captions)
    assert loss.ndim == 0 and loss > 0
    scores = clip_scores(images, captions, model)
    assert set(scores) == {"clip_score", "r_precision"} and -100 <= scores["clip_score"] <= 100
    with pytest.raises(ValueError, match=r"captions\[1\] = 'a purple circle' is not a caption of the scene grammar"):
        clip_scores(images[:2], [captions[0], "a purple circle"], model)
    with pytest.raises(ValueError, match="tokenizer must be a PromptTokenizer's to_dict"):
        SceneCLIP(tokenizer)

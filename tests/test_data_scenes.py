"""The captioned scenes of Chapter 5: determinism, the held-out split, the grammar, the renderer."""

import hashlib
import json
import random

import pytest
import torch

from aigc_course.data import (
    CAPTION_WORDS,
    HELD_OUT_PAIRS,
    PAIR_KEYS,
    SINGLE_KEYS,
    SceneObject,
    all_scene_attributes,
    canonical_attributes,
    captioned_scenes,
    parse_caption,
    render_scene,
    scenes,
)


def fingerprint(images, captions, attributes) -> str:
    pixels = (images * 255).round().to(torch.uint8).numpy().tobytes()
    return hashlib.sha256(pixels + json.dumps([captions, attributes]).encode()).hexdigest()


def test_shapes_range_and_types():
    images, captions, attributes = captioned_scenes(40, seed=1)
    assert images.shape == (40, 3, 32, 32) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    assert torch.equal((images * 255).round() / 255, images)  # 8-bit values
    assert len(captions) == len(attributes) == 40
    for c, a in zip(captions, attributes, strict=True):
        assert isinstance(c, str) and isinstance(a, dict)
        assert set(a) in (set(SINGLE_KEYS), set(PAIR_KEYS))
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in a.items())
    kinds = [len(a) == len(PAIR_KEYS) and "relation" in a for a in attributes]
    assert 0 < sum(kinds) < 40  # both one- and two-object scenes
    small = captioned_scenes(3, seed=1, image_size=16)[0]
    assert small.shape == (3, 3, 16, 16)


def test_same_arguments_same_bytes_and_prefix_stability():
    a = captioned_scenes(24, seed=5, split="held_out")
    b = captioned_scenes(24, seed=5, split="held_out")
    assert fingerprint(*a) == fingerprint(*b)
    prefix = captioned_scenes(10, seed=5, split="held_out")
    assert torch.equal(prefix[0], a[0][:10]) and prefix[1] == a[1][:10] and prefix[2] == a[2][:10]
    other = captioned_scenes(24, seed=6, split="held_out")
    assert other[1] != a[1]


@pytest.mark.parametrize("split, expected", [
    ("train", "8828ed62980fca3cfa75b66a230305b92ecf332addabef9dfcc910b3ddb13fae"),
    ("held_out", "a6639b3fffee6a449ba7c05d44a49fc949e6cccdc8368969cf438f2bce2b6f71"),
])
def test_same_bytes_on_every_machine(split, expected):
    # Pinned once: any change to the grammar, the sampling order or the renderer changes it,
    # and with it every checkpoint trained on these scenes.
    assert fingerprint(*captioned_scenes(16, seed=3, split=split)) == expected


def test_held_out_compositions_never_appear_in_training():
    _, train_captions, train_attrs = captioned_scenes(3000, seed=0, split="train")
    _, held_captions, held_attrs = captioned_scenes(1000, seed=0, split="held_out")
    assert not set(train_captions) & set(held_captions)
    for a in train_attrs:
        assert not set(scenes.object_pairs(a)) & set(HELD_OUT_PAIRS)
    for a in held_attrs:
        assert set(scenes.object_pairs(a)) & set(HELD_OUT_PAIRS)
    # ... yet every colour and every shape is seen in training, and every held-out pair shows up
    seen = {pair for a in train_attrs for pair in scenes.object_pairs(a)}
    assert {c for c, _ in seen} == set(scenes.COLOURS) and {s for _, s in seen} == set(scenes.SHAPES)
    held = {pair for a in held_attrs for pair in scenes.object_pairs(a)}
    assert set(HELD_OUT_PAIRS) <= held


def test_grammar_enumeration_and_split_sizes():
    everything = all_scene_attributes()
    train, held = all_scene_attributes("train"), all_scene_attributes("held_out")
    assert len(everything) == 4 * 4 * 2 * 9 + (4 * 4) ** 2 * 4 == 1312
    assert len(train) + len(held) == len(everything)
    assert len(train) == 12 * 2 * 9 + 12 * 12 * 4  # 12 allowed (colour, shape) pairs
    captions = [scenes.caption(a) for a in everything]
    assert len(set(captions)) == len(captions)  # the caption determines the scene


def test_captions_parse_back_to_their_attributes():
    _, captions, attributes = captioned_scenes(200, seed=2, split="held_out")
    for c, a in zip(captions, attributes, strict=True):
        assert parse_caption(c) == a
        assert set(c.split()) <= set(CAPTION_WORDS)
    assert parse_caption("  A small red circle at the TOP left. ") == {
        "shape": "circle", "colour": "red", "size": "small", "position": "top left"}
    with pytest.raises(ValueError, match=r"words outside the grammar: \['purple'\]"):
        parse_caption("a small purple circle at the top left")
    with pytest.raises(ValueError, match="not in this order"):
        parse_caption("circle red a small at the top left")
    with pytest.raises(ValueError, match="text must be a str"):
        parse_caption(3)


def test_canonical_form_names_the_top_or_left_object_first():
    below = parse_caption("a red circle below a blue square")
    assert canonical_attributes(below) == parse_caption("a blue square above a red circle")
    right = parse_caption("a green cross to the right of a yellow triangle")
    assert canonical_attributes(right) == parse_caption("a yellow triangle to the left of a green cross")
    single = parse_caption("a large blue cross in the middle")
    assert canonical_attributes(single) == single and canonical_attributes(single) is not single


def _centroid(image: torch.Tensor) -> tuple[float, float]:
    mass = image.sum(0)
    ys, xs = torch.meshgrid(torch.arange(mass.shape[0]), torch.arange(mass.shape[1]), indexing="ij")
    return float((mass * xs).sum() / mass.sum()), float((mass * ys).sum() / mass.sum())


def test_renderer_places_objects_at_sub_pixel_positions():
    red = (1.0, 0.0, 0.0)
    xs = []
    for x in (0.40, 0.41, 0.42, 0.43):  # steps of 0.32 pixel at 32x32
        image = render_scene([SceneObject("circle", red, x, 0.5, 0.15)])
        assert image[1:].abs().max() == 0  # only the red channel
        xs.append(_centroid(image)[0])
    steps = [b - a for a, b in zip(xs, xs[1:], strict=False)]
    assert all(0.2 < s < 0.45 for s in steps), steps  # the centroid moves by about 0.32 px each time
    # the centroid is where the object was put: x * 32 - 0.5 in pixel-centre coordinates
    cx, cy = _centroid(render_scene([SceneObject("square", red, 0.3, 0.6, 0.1)], image_size=64))
    assert abs(cx - (0.3 * 64 - 0.5)) < 0.05 and abs(cy - (0.6 * 64 - 0.5)) < 0.05
    # partly outside the canvas is clipped; wholly outside draws nothing
    assert render_scene([SceneObject("cross", red, -0.5, 0.5, 0.1)]).abs().max() == 0
    assert render_scene([SceneObject("cross", red, 0.0, 0.5, 0.1)]).sum() > 0


def test_later_objects_paint_over_earlier_ones_and_shapes_differ():
    a = SceneObject("square", (1.0, 0.0, 0.0), 0.5, 0.5, 0.2)
    b = SceneObject("circle", (0.0, 0.0, 1.0), 0.5, 0.5, 0.1)
    image = render_scene([a, b])
    assert image[2, 16, 16] == 1 and image[0, 16, 16] == 0  # the circle on top at the centre
    masks = {s: render_scene([SceneObject(s, (1.0, 1.0, 1.0), 0.5, 0.5, 0.3)])[0] for s in scenes.SHAPES}
    names = list(masks)
    for i, s in enumerate(names):
        for t in names[i + 1:]:
            assert (masks[s] - masks[t]).abs().sum() > 20, (s, t)


def test_pair_layout_matches_the_relation():
    rng = random.Random(0)
    for relation in scenes.RELATIONS:
        attrs = {"shape_1": "circle", "colour_1": "red", "relation": relation,
                 "shape_2": "square", "colour_2": "blue"}
        first, second = scenes.scene_objects(attrs, rng)
        dx, dy = second.x - first.x, second.y - first.y
        expected = {"above": dy > 0.3, "below": dy < -0.3, "left of": dx > 0.3, "right of": dx < -0.3}
        assert expected[relation] and min(abs(dx), abs(dy)) <= 0.06, (relation, dx, dy)


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "n must be a positive int"),
    ({"n": True}, "n must be a positive int"),
    ({"n": 2.0}, "n must be a positive int"),
    ({"n": 2, "seed": -1}, "seed must be a non-negative int"),
    ({"n": 2, "seed": True}, "seed must be a non-negative int"),
    ({"n": 2, "split": "test"}, "split must be one of"),
    ({"n": 2, "image_size": 4}, "image_size must be an int >= 8"),
])
def test_bad_arguments_name_themselves(kwargs, match):
    with pytest.raises(ValueError, match=match):
        captioned_scenes(**kwargs)


def test_bad_scene_objects_and_attributes():
    with pytest.raises(ValueError, match="shape must be one of"):
        SceneObject("star", (1, 0, 0), 0.5, 0.5, 0.1)
    with pytest.raises(ValueError, match="rgb must be three values"):
        SceneObject("circle", (2, 0, 0), 0.5, 0.5, 0.1)
    with pytest.raises(ValueError, match="radius must be positive"):
        SceneObject("circle", (1, 0, 0), 0.5, 0.5, 0.0)
    with pytest.raises(ValueError, match="objects must be SceneObject"):
        render_scene(["circle"])
    with pytest.raises(ValueError, match="attributes must have the keys"):
        scenes.caption({"shape": "circle"})
    with pytest.raises(ValueError, match=r"attributes\['colour'\] must be one of"):
        scenes.caption({"shape": "circle", "colour": "pink", "size": "small", "position": "top"})

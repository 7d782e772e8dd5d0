"""The tiny CLIP: InfoNCE by hand, shapes, zero-shot on an easy case, clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from aigc_course.data import DIGIT_NAMES
from aigc_course.multimodal import (
    HELD_OUT_TEMPLATES,
    TRAIN_TEMPLATES,
    TinyCLIP,
    Vocabulary,
    caption,
    clip_loss,
    sample_pairs,
    train_clip,
    words,
    zero_shot_accuracy,
)


def test_info_nce_matches_a_hand_computation():
    u = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # normalised inside: rows (1,0) and (0,1)
    v = torch.tensor([[3.0, 4.0], [0.0, -1.0]])  # normalised: (0.6, 0.8) and (0, -1)
    scale = 2.0
    # s = scale * u.v^T = [[1.2, 0], [1.6, -2]]
    s = [[1.2, 0.0], [1.6, -2.0]]

    def ce(row, target):
        return -(row[target] - math.log(sum(math.exp(r) for r in row)))

    rows = (ce(s[0], 0) + ce(s[1], 1)) / 2
    cols = (ce([s[0][0], s[1][0]], 0) + ce([s[0][1], s[1][1]], 1)) / 2
    expected = (rows + cols) / 2
    assert float(clip_loss(u, v, scale)) == pytest.approx(expected, rel=1e-6)


def test_info_nce_limits():
    e = torch.eye(4)
    # perfectly aligned, orthogonal pairs: loss -> 0 as the scale grows
    assert float(clip_loss(e, e, 100.0)) < 1e-6
    # all embeddings equal: every row is uniform, loss = log B
    same = torch.ones(5, 3)
    assert float(clip_loss(same, same, 10.0)) == pytest.approx(math.log(5))


def test_vocabulary_and_captions():
    vocab = Vocabulary.from_templates()
    assert vocab.itos[0] == "<pad>" and len(vocab) == len(set(vocab.itos))
    assert caption("the number {name}", 7) == "the number seven"
    assert caption("a photo of the digit {digit}", 3) == "a photo of the digit 3"
    ids, mask = vocab.encode(["a handwritten seven", "the number 7 written by hand"])
    assert ids.shape == mask.shape == (2, 6) and mask.sum(1).tolist() == [3, 6]
    assert [vocab.itos[i] for i in ids[0, :3]] == ["a", "handwritten", "seven"]
    # held-out phrasings use only known words, in new combinations
    for t in HELD_OUT_TEMPLATES:
        assert t not in TRAIN_TEMPLATES
        for c in range(10):
            assert all(w in vocab.stoi for w in words(caption(t, c)))


@pytest.mark.parametrize(
    ("texts", "match"),
    [(["a handwritten zebra"], r"texts\[0\].*outside the vocabulary: \['zebra'\]"),
     (["the number 7", "  ,. "], r"texts\[1\].*empty"),
     ([], "non-empty list"),
     ("a handwritten seven", "non-empty list")],
)
def test_bad_text_raises_naming_the_argument(texts, match):
    with pytest.raises(ValueError, match=match):
        Vocabulary.from_templates().encode(texts)


def test_shapes_and_batch_mismatch():
    torch.manual_seed(0)
    model = TinyCLIP(Vocabulary.from_templates(), embed_dim=16)
    images = torch.rand(3, 1, 8, 8)
    texts = ["a handwritten one", "the number 2", "a blurry three"]
    assert model.encode_images(images).shape == (3, 16)
    t = model.encode_texts(texts)
    assert t.shape == (3, 16) and torch.allclose(t.norm(dim=1), torch.ones(3))
    assert model.similarity(images, texts[:2]).shape == (3, 2)
    assert model(images, texts).dim() == 0
    assert model.class_embeddings().shape == (10, 16)
    with pytest.raises(ValueError, match="one string per image"):
        model(images, texts[:2])
    with pytest.raises(ValueError, match="same number of pairs"):
        clip_loss(torch.rand(3, 4), torch.rand(2, 4), 1.0)
    with pytest.raises(ValueError, match="same width"):
        clip_loss(torch.rand(3, 4), torch.rand(3, 5), 1.0)
    with pytest.raises(ValueError, match=r"images must be a \(B, 1, 8, 8\)"):
        model.encode_images(torch.rand(3, 64))
    with pytest.raises(ValueError, match="k must be"):
        model.retrieve("a handwritten one", images, k=4)
    with pytest.raises(ValueError, match="label must be"):
        caption("the number {name}", 10)


def easy_digits(n_per_class: int = 20):
    """Class c is a single bright pixel at position c (plus faint noise): trivially separable."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(10).repeat_interleave(n_per_class)
    images = 0.05 * torch.rand(len(labels), 1, 8, 8, generator=gen)
    images.view(len(labels), -1)[torch.arange(len(labels)), labels * 6] = 1.0
    return images, labels


def test_zero_shot_on_a_trivially_separable_case():
    torch.manual_seed(0)
    images, labels = easy_digits()
    model = TinyCLIP(Vocabulary.from_templates(), embed_dim=16, channels=8, hidden=32)
    history = train_clip(model, images, labels, num_steps=150, groups=4, augment=False, progress=False)
    assert history.loss[-1] < history.loss[0]
    assert zero_shot_accuracy(model, images, labels) == 1.0
    assert zero_shot_accuracy(model, images, labels, HELD_OUT_TEMPLATES) >= 0.9
    idx, scores = model.retrieve("a handwritten " + DIGIT_NAMES[4], images, k=5)
    assert (labels[idx] == 4).all() and scores.shape == (5,) and (scores[:-1] >= scores[1:]).all()


def test_sample_pairs_has_one_pair_per_class():
    images, labels = easy_digits(3)
    x, texts, y = sample_pairs(images, labels, torch.Generator().manual_seed(1))
    assert x.shape == (10, 1, 8, 8) and len(texts) == 10 and sorted(y.tolist()) == list(range(10))
    assert all(DIGIT_NAMES[c] in t or str(c) in t.split() for t, c in zip(texts, y.tolist(), strict=True))
    assert torch.equal(x.view(10, -1).argmax(1), y * 6)

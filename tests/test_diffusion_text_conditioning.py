"""Prompt tokenizer, text encoder, spatial cross-attention and caption dropout (Chapter 5)."""

from __future__ import annotations

import pytest
import torch

from aigc_course.data import CAPTION_WORDS, all_scene_attributes
from aigc_course.data.scenes import caption
from aigc_course.diffusion.text_conditioning import (
    PromptTokenizer,
    SpatialCrossAttention,
    TextEncoder,
    drop_captions,
)


@pytest.fixture(scope="module")
def tokenizer() -> PromptTokenizer:
    return PromptTokenizer.train([caption(a) for a in all_scene_attributes("train")])


def test_every_caption_word_is_one_token_and_round_trips(tokenizer):
    assert set(tokenizer.vocabulary) == set(CAPTION_WORDS)
    for word in CAPTION_WORDS:
        assert len(tokenizer.bpe.encode(" " + word)) == 1, word
    text = "a small red circle at the top left"
    ids = tokenizer.tokens(text)
    assert ids[0] == tokenizer.start_id and len(ids) == 1 + len(text.split())
    assert tokenizer.bpe.decode(ids[1:]) == text
    assert tokenizer.token_strings(text) == ["<start>", "a", " small", " red", " circle", " at", " the", " top", " left"]


def test_batch_padding_mask_and_the_null_prompt(tokenizer):
    ids, mask = tokenizer(["a red circle above a blue square", "", "A Small red circle at the top left."])
    assert ids.shape == mask.shape == (3, tokenizer.context_length)
    assert mask.sum(1).tolist() == [8, 1, 9]
    assert ids[1, 0] == tokenizer.start_id and torch.all(ids[1, 1:] == tokenizer.pad_id)
    assert torch.equal(tokenizer.mask_of(ids), mask)
    assert torch.equal(ids[2], tokenizer(["a small red circle at the top left"])[0][0])  # normalised
    assert tokenizer.vocab_size == tokenizer.pad_id + 1


def test_tokenizer_round_trips_through_its_dict(tokenizer):
    copy = PromptTokenizer.from_dict(tokenizer.to_dict())
    prompts = ["a green cross to the right of a yellow triangle", ""]
    assert torch.equal(copy(prompts)[0], tokenizer(prompts)[0])


def test_prompt_errors_name_the_argument(tokenizer):
    with pytest.raises(ValueError, match=r"prompt must be a str, got int"):
        tokenizer.tokens(3)
    with pytest.raises(ValueError, match=r"never trained on: \['purple', 'star'\]. Known words: a, above"):
        tokenizer.tokens("a purple star at the top")
    long = "a red circle above a blue square to the left of a green cross below a yellow triangle"
    with pytest.raises(ValueError, match=r"is 18 tokens long; the text encoder's context holds 15"):
        tokenizer.tokens(long)
    with pytest.raises(ValueError, match=r"prompt\[1\] must be a str"):
        tokenizer(["a red circle above a blue square", None])
    with pytest.raises(ValueError, match="must be a list of strings"):
        tokenizer("a red circle above a blue square")
    with pytest.raises(ValueError, match="context_length must be an int >= 2"):
        PromptTokenizer(tokenizer.bpe, 1)


def test_text_encoder_shapes_and_padding_independence(tokenizer):
    torch.manual_seed(0)
    encoder = TextEncoder(tokenizer.vocab_size, tokenizer.context_length, width=32, num_layers=2, num_heads=4).eval()
    ids, mask = tokenizer(["a red circle above a blue square", "a small blue cross in the middle"])
    out = encoder(ids, mask)
    assert out.shape == (2, tokenizer.context_length, 32)
    assert TextEncoder.pooled(out).shape == (2, 32)
    # a real token's features do not depend on what the padding holds
    other = ids.clone()
    other[~mask] = 5
    torch.testing.assert_close(encoder(other, mask)[mask], out[mask])
    # word order matters: the encoder is not a bag of words
    swapped, swapped_mask = tokenizer(["a blue square above a red circle"])
    assert not torch.allclose(TextEncoder.pooled(encoder(swapped, swapped_mask)), TextEncoder.pooled(out[:1]), atol=1e-4)
    with pytest.raises(ValueError, match="ids must be"):
        encoder(ids.float(), mask)


def test_spatial_cross_attention_keeps_the_shape_and_records_weights():
    from aigc_course.attention import record_attention

    torch.manual_seed(0)
    block = SpatialCrossAttention(16, context_dim=32, num_heads=4).eval()
    h, context = torch.randn(2, 16, 4, 4), torch.randn(2, 6, 32)
    mask = torch.tensor([[True] * 3 + [False] * 3, [True] * 6])
    out = block(h, context, mask)
    assert out.shape == h.shape
    with record_attention(block) as recorded:
        torch.testing.assert_close(block(h, context, mask), out)
    (weights,) = recorded
    assert weights.shape == (2, 4, 16, 6)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 16))
    assert torch.all(weights[0, ..., 3:] == 0)


def test_drop_captions_replaces_with_the_empty_caption_at_the_rate_asked():
    captions = [f"caption {i}" for i in range(4000)]
    g = torch.Generator().manual_seed(0)
    dropped = drop_captions(captions, 0.2, g)
    empty = [d == "" for d in dropped]
    assert abs(sum(empty) / len(empty) - 0.2) < 0.02
    assert all(d == c for d, c, e in zip(dropped, captions, empty, strict=True) if not e)
    # the same generator state gives the same batch; one draw per caption
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert drop_captions(captions[:10], 0.5, g1) == drop_captions(captions[:10], 0.5, g2)
    assert drop_captions(captions[:5], 0.0) == captions[:5]
    assert drop_captions(captions[:5], 1.0) == [""] * 5
    with pytest.raises(ValueError, match=r"p_uncond must be in \[0, 1\]"):
        drop_captions(captions, 1.5)
    with pytest.raises(ValueError, match="captions must be a list of strings"):
        drop_captions("a red circle", 0.1)

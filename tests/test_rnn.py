import math

import pytest
import torch

from aigc_course.data import encode_chars
from aigc_course.rnn import CharLSTM, CharLSTMConfig, random_windows

TEXT = "def add(a, b):\n    return a + b\n" * 40


def small_model(seed=0):
    torch.manual_seed(seed)
    return CharLSTM(CharLSTMConfig(embed_dim=8, hidden_size=16))


def test_untrained_model_is_close_to_uniform():
    bpc = small_model().bits_per_char(TEXT)
    assert abs(bpc - math.log2(96)) < 0.3


def test_log2_probs_match_a_single_full_pass():
    model = small_model()
    ids = encode_chars(TEXT)
    logits, _ = model(ids[None, :-1])
    direct = torch.log_softmax(logits[0], -1).gather(-1, ids[1:, None])[:, 0] / math.log(2)
    chunked = model.log2_probs(TEXT, chunk=100, streams=1)
    assert chunked.shape == (len(TEXT) - 1,)
    assert torch.allclose(chunked, direct, atol=1e-5)


def test_parallel_streams_only_lose_context_at_stream_starts():
    model = small_model()
    one = model.log2_probs(TEXT, chunk=64, streams=1)
    many = model.log2_probs(TEXT, chunk=64, streams=4)
    assert many.shape == one.shape
    assert torch.allclose(one[:64], many[:64], atol=1e-5)


def test_training_reduces_bits_per_char():
    model = small_model()
    ids = encode_chars(TEXT)
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = model.bits_per_char(TEXT)
    for _ in range(60):
        x, y = random_windows(ids, 8, 32, gen)
        loss = model.loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.bits_per_char(TEXT) < before - 2


def test_generate_is_seeded_and_extends_prompt():
    model = small_model()
    a = model.generate("def ", 20, generator=torch.Generator().manual_seed(1))
    b = model.generate("def ", 20, generator=torch.Generator().manual_seed(1))
    assert a == b and a.startswith("def ") and len(a) == 24


def test_bad_inputs():
    model = small_model()
    with pytest.raises(ValueError, match=r"idx must have shape \(B, T\)"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
        model.generate("x", 3, temperature=-1)
    with pytest.raises(ValueError, match="prompt must be a non-empty string"):
        model.generate("", 3)
    with pytest.raises(ValueError, match="too short"):
        random_windows(torch.arange(10), 2, 20)
    with pytest.raises(ValueError, match="sizes must be positive"):
        CharLSTM(CharLSTMConfig(hidden_size=0))

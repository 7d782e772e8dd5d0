"""The autoregressive route (chapter 2.1.1): exact likelihoods, causality, sampling, input checks."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from aigc_course import pretrained
from aigc_course.autoregressive import (
    NUM_PIXELS,
    PIXEL_LEVELS,
    DiscreteAutoregressive,
    PixelGPT,
    PixelGPTPipeline,
    PointGPT,
    digits_to_tokens,
    tokens_to_digits,
)
from aigc_course.data import load_digits


def _scrambled(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random, non-trivial weights (a fresh GPT is nearly uniform, which would hide bugs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model.eval()


def test_discrete_log_prob_normalises_over_all_sequences():
    model = _scrambled(DiscreteAutoregressive(length=3, vocab=4, n_layer=1, n_head=2, n_embd=8))
    every = torch.tensor(list(itertools.product(range(4), repeat=3)))  # all 64 sequences
    total = float(model.log_prob(every).detach().double().exp().sum())
    assert total == pytest.approx(1.0, abs=1e-5)


def test_pixel_conditionals_normalise_and_match_log_likelihood():
    model = _scrambled(PixelGPT(n_layer=1, n_head=2, n_embd=16, dropout=0.0))
    x = load_digits().x_test[:5]
    logp = model.conditionals(digits_to_tokens(x)).detach()
    assert logp.shape == (5, NUM_PIXELS, PIXEL_LEVELS)
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(5, NUM_PIXELS))
    tokens = digits_to_tokens(x)
    manual = logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).sum(1)
    torch.testing.assert_close(model.log_likelihood(x), manual)
    assert (model.log_likelihood(x) < 0).all()


def test_point_density_integrates_to_one():
    model = _scrambled(PointGPT(bins=16, lim=2.0, n_layer=1, n_head=2, n_embd=8), seed=1)
    cells = 64  # 4 grid cells per bin: the density is constant inside each bin
    h = 4.0 / cells
    centres = -2.0 + h * (torch.arange(cells) + 0.5)
    grid = torch.cartesian_prod(centres, centres)
    mass = float(model.log_density(grid).double().exp().sum()) * h * h
    assert mass == pytest.approx(1.0, abs=1e-4)
    assert model.log_density(torch.tensor([[2.5, 0.0], [0.0, -3.0]])).isinf().all()


def test_point_log_density_is_bin_probability_over_area():
    model = _scrambled(PointGPT(bins=10, lim=1.0, n_layer=1, n_head=2, n_embd=8), seed=2)
    p = torch.tensor([[0.05, -0.93]])
    tokens = model.quantise(p)
    assert tokens.tolist() == [[5, 0]]
    expected = model.log_prob(tokens) - 2 * math.log(0.2)
    torch.testing.assert_close(model.log_density(p), expected.detach())


def test_causal_ordering_later_pixels_do_not_change_earlier_conditionals():
    model = _scrambled(PixelGPT(n_layer=2, n_head=2, n_embd=16, dropout=0.0))
    tokens = torch.randint(PIXEL_LEVELS, (3, NUM_PIXELS), generator=torch.Generator().manual_seed(0))
    changed = tokens.clone()
    changed[:, 40:] = (changed[:, 40:] + 5) % PIXEL_LEVELS
    a, b = model.conditionals(tokens).detach(), model.conditionals(changed).detach()
    # conditionals for pixels 0..40 see only pixels < 40, which are equal
    torch.testing.assert_close(a[:, :41], b[:, :41])
    assert not torch.allclose(a[:, 41:], b[:, 41:])


def test_pixel_sampling_shape_range_grid_and_determinism():
    model = _scrambled(PixelGPT(n_layer=1, n_head=2, n_embd=16, dropout=0.0))
    pipe = PixelGPTPipeline(model)
    a, b = pipe.sample(6, seed=3), pipe.sample(6, seed=3)
    assert a.shape == (6, 1, 8, 8)
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a * 16, (a * 16).round())  # on the 17-level grid
    assert not torch.equal(a, pipe.sample(6, seed=4))
    assert torch.isfinite(pipe.log_likelihood(a)).all()  # its own samples have finite likelihood


def test_cached_sampling_draws_from_the_model_conditionals():
    """Sampling with the KV cache follows p(s_0) and p(s_1 | s_0) of the full forward pass."""
    model = _scrambled(DiscreteAutoregressive(length=2, vocab=3, n_layer=1, n_head=1, n_embd=8), seed=5)
    samples = model.sample(40_000, torch.Generator().manual_seed(0))
    every = torch.tensor(list(itertools.product(range(3), repeat=2)))
    probs = model.log_prob(every).exp().detach()
    counts = torch.tensor([int(((samples == s).all(1)).sum()) for s in every]) / len(samples)
    torch.testing.assert_close(counts, probs, atol=0.015, rtol=0)


def test_point_sampling_shape_range_and_determinism():
    model = _scrambled(PointGPT(bins=20, lim=2.5, n_layer=1, n_head=2, n_embd=8))
    a = model.sample_points(50, torch.Generator().manual_seed(1))
    b = model.sample_points(50, torch.Generator().manual_seed(1))
    assert a.shape == (50, 2)
    assert (a >= -2.5).all() and (a < 2.5).all()
    torch.testing.assert_close(a, b)
    assert torch.isfinite(model.log_density(a)).all()


def test_tokens_round_trip():
    x = load_digits().x_train[:4]
    torch.testing.assert_close(tokens_to_digits(digits_to_tokens(x)), x)


@pytest.mark.parametrize(
    ("images", "needle"),
    [
        (torch.full((2, 1, 8, 8), 0.3), "17-level grid"),
        (torch.full((2, 1, 8, 8), 2.0), "17-level grid"),
        (torch.zeros(2, 64), "images must be a tensor of shape (N, 1, 8, 8)"),
        (torch.zeros(0, 1, 8, 8), "N >= 1"),
        (torch.zeros(2, 1, 8, 8, dtype=torch.long), "floating point"),
    ],
)
def test_bad_images_raise_value_error_naming_the_argument(images, needle):
    model = PixelGPT(n_layer=1, n_head=2, n_embd=16)
    with pytest.raises(ValueError, match="images") as err:
        model.log_likelihood(images)
    assert needle in str(err.value)


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_bad_n_raises(n):
    pipe = PixelGPTPipeline(PixelGPT(n_layer=1, n_head=2, n_embd=16))
    with pytest.raises(ValueError, match="n must be a positive int"):
        pipe.sample(n)
    with pytest.raises(ValueError, match="n must be a positive int"):
        PointGPT(bins=8, n_layer=1, n_head=2, n_embd=8).sample_points(n)


def test_bad_tokens_points_and_seed_raise():
    model = DiscreteAutoregressive(length=3, vocab=4, n_layer=1, n_head=2, n_embd=8)
    with pytest.raises(ValueError, match="tokens must lie in"):
        model.log_prob(torch.tensor([[0, 1, 4]]))
    with pytest.raises(ValueError, match=r"tokens must have shape \(B, 3\)"):
        model.log_prob(torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="tokens must be an integer tensor"):
        model.log_prob(torch.zeros(1, 3))
    point = PointGPT(bins=8, lim=1.0, n_layer=1, n_head=2, n_embd=8)
    with pytest.raises(ValueError, match=r"points must be a tensor of shape \(N, 2\)"):
        point.log_density(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="points must lie in"):
        point.quantise(torch.tensor([[1.5, 0.0]]))
    with pytest.raises(ValueError, match="seed"):
        PixelGPTPipeline(PixelGPT(n_layer=1, n_head=2, n_embd=16)).sample(2, seed=-1)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(2, temperature=0.0)


@pytest.mark.skipif("digits-pixel-gpt" not in pretrained.available(), reason="checkpoint not shipped")
def test_shipped_pixel_gpt_beats_uniform_and_samples():
    pipe = pretrained.load("digits-pixel-gpt", device="cpu")
    ll = pipe.log_likelihood(load_digits().x_test[:50])
    assert ll.shape == (50,)
    # far better than the uniform 64 log 17 = 181 nats, and worse than a perfect 0
    assert -150 < float(ll.mean()) < -20
    x = pipe.sample(4, seed=0)
    assert x.shape == (4, 1, 8, 8)
    torch.testing.assert_close(x, pipe.sample(4, seed=0))

"""Eq. 2.2.1 counts the parameters of real models exactly; power-law fits recover known exponents."""

from __future__ import annotations

import math

import pytest
import torch

from aigc_course.gpt import GPT, GPTConfig
from aigc_course.scaling import (
    GPT3_CONFIGS,
    approx_parameter_count,
    batches,
    fit_power_law,
    held_out_loss,
    parameter_breakdown,
    parameter_count,
    run_scaling_experiment,
    training_flops,
)

GPT_CONFIGS = [
    GPTConfig(),
    GPTConfig(vocab_size=97, block_size=32, n_layer=3, n_head=2, n_embd=24),
    GPTConfig(vocab_size=97, block_size=32, n_layer=3, n_head=2, n_embd=24, bias=False),
    GPTConfig(vocab_size=5, block_size=3, n_layer=1, n_head=1, n_embd=8),
    GPTConfig(vocab_size=1000, block_size=256, n_layer=6, n_head=6, n_embd=96),
]


def numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # tied weights are counted once


@pytest.mark.parametrize("config", GPT_CONFIGS, ids=lambda c: f"L{c.n_layer}d{c.n_embd}bias{c.bias}")
def test_formula_is_exact_for_course_gpts(config):
    model = GPT(config)
    assert parameter_count(config) == numel(model)
    # non-embedding: GPT.num_params drops only wpe; eq. 2.2.1 also drops wte
    emb = config.vocab_size * config.n_embd + config.block_size * config.n_embd
    assert parameter_count(config, non_embedding=True) == numel(model) - emb


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_layer=2, n_embd=64, n_head=4, vocab_size=1000, n_positions=128),
        dict(n_layer=3, n_embd=48, n_head=4, vocab_size=333, n_positions=64, n_inner=100),
        dict(n_layer=1, n_embd=32, n_head=2, vocab_size=50, n_positions=16, tie_word_embeddings=False),
    ],
)
def test_formula_is_exact_for_huggingface_gpt2(kwargs):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(bos_token_id=0, eos_token_id=0, **kwargs)
    assert parameter_count(config) == numel(GPT2LMHeadModel(config))


def test_breakdown_sums_and_large_model_shorthand():
    c = GPT3_CONFIGS["GPT-3 175B"]
    parts = parameter_breakdown(c)
    assert sum(parts.values()) == parameter_count(c)
    assert parts["lm_head"] == 0  # tied
    approx = approx_parameter_count(c["n_layer"], c["n_embd"])
    assert abs(approx - parameter_count(c, non_embedding=True)) / approx < 1e-3


def test_gpt3_is_175_billion_within_one_percent():
    n = parameter_count(GPT3_CONFIGS["GPT-3 175B"])
    assert abs(n - 175e9) / 175e9 < 0.01
    for name, c in GPT3_CONFIGS.items():  # every published size within 5 %
        assert abs(parameter_count(c) - c["published"]) / c["published"] < 0.05, name


@pytest.mark.parametrize("alpha", [0.076, 0.5, 1.0, 2.3])
def test_power_law_fit_recovers_the_exponent(alpha):
    x = torch.logspace(3, 9, 12, dtype=torch.float64)
    law = fit_power_law(x, 7.0 * x ** (-alpha))
    assert law.exponent == pytest.approx(alpha, rel=1e-9)
    assert law.coefficient == pytest.approx(7.0, rel=1e-9)
    assert law.r2 == pytest.approx(1.0)
    assert law(1e6) == pytest.approx(7.0 * 1e6 ** (-alpha))


def test_power_law_fit_with_noise():
    gen = torch.Generator().manual_seed(0)
    x = torch.logspace(3, 8, 40, dtype=torch.float64)
    y = 3.0 * x ** (-0.3) * torch.exp(0.02 * torch.randn(40, generator=gen, dtype=torch.float64))
    law = fit_power_law(x.tolist(), y.tolist())
    assert abs(law.exponent - 0.3) < 0.01 and 0.99 < law.r2 <= 1.0


@pytest.mark.parametrize(
    ("x", "y", "word"),
    [([1.0, 2.0], [1.0], "y must have the length of x"), ([1.0], [1.0], "at least 2"), ([1.0, -2.0], [1.0, 2.0], "positive"),
     ([2.0, 2.0], [1.0, 3.0], "distinct"), ([1.0, 2.0], [0.0, 1.0], "positive")],
)
def test_power_law_bad_input(x, y, word):
    with pytest.raises(ValueError, match=word):
        fit_power_law(x, y)


def test_parameter_count_bad_input():
    with pytest.raises(ValueError, match="config must be"):
        parameter_count([1, 2, 3])
    with pytest.raises(ValueError, match="missing"):
        parameter_count({"vocab_size": 10, "n_layer": 2})
    with pytest.raises(ValueError, match="n_embd"):
        parameter_count({"vocab_size": 10, "block_size": 4, "n_layer": 2, "n_embd": 0})
    with pytest.raises(ValueError, match="n_params must be a finite number > 0"):
        training_flops(0, 10)


def test_training_flops_is_six_n_d():
    assert training_flops(175e9, 300e9) == pytest.approx(3.15e23)  # GPT-3: ~3.14e23 FLOPs
    assert math.isclose(training_flops(2, 3), 36.0)


def test_held_out_loss_and_tiny_experiment():
    gen = torch.Generator().manual_seed(0)
    ids = torch.arange(4000) % 7  # a periodic sequence: easy to predict
    x, y = batches(ids, 4, 16, gen)
    assert x.shape == y.shape == (4, 16) and torch.equal(y[:, :-1], x[:, 1:])
    runs = run_scaling_experiment([8, 16], ids, ids[:500], vocab_size=7, block_size=16, batch_size=8,
                                  num_steps=30, progress=False)
    assert [r.config.n_embd for r in runs] == [8, 16]
    for r in runs:
        assert r.tokens == 30 * 8 * 16 and r.params == numel(GPT(r.config))
        assert r.valid_loss < math.log(7)  # learnt something beyond uniform
        assert r.flops == training_flops(r.non_embedding_params, r.tokens)
    model = GPT(GPTConfig(vocab_size=7, block_size=16, n_layer=1, n_head=1, n_embd=8))
    with pytest.raises(ValueError, match="ids must hold more"):
        held_out_loss(model, ids[:10], 16)
    with pytest.raises(ValueError, match="widths"):
        run_scaling_experiment([12], ids, ids, vocab_size=7, progress=False)
    with pytest.raises(ValueError, match="valid_ids"):
        run_scaling_experiment([8], ids, ids[:5], vocab_size=7, progress=False)

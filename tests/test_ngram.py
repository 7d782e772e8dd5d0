import math

import numpy as np
import pytest

from aigc_course.classic import NGramLanguageModel


def brute_force_add_k(train, order, k, context, char):
    alphabet = sorted(set(train)) + ["\x00"]
    padded = "\x01" * (order - 1) + train
    ctx = ("\x01" * (order - 1) + context)[-(order - 1):] if order > 1 else ""
    c_hw = sum(1 for i in range(len(train)) if padded[i:i + order] == ctx + char)
    c_h = sum(1 for i in range(len(train)) if padded[i:i + order - 1] == ctx)
    return (c_hw + k) / (c_h + k * len(alphabet))


@pytest.mark.parametrize("order", [1, 2, 3])
def test_add_k_matches_brute_force(order):
    train = "abracadabra abracadabra"
    model = NGramLanguageModel(order, "add_k", k=0.5).fit(train)
    for context, char in [("abr", "a"), ("cad", "a"), ("zzz", "b"), ("ab", "q")]:
        dist = model._probs_for_keys(np.array([0]))  # warm path
        assert dist.shape == (1,)
        text_prob = 2 ** model.log2_probs(context + char)[-1]
        assert math.isclose(text_prob, brute_force_add_k(train, order, 0.5, context, char), rel_tol=1e-12)


@pytest.mark.parametrize("smoothing", ["add_k", "kneser_ney"])
@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_distributions_sum_to_one(smoothing, order):
    model = NGramLanguageModel(order, smoothing).fit("the cat sat on the mat; the dog sat on the log.\n" * 3)
    for context in ["the ", "xyz", "", "on the m"]:
        dist = model.next_char_distribution(context)
        assert math.isclose(dist.sum(), 1.0, rel_tol=1e-9)
        assert (dist > 0).sum() == model.vocab_size - 1  # smoothing: every real character possible


def test_kneser_ney_full_distribution_includes_unknown_mass():
    model = NGramLanguageModel(3).fit("hello world hello there")
    base = model.vocab_size + 1
    keys = (model.vocab_size * base + model.vocab_size) * base + np.arange(model.vocab_size)
    assert math.isclose(model._probs_for_keys(keys).sum(), 1.0, rel_tol=1e-9)


def test_higher_order_helps_on_repetitive_text():
    text = "def f(x):\n    return x + 1\n" * 50
    bpc = [NGramLanguageModel(n).fit(text).bits_per_char(text[:200]) for n in (1, 3, 5)]
    assert bpc[0] > bpc[1] > bpc[2]


def test_unseen_characters_get_finite_cost():
    model = NGramLanguageModel(2).fit("aaaaabbbbb")
    assert np.isfinite(model.bits_per_char("abcz"))


def test_generate_is_seeded():
    model = NGramLanguageModel(3).fit("abcabcabd" * 20)
    assert model.generate("ab", 30, seed=1) == model.generate("ab", 30, seed=1)
    assert len(model.generate("ab", 30, seed=1)) == 32


@pytest.mark.parametrize("kwargs,match", [({"order": 0}, "order must be an int from 1 to 5"),
                                          ({"order": 6}, "order must be an int from 1 to 5"),
                                          ({"order": 2, "smoothing": "good_turing"}, "smoothing must be one of"),
                                          ({"order": 2, "smoothing": "add_k", "k": 0}, "k must be positive")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NGramLanguageModel(**kwargs)


def test_fit_needs_text():
    with pytest.raises(ValueError, match="at least 3 characters"):
        NGramLanguageModel(3).fit("ab")
    with pytest.raises(RuntimeError, match="fit"):
        NGramLanguageModel(3).bits_per_char("abc")

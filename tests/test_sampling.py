import math

import pytest
import torch

from aigc_course.sampling import apply_temperature, greedy, sample, top_k_filter, top_p_filter

NEG_INF = float("-inf")


def kept(filtered):
    return set(torch.nonzero(torch.isfinite(filtered)).flatten().tolist())


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([0.1, 2.0, -1.0, 3.0, 0.5])
    assert kept(top_k_filter(logits, 1)) == {3}
    assert kept(top_k_filter(logits, 2)) == {1, 3}
    assert kept(top_k_filter(logits, 3)) == {1, 3, 4}
    out = top_k_filter(logits, 2)
    assert out[1] == 2.0 and out[3] == 3.0 and out[0] == NEG_INF


def test_top_k_keeps_ties_together_and_clamps_k():
    logits = torch.tensor([3.0, 1.0, 3.0, 2.0])
    assert kept(top_k_filter(logits, 1)) == {0, 2}
    assert kept(top_k_filter(logits, 3)) == {0, 2, 3}
    assert kept(top_k_filter(logits, 10)) == {0, 1, 2, 3}


def test_top_k_is_row_wise():
    logits = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    out = top_k_filter(logits, 1)
    assert torch.isfinite(out).tolist() == [[False, False, True], [True, False, False]]


def probs_to_logits(probs):
    return torch.log(torch.tensor(probs, dtype=torch.float64))


def test_top_p_smallest_set_reaching_p():
    logits = probs_to_logits([0.2, 0.5, 0.3])
    assert kept(top_p_filter(logits, 0.5)) == {1}
    assert kept(top_p_filter(logits, 0.51)) == {1, 2}
    assert kept(top_p_filter(logits, 0.8)) == {1, 2}
    assert kept(top_p_filter(logits, 0.81)) == {0, 1, 2}
    assert kept(top_p_filter(logits, 1e-6)) == {1}  # always at least one


def test_top_p_one_keeps_everything():
    logits = torch.tensor([5.0, -30.0, 0.0, -80.0])
    torch.testing.assert_close(top_p_filter(logits, 1.0), logits)
    assert kept(top_p_filter(logits, 1.0)) == {0, 1, 2, 3}


def test_top_p_keeps_tied_tokens_together():
    logits = probs_to_logits([0.3, 0.4, 0.3])
    assert kept(top_p_filter(logits, 0.4)) == {1}
    assert kept(top_p_filter(logits, 0.5)) == {0, 1, 2}
    uniform = torch.zeros(6)
    assert kept(top_p_filter(uniform, 0.1)) == set(range(6))


def test_top_p_matches_brute_force_on_random_rows():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 12, generator=g, dtype=torch.float64) * 2
    for p in (0.1, 0.5, 0.9, 0.99):
        out = top_p_filter(logits, p)
        for row, filt in zip(logits, out, strict=True):
            probs = torch.softmax(row, 0)
            order = torch.argsort(probs, descending=True).tolist()
            want, mass = set(), 0.0
            for i in order:
                want.add(i)
                mass += probs[i].item()
                if mass >= p:
                    break
            assert kept(filt) == want


def test_filters_reject_bad_arguments():
    logits = torch.zeros(5)
    for k in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="k"):
            top_k_filter(logits, k)
    for p in (0.0, -0.1, 1.01, float("nan")):
        with pytest.raises(ValueError, match=r"\(0, 1\]"):
            top_p_filter(logits, p)
    with pytest.raises(ValueError, match="logits"):
        top_k_filter(torch.tensor([1, 2, 3]), 1)
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(logits, 0.0)
    with pytest.raises(ValueError, match="temperature"):
        sample(logits[None], temperature=-1.0)


def test_greedy_and_zero_temperature():
    logits = torch.tensor([[0.1, 3.0, 0.2], [5.0, 1.0, 0.0]])
    assert greedy(logits).tolist() == [1, 0]
    assert sample(logits, temperature=0).tolist() == [1, 0]


def test_temperature_sharpens_and_flattens():
    logits = torch.tensor([2.0, 1.0, 0.0])
    entropy = lambda z: -(torch.softmax(z, 0) * torch.log_softmax(z, 0)).sum().item()  # noqa: E731
    assert entropy(apply_temperature(logits, 0.5)) < entropy(logits) < entropy(apply_temperature(logits, 2.0))


def test_sampling_is_seeded_and_respects_filters():
    logits = torch.randn(4, 30, generator=torch.Generator().manual_seed(0))
    a = [sample(logits, top_k=5, generator=torch.Generator().manual_seed(s)) for s in range(20)]
    b = [sample(logits, top_k=5, generator=torch.Generator().manual_seed(s)) for s in range(20)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    allowed = torch.topk(logits, 5).indices
    for ids in a:
        assert all(ids[r].item() in allowed[r].tolist() for r in range(4))


def test_sampling_frequencies_follow_the_distribution():
    probs = torch.tensor([0.6, 0.3, 0.1])
    g = torch.Generator().manual_seed(0)
    draws = sample(torch.log(probs).expand(20000, 3), generator=g)
    freq = torch.bincount(draws, minlength=3).float() / 20000
    assert torch.allclose(freq, probs, atol=0.015)
    nucleus = sample(torch.log(probs).expand(5000, 3), top_p=0.85, generator=g)
    assert set(nucleus.tolist()) == {0, 1}
    assert math.isclose((nucleus == 0).float().mean().item(), 2 / 3, abs_tol=0.03)

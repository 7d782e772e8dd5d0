import pytest
import torch
import torch.nn.functional as F

from aigc_course.attention import (
    KVCache,
    MultiHeadAttention,
    blockwise_attention,
    causal_mask,
    record_attention,
    scaled_dot_product_attention,
)


def qkv(*shape, t_k=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    *lead, t, d = shape
    t_k = t if t_k is None else t_k
    q = torch.randn(*lead, t, d, generator=g)
    k = torch.randn(*lead, t_k, d, generator=g)
    v = torch.randn(*lead, t_k, d + 3, generator=g)
    return q, k, v


@pytest.mark.parametrize("shape", [(7, 8), (2, 3, 17, 16), (2, 1, 4, 5, 8)])
def test_plain_matches_torch(shape):
    q, k, v = qkv(*shape)
    out, w = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))


def test_causal_matches_torch_and_zeroes_the_future():
    q, k, v = qkv(2, 4, 19, 8)
    out, w = scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-5, rtol=1e-5)
    assert torch.all(w.triu(diagonal=1) == 0)
    assert torch.all(w[..., 0, 0] == 1)


def test_causal_with_fewer_queries_than_keys_is_top_left_like_torch():
    q, k, v = qkv(2, 5, 8, t_k=11)
    out, _ = scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-5, rtol=1e-5)


def test_boolean_mask_matches_torch():
    q, k, v = qkv(2, 3, 13, 8)
    mask = torch.rand(13, 13, generator=torch.Generator().manual_seed(1)) > 0.4
    mask[:, 0] = True  # every query keeps at least one key
    out, w = scaled_dot_product_attention(q, k, v, mask=mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=1e-5, rtol=1e-5)
    assert torch.all(w[..., ~mask] == 0)


def test_additive_mask_matches_torch():
    q, k, v = qkv(2, 3, 13, 8)
    bias = torch.randn(3, 13, 13, generator=torch.Generator().manual_seed(2))
    bias[..., 5] = float("-inf")
    out, w = scaled_dot_product_attention(q, k, v, mask=bias)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=bias), atol=1e-5, rtol=1e-5)
    assert torch.all(w[..., 5] == 0)


def test_gradients_match_torch():
    q, k, v = (t.requires_grad_() for t in qkv(2, 9, 8))
    scaled_dot_product_attention(q, k, v, is_causal=True)[0].square().sum().backward()
    grads = [t.grad.clone() for t in (q, k, v)]
    q2, k2, v2 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    F.scaled_dot_product_attention(q2, k2, v2, is_causal=True).square().sum().backward()
    for a, b in zip(grads, (q2.grad, k2.grad, v2.grad), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("block_size", [1, 4, 7, 64, 1000])
@pytest.mark.parametrize("is_causal", [False, True])
def test_blockwise_equals_plain(block_size, is_causal):
    q, k, v = qkv(2, 3, 37, 16)
    ref, _ = scaled_dot_product_attention(q, k, v, is_causal=is_causal)
    out = blockwise_attention(q, k, v, is_causal=is_causal, block_size=block_size)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_blockwise_with_masks_and_more_keys():
    q, k, v = qkv(2, 6, 8, t_k=29)
    mask = torch.rand(6, 29, generator=torch.Generator().manual_seed(3)) > 0.5
    mask[:, 3] = True
    ref, _ = scaled_dot_product_attention(q, k, v, mask=mask)
    torch.testing.assert_close(blockwise_attention(q, k, v, mask=mask, block_size=5), ref, atol=1e-5, rtol=1e-5)
    bias = torch.randn(6, 29, generator=torch.Generator().manual_seed(4))
    ref, _ = scaled_dot_product_attention(q, k, v, mask=bias)
    torch.testing.assert_close(blockwise_attention(q, k, v, mask=bias, block_size=4), ref, atol=1e-5, rtol=1e-5)


def test_causal_mask_helper():
    m = causal_mask(3, 4)
    assert m.tolist() == [[True, False, False, False], [True, True, False, False], [True, True, True, False]]


@pytest.mark.parametrize("backend", ["manual", "blockwise"])
@pytest.mark.parametrize("is_causal", [False, True])
def test_mha_backends_agree(backend, is_causal):
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4).eval()
    x = torch.randn(3, 10, 32)
    ref = mha(x, is_causal=is_causal)
    mha.backend = backend
    torch.testing.assert_close(mha(x, is_causal=is_causal), ref, atol=1e-5, rtol=1e-5)
    with record_attention(mha) as weights:
        y = mha(x, is_causal=is_causal)
    assert weights[0].shape == (3, 4, 10, 10)
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)


def test_mha_with_mask_and_causal_together():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2).eval()
    x = torch.randn(2, 6, 16)
    keep = torch.ones(6, 6, dtype=torch.bool)
    keep[:, 1] = False
    keep[0, 0] = True
    ref = mha(x, mask=keep & causal_mask(6))
    torch.testing.assert_close(mha(x, mask=keep, is_causal=True), ref, atol=1e-6, rtol=1e-6)


def test_mha_incremental_cache_equals_full_causal_pass():
    torch.manual_seed(0)
    mha = MultiHeadAttention(24, 3).eval()
    x = torch.randn(2, 9, 24)
    full = mha(x, is_causal=True)
    cache = KVCache(2, 3, 16, 8)
    parts = [mha(x[:, :4], is_causal=True, cache=cache)]  # prefill
    parts += [mha(x[:, 4:6], is_causal=True, cache=cache)]  # two tokens at once
    parts += [mha(x[:, i : i + 1], is_causal=True, cache=cache) for i in range(6, 9)]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 9
    with pytest.raises(ValueError, match="overflow"):
        mha(torch.randn(2, 8, 24), cache=cache)


def test_bad_inputs_raise_clear_errors():
    q, k, v = qkv(4, 8)
    with pytest.raises(ValueError, match="rank"):
        scaled_dot_product_attention(q[0], k, v)
    with pytest.raises(ValueError, match="d_k"):
        scaled_dot_product_attention(q, k[:, :5], v)
    with pytest.raises(ValueError, match="number of keys"):
        scaled_dot_product_attention(q, k, v[:3])
    with pytest.raises(ValueError, match="dropout_p"):
        scaled_dot_product_attention(q, k, v, dropout_p=1.0)
    with pytest.raises(ValueError, match="broadcast"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="rank"):
        blockwise_attention(q, k[0], v)
    with pytest.raises(ValueError, match="block_size"):
        blockwise_attention(q, k, v, block_size=0)
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(30, 4)
    with pytest.raises(ValueError, match="backend"):
        MultiHeadAttention(32, 4, backend="magic")
    with pytest.raises(ValueError, match=r"\(B, T, 32\)"):
        MultiHeadAttention(32, 4)(torch.randn(5, 32))


def test_dropout_changes_output_only_in_training():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2, dropout=0.5, backend="manual")
    x = torch.randn(1, 8, 16)
    mha.eval()
    torch.testing.assert_close(mha(x), mha(x))
    mha.train()
    assert not torch.allclose(mha(x), mha(x))

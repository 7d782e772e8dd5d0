import pytest
import torch
import torch.nn.functional as F

from aigc_course.attention import (
    BACKENDS,
    KVCache,
    MultiHeadAttention,
    attend,
    blockwise_attention,
    causal_mask,
    record_attention,
    scaled_dot_product_attention,
)


# Every way the package computes attention; each must match torch's SDPA (the reference).
def _attend_with(backend):
    return lambda q, k, v, mask, causal: attend(q, k, v, mask, causal, backend=backend)


KERNELS = {
    "manual": lambda q, k, v, mask, causal: scaled_dot_product_attention(q, k, v, mask, causal)[0],
    "blockwise": lambda q, k, v, mask, causal: blockwise_attention(q, k, v, mask, causal, block_size=3),
    **{f"attend-{b}": _attend_with(b) for b in BACKENDS},
}


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


# --------------------------------------------------------------------------- golden tests: every kernel vs torch SDPA


def reference(q, k, v, mask, causal):
    """torch's SDPA; with a mask *and* is_causal, on their intersection (see the next test)."""
    if mask is not None and causal:
        mask = mask & causal_mask(q.shape[-2], k.shape[-2]) if mask.dtype == torch.bool else \
            mask.masked_fill(~causal_mask(q.shape[-2], k.shape[-2]), float("-inf"))
        causal = False
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)


@pytest.mark.parametrize("dtype", [torch.bool, torch.float32])
def test_torch_intersects_mask_and_causal_where_it_takes_both(dtype):
    """torch 2.13 takes mask and is_causal together only in some CPU kernels (4-D inputs with
    d_v = d_k; with d_v != d_k it raises). Where it does, a key must pass both: our reference above."""
    q, k, _ = qkv(2, 3, 5, 8, t_k=7)  # (B, H, T, d): the fused CPU kernel's layout
    mask = masks(5, 7)["bool" if dtype == torch.bool else "float"]
    torch.testing.assert_close(F.scaled_dot_product_attention(q, k, k, attn_mask=mask, is_causal=True),
                               reference(q, k, k, mask, True), atol=1e-6, rtol=1e-6)


def masks(t_q, t_k, heads=3):
    """Masks that hide every key of some rows, as bool and as float, and broadcasting ones."""
    g = torch.Generator().manual_seed(5)
    keep = torch.rand(t_q, t_k, generator=g) > 0.5
    keep[1] = False  # row 1 sees nothing
    keep[2, -1] = True
    bias = torch.randn(t_q, t_k, generator=g).masked_fill(~keep, float("-inf"))
    per_head = torch.rand(heads, t_q, t_k, generator=g) > 0.3
    per_head[0, :, :] = False  # head 0 sees nothing at all
    key_padding = torch.ones(2, 1, 1, t_k, dtype=torch.bool)
    key_padding[1, ..., t_k // 2:] = False
    return {
        "bool": keep,
        "float": bias,
        "float-all-hidden": torch.full((t_q, t_k), float("-inf")),
        "per-head": per_head,
        "key-padding": key_padding,
        "column": torch.tensor([True, False] * (t_q // 2) + [True] * (t_q % 2))[:, None],
        "row": keep[1:2] | keep[2:3],
    }


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("mask_name", list(masks(6, 7)))
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("t_k", [7, 4], ids=["T_k=7", "T_k=4"])
def test_every_kernel_matches_torch_sdpa(kernel, mask_name, causal, t_k):
    q, k, v = qkv(2, 3, 6, 8, t_k=t_k)
    mask = masks(6, t_k)[mask_name]
    out = KERNELS[kernel](q, k, v, mask, causal)
    ref = reference(q, k, v, mask, causal)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("kernel", KERNELS)
def test_fully_masked_rows_give_zeros_and_zero_gradients_like_torch(kernel):
    q, k, v = qkv(2, 5, 8, t_k=6)
    mask = torch.ones(5, 6, dtype=torch.bool)
    mask[0] = False  # with is_causal, row 0 keeps key 0 only; the mask hides it
    mask[3, :4] = False
    v = 100 * v  # large values: a huge factor on a hidden row's gradient would overflow to NaN
    upstream = 100 * torch.randn(2, 5, 11, generator=torch.Generator().manual_seed(8))  # nonzero on hidden rows
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    out = KERNELS[kernel](*leaves, mask, True)
    assert torch.all(out[..., 0, :] == 0)
    out.backward(upstream)
    ref_leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    ref = reference(*ref_leaves, mask, True)
    ref.backward(upstream)
    torch.testing.assert_close(out, ref, atol=1e-3, rtol=1e-5)
    for ours, theirs in zip(leaves, ref_leaves, strict=True):
        assert torch.isfinite(ours.grad).all()
        torch.testing.assert_close(ours.grad, theirs.grad, atol=1e-2, rtol=1e-4)
    assert torch.all(leaves[0].grad[..., 0, :] == 0)


@pytest.mark.parametrize("kernel", KERNELS)
def test_no_keys_at_all_gives_zeros_like_torch(kernel):
    q, k, v = qkv(2, 4, 8, t_k=0)
    torch.testing.assert_close(KERNELS[kernel](q, k, v, None, False), reference(q, k, v, None, False))
    assert torch.all(KERNELS[kernel](q, k, v, None, False) == 0)


def test_fully_masked_weights_are_zero_rows():
    q, k, v = qkv(4, 8)
    mask = torch.ones(4, 4, dtype=torch.bool)
    mask[2] = False
    _, w = scaled_dot_product_attention(q, k, v, mask=mask)
    assert torch.all(w[2] == 0)
    torch.testing.assert_close(w[[0, 1, 3]].sum(-1), torch.ones(3))


def test_large_finite_bias_is_not_a_hidden_key():
    q, k, v = qkv(3, 8)
    bias = torch.zeros(3, 3)
    bias[1] = -1e9  # every key equally penalised: an ordinary softmax, not a masked row
    for kernel in KERNELS.values():
        out = kernel(q, k, v, bias, False)
        torch.testing.assert_close(out, reference(q, k, v, bias, False), atol=1e-5, rtol=1e-5)
        assert out[1].abs().sum() > 0


def test_float_mask_is_cast_to_the_query_dtype_by_every_kernel():
    q, k, v = (t.double() for t in qkv(2, 5, 8))
    bias = torch.randn(5, 5, generator=torch.Generator().manual_seed(6))  # float32 bias, float64 q
    ref = reference(q, k, v, bias.double(), False)
    for kernel in KERNELS.values():
        torch.testing.assert_close(kernel(q, k, v, bias, False), ref)


# One shape rule for every kernel: the same masks are rejected everywhere, with the same message.
BAD_MASKS = {
    "wrong T_k": torch.ones(5, 4, dtype=torch.bool),
    "wrong T_q": torch.ones(4, 5, dtype=torch.bool),
    "rank 1": torch.ones(5, dtype=torch.bool),
    "bigger batch": torch.ones(3, 2, 5, 5, dtype=torch.bool),
    "more dims than the scores": torch.ones(1, 1, 2, 5, 5, dtype=torch.bool),
    "int dtype": torch.ones(5, 5, dtype=torch.long),
}


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bad", BAD_MASKS)
def test_every_kernel_rejects_the_same_bad_masks(kernel, bad):
    q, k, v = qkv(2, 5, 8)
    with pytest.raises(ValueError, match=r"^mask must"):
        KERNELS[kernel](q, k, v, BAD_MASKS[bad], False)


@pytest.mark.parametrize("kernel", KERNELS)
def test_every_kernel_accepts_broadcasting_batches_like_torch(kernel):
    g = torch.Generator().manual_seed(7)
    q = torch.randn(2, 1, 5, 8, generator=g)
    k = torch.randn(1, 3, 6, 8, generator=g)
    v = torch.randn(1, 3, 6, 4, generator=g)
    out = KERNELS[kernel](q, k, v, None, True)
    assert out.shape == (2, 3, 5, 4)
    torch.testing.assert_close(out, reference(q, k, v, None, True), atol=1e-5, rtol=1e-5)


def test_mha_forward_does_not_synchronise(monkeypatch):
    """The training hot path checks shapes only: no .item(), bool() or .tolist() on a tensor."""
    mha = MultiHeadAttention(16, 2)
    x = torch.randn(2, 5, 16)
    mask = torch.ones(5, 5, dtype=torch.bool)

    def forbidden(*args, **kwargs):
        raise AssertionError("a host-synchronising call on the hot path")

    for name in ("item", "tolist", "__bool__", "__int__", "__float__"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    for backend in BACKENDS:
        mha.backend = backend
        mha(x, mask=mask, is_causal=True).sum()
# --------------------------------------------------------------------------- cross-attention


def _cross_and_reference(d_model=16, heads=4, ctx_dim=12, seed=0):
    from aigc_course.attention import CrossAttention

    torch.manual_seed(seed)
    ours = CrossAttention(d_model, heads, ctx_dim).eval()
    ref = torch.nn.MultiheadAttention(d_model, heads, kdim=ctx_dim, vdim=ctx_dim, batch_first=True).eval()
    with torch.no_grad():  # the same weights: torch keeps separate q/k/v matrices when kdim != d_model
        ref.q_proj_weight.copy_(ours.q_proj.weight)
        ref.k_proj_weight.copy_(ours.k_proj.weight)
        ref.v_proj_weight.copy_(ours.v_proj.weight)
        ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        ref.out_proj.bias.copy_(ours.out_proj.bias)
    return ours, ref


@pytest.mark.parametrize("backend", ["sdpa", "manual", "blockwise"])
def test_cross_attention_matches_torch_multihead_attention_with_padding(backend):
    ours, ref = _cross_and_reference()
    ours.backend = backend
    g = torch.Generator().manual_seed(3)
    x, context = torch.randn(3, 10, 16, generator=g), torch.randn(3, 7, 12, generator=g)
    keep = torch.ones(3, 7, dtype=torch.bool)
    keep[0, 4:] = False  # padding at the end of two of the three contexts
    keep[2, 1:] = False
    out = ours(x, context, keep)
    expected, expected_w = ref(x, context, context, key_padding_mask=~keep)  # torch: True = ignore
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    from aigc_course.attention import record_attention

    with record_attention(ours) as recorded:
        out_w = ours(x, context, keep)
    torch.testing.assert_close(out_w, expected, atol=1e-5, rtol=1e-5)
    (weights,) = recorded
    assert weights.shape == (3, 4, 10, 7)
    torch.testing.assert_close(weights.mean(1), expected_w, atol=1e-5, rtol=1e-5)  # torch averages the heads
    assert torch.all(weights[0, ..., 4:] == 0) and torch.all(weights[2, ..., 1:] == 0)


def test_cross_attention_equals_sdpa_per_head_and_ignores_padding_values():
    from aigc_course.attention import CrossAttention

    attn = CrossAttention(8, 2, 6).eval()
    g = torch.Generator().manual_seed(0)
    x, context = torch.randn(2, 5, 8, generator=g), torch.randn(2, 4, 6, generator=g)
    keep = torch.tensor([[True, True, False, False], [True, True, True, True]])
    q = attn.q_proj(x).view(2, 5, 2, 4).transpose(1, 2)
    k = attn.k_proj(context).view(2, 4, 2, 4).transpose(1, 2)
    v = attn.v_proj(context).view(2, 4, 2, 4).transpose(1, 2)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])
    expected = attn.out_proj(expected.transpose(1, 2).reshape(2, 5, 8))
    torch.testing.assert_close(attn(x, context, keep), expected, atol=1e-5, rtol=1e-5)
    changed = context.clone()
    changed[0, 2:] = 100.0  # what sits in padded positions must not matter
    torch.testing.assert_close(attn(x, changed, keep), attn(x, context, keep))


def test_cross_attention_errors_name_the_argument():
    from aigc_course.attention import CrossAttention

    attn = CrossAttention(8, 2, 6)
    x, context = torch.randn(2, 5, 8), torch.randn(2, 4, 6)
    with pytest.raises(ValueError, match=r"x must have shape \(B, T_q, 8\)"):
        attn(torch.randn(2, 5, 7), context)
    with pytest.raises(ValueError, match=r"context must have shape \(2, T_k, 6\)"):
        attn(x, torch.randn(2, 4, 8))
    with pytest.raises(ValueError, match="context_mask must be a bool tensor"):
        attn(x, context, torch.ones(2, 4))
    with pytest.raises(ValueError, match="d_model must be a positive int divisible"):
        CrossAttention(10, 4)
    with pytest.raises(ValueError, match="context_dim must be a positive int"):
        CrossAttention(8, 2, 0)


def test_peak_memory_with_grad_counts_what_autograd_keeps():
    from aigc_course.attention import peak_memory

    w = torch.randn(32, 32, requires_grad=True)
    x = torch.randn(256, 32)
    def chain():
        return torch.tanh(torch.tanh(torch.tanh(x @ w))).sum()

    one = 256 * 32 * 4  # bytes of one (256, 32) float32 activation
    kept = peak_memory(chain, grad=True)
    plain = peak_memory(chain)
    # with gradients on, each tanh output is kept for the backward pass (tanh's derivative is
    # 1 - tanh^2); without, at most two activations are alive at once
    assert kept >= 3 * one and plain <= 2 * one + 1024
    with pytest.raises(ValueError, match="grad"):
        peak_memory(lambda: x.sum(), grad="yes")

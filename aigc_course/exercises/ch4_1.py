"""Chapter 4.1 exercises: a key-padding mask, the online softmax, the cost of attention.

References: :func:`aigc_course.attention.scaled_dot_product_attention` (with a boolean mask),
:func:`aigc_course.attention.blockwise_attention`, and the FLOPs that
``torch.utils.flop_counter.FlopCounterMode`` counts while the package's attention runs.
"""

from __future__ import annotations

import math

import torch
from torch.utils.flop_counter import FlopCounterMode

from aigc_course.attention import blockwise_attention, scaled_dot_product_attention
from aigc_course.exercises.core import Case, Exercise, Probe, Variant, register
from aigc_course.exercises.sandbox import OpRecorder


def _randn(gen: torch.Generator, device, *shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=gen).to(device)


# ---------------------------------------------------------------------------- 4.1.1 padding mask


def _padding_reference(q, k, v, keep):
    return scaled_dot_product_attention(q, k, v, mask=keep[:, None, :])[0]


def _padding_cases(gen: torch.Generator, device) -> list[Case]:
    cases = []
    for name, b, t_q, t_k, d in (("batch 2, 6 queries, 6 keys, d=16", 2, 6, 6, 16),
                                 ("batch 3, 5 queries, 7 keys, d=8", 3, 5, 7, 8)):
        keep = torch.rand((b, t_k), generator=gen) < 0.6
        keep[:, 0] = True  # every sequence has at least one real token
        cases.append(Case(name, (_randn(gen, device, b, t_q, d) * 2, _randn(gen, device, b, t_k, d) * 2,
                                 _randn(gen, device, b, t_k, 3), keep.to(device))))
    keep = torch.tensor([[True, True, True, False, False], [True, False, False, False, False]])
    cases.append(Case("right padding: lengths 3 and 1", (_randn(gen, device, 2, 4, 4), _randn(gen, device, 2, 5, 4),
                                                          _randn(gen, device, 2, 5, 2), keep.to(device))))
    cases.append(Case("no padding at all", (_randn(gen, device, 1, 3, 4), _randn(gen, device, 1, 3, 4),
                                            _randn(gen, device, 1, 3, 4), torch.ones(1, 3, dtype=torch.bool,
                                                                                     device=device))))
    return cases


def _padding_variant(kind: str):
    def wrong(case: Case):
        q, k, v, keep = case.args
        scale = 1.0 if kind == "unscaled" else 1 / math.sqrt(q.shape[-1])
        scores = q @ k.transpose(-2, -1) * scale
        if kind == "query_mask":
            return scores.masked_fill(~keep[:, :, None], float("-inf")).softmax(-1) @ v
        if kind == "zero_after":
            return (scores.softmax(-1) * keep[:, None, :]) @ v
        if kind == "inverted":
            return scores.masked_fill(keep[:, None, :], float("-inf")).softmax(-1) @ v
        if kind == "zero_scores":
            return scores.masked_fill(~keep[:, None, :], 0.0).softmax(-1) @ v
        return scores.masked_fill(~keep[:, None, :], float("-inf")).softmax(-1) @ v

    return wrong


def _padding_nan(case: Case, expected, actual) -> str | None:
    if isinstance(actual, torch.Tensor) and actual.is_floating_point() and torch.isnan(actual).any():
        return ("the output has NaN: some softmax saw only -inf scores (0/0). A padded key is -inf for every "
                "query, so take the softmax over the keys (dim=-1), where each row keeps a real token, not over "
                "the queries (dim=-2)")
    return None


register(Exercise(
    id="4.1.1",
    title="Attention with a key-padding mask",
    function="padded_attention",
    reference=_padding_reference,
    cases=_padding_cases,
    diagnostics=[_padding_nan],
    error_hints=[("must match the size of tensor", "keep is (B, T_k); make it (B, 1, T_k) with "
                  "keep[:, None, :] so it broadcasts over the queries")],
    variants=[
        Variant("you zeroed the padded weights after the softmax, so the remaining weights no longer "
                "sum to 1: set the padded scores to -inf before the softmax", _padding_variant("zero_after")),
        Variant("the mask is inverted: keep is True for real tokens, so fill the scores where "
                "~keep with -inf", _padding_variant("inverted")),
        Variant("you set the padded scores to 0, but exp(0) = 1 still gives padding weight: use -inf",
                _padding_variant("zero_scores")),
        Variant("missing the 1/√d_k scaling of the scores", _padding_variant("unscaled")),
        Variant("the mask hides queries (rows); padding hides *keys*, the columns of the scores: use "
                "keep[:, None, :], of shape (B, 1, T_k)", _padding_variant("query_mask")),
    ],
    hints=[
        "Padding is a mask over the *keys*: no query may put weight on a padded key. Mask the "
        "scores before the softmax, as the causal mask does.",
        "scores = q @ k.transpose(-2, -1) / sqrt(d_k) is (B, T_q, T_k); keep[:, None, :] is "
        "(B, 1, T_k) and broadcasts over the queries; masked_fill the scores where ~keep with -inf.",
        "scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])\n"
        "scores = scores.masked_fill(~keep[:, None, :], float('-inf'))\n"
        "return torch.softmax(scores, dim=-1) @ v",
    ],
    explanation=(
        "A score of $-\\infty$ becomes a weight of exactly $e^{-\\infty} = 0$ after the softmax, and "
        "the softmax renormalises the remaining weights so that each row still sums to 1. "
        "Zeroing weights *after* the softmax breaks that normalisation; a score of 0 is not a mask "
        "at all. The mask has shape `(B, 1, T_k)`: it depends on the key, not the query."
    ),
))


# ---------------------------------------------------------------------------- 4.1.2 online softmax


def _online_reference(q, k, v, block_size):
    return blockwise_attention(q, k, v, block_size=block_size)


def _online_cases(gen: torch.Generator, device) -> list[Case]:
    def qkv(b: int, t: int, d: int, scale: float = 1.0):
        return (_randn(gen, device, b, t, d) * scale, _randn(gen, device, b, t, d) * scale,
                _randn(gen, device, b, t, d))

    return [
        Case("T=12, blocks of 4", (*qkv(2, 12, 8, 2.0), 4)),
        Case("T=10, blocks of 3 (the last block is shorter)", (*qkv(2, 10, 4, 2.0), 3)),
        Case("block_size=1: one key at a time", (*qkv(1, 6, 4, 2.0), 1)),
        Case("one block holds every key (block_size > T)", (*qkv(2, 5, 4), 16)),
        Case("huge scores (|s| ~ 1000): exp overflows without the running max", (*qkv(1, 8, 4, 25.0), 3)),
    ]


def _online_variant(kind: str):
    def wrong(case: Case):
        q, k, v, block = case.args
        scale = 1.0 if kind == "unscaled" else 1 / math.sqrt(q.shape[-1])
        m = torch.full((*q.shape[:-1], 1), float("-inf"), dtype=q.dtype, device=q.device)
        l_sum = torch.zeros_like(m)
        acc = torch.zeros((*q.shape[:-1], v.shape[-1]), dtype=q.dtype, device=q.device)
        for start in range(0, k.shape[-2], block):
            s = q @ k[..., start:start + block, :].transpose(-2, -1) * scale
            m_new = torch.maximum(m, s.amax(-1, keepdim=True))
            p = torch.exp(s - m_new)
            c = torch.exp(m - m_new)
            l_sum = l_sum * c + p.sum(-1, keepdim=True) if kind != "no_rescale_l" else l_sum + p.sum(-1, keepdim=True)
            acc = acc * c + p @ v[..., start:start + block, :] if kind != "no_rescale_acc" else acc + p @ v[
                ..., start:start + block, :]
            m = m_new
        return acc if kind == "no_divide" else acc / l_sum

    return wrong


_PROBE_T, _PROBE_BLOCK = 64, 8


def _block_case(gen: torch.Generator, device) -> Case:
    q, k, v = (_randn(gen, device, 1, _PROBE_T, 8) for _ in range(3))
    return Case(f"T={_PROBE_T}, blocks of {_PROBE_BLOCK}: at most {_PROBE_BLOCK} columns of scores at a time",
                (q, k, v, _PROBE_BLOCK))


def _block_verdict(case: Case, recorder: OpRecorder) -> str | None:
    """The full T x T score matrix, or a fused attention kernel over every key, means block_size was ignored."""
    q, k, _, block = case.args
    full = q.shape[0] * q.shape[-2] * k.shape[-2]
    if recorder.largest >= full // 2:
        return (f"block_size={block} was ignored: an operation ({recorder.largest_op}) made a tensor of shape "
                f"{recorder.largest_shape} ({recorder.largest} numbers), as large as the whole "
                f"{q.shape[-2]} × {k.shape[-2]} score matrix. The online softmax holds at most block_size "
                "columns of scores at once: loop over k[..., start:start + block_size, :] and never compute "
                "q @ k.transpose(-2, -1) for all the keys")
    fused = [name for name, shapes in recorder.calls
             if "attention" in name and any(len(s) >= 2 and s[-2] == k.shape[-2] for s in shapes)]
    if fused:
        return (f"block_size={block} was ignored: {fused[0]} attends to all {k.shape[-2]} keys at once. Write "
                "the loop over key blocks yourself, with the running maximum, normaliser and accumulator")
    return None


def _online_diagnostic(case: Case, expected, actual) -> str | None:
    if isinstance(actual, torch.Tensor) and actual.is_floating_point() and not torch.isfinite(actual).all():
        return ("the output has inf or NaN: exp(score) overflows for large scores. Subtract the running "
                "maximum m before exponentiating, and rescale l and acc by exp(m_old - m_new)")
    return None


register(Exercise(
    id="4.1.2",
    title="Exact attention with the online softmax",
    function="online_attention",
    reference=_online_reference,
    cases=_online_cases,
    diagnostics=[_online_diagnostic],
    variants=[
        Variant("the accumulator acc is not rescaled when the running maximum grows: multiply it by "
                "exp(m_old - m_new) before adding the new block", _online_variant("no_rescale_acc")),
        Variant("the normaliser l is not rescaled when the running maximum grows: l = l·exp(m_old - "
                "m_new) + sum of the new block's exp(s - m_new)", _online_variant("no_rescale_l")),
        Variant("you returned acc without dividing by the normaliser l at the end", _online_variant("no_divide")),
        Variant("missing the 1/√d_k scaling of the scores", _online_variant("unscaled")),
    ],
    probes=[Probe("block_size", _block_case, OpRecorder, _block_verdict)],
    hints=[
        "Keep three running quantities per query: the maximum score m seen so far, the normaliser "
        "l = Σ exp(s - m) and the accumulator acc = Σ exp(s - m)·v. Divide acc by l at the end.",
        "For each key block: s = q @ k_blk^T / √d; m_new = max(m, s.amax(-1, keepdim=True)); "
        "p = exp(s - m_new); c = exp(m - m_new) rescales the old sums: l = l·c + p.sum(-1, keepdim=True), "
        "acc = acc·c + p @ v_blk. Start with m = -inf, l = 0, acc = 0 (exp(-inf) = 0 makes the first c harmless).",
        "m = torch.full((*q.shape[:-1], 1), float('-inf'), dtype=q.dtype, device=q.device)\n"
        "l_sum = torch.zeros_like(m); acc = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=q.dtype, device=q.device)\n"
        "for start in range(0, k.shape[-2], block_size):\n"
        "    s = q @ k[..., start:start + block_size, :].transpose(-2, -1) / math.sqrt(q.shape[-1])\n"
        "    m_new = torch.maximum(m, s.amax(-1, keepdim=True)); p = torch.exp(s - m_new); c = torch.exp(m - m_new)\n"
        "    l_sum = l_sum * c + p.sum(-1, keepdim=True); acc = acc * c + p @ v[..., start:start + block_size, :]\n"
        "    m = m_new\nreturn acc / l_sum",
    ],
    explanation=(
        "$\\mathrm{softmax}(s)_j = e^{s_j - m}/\\sum_i e^{s_i - m}$ for *any* constant $m$. When a new "
        "block raises the maximum from $m$ to $m'$, every term summed so far was computed with "
        "$e^{-m}$ and must be multiplied by $e^{m - m'}$ to use $e^{-m'}$ instead; this holds for "
        "the normaliser $\\ell$ and the weighted sum of values alike. The result is exact "
        "attention in one pass over the keys, with memory $O(T \\cdot \\text{block})$ instead of "
        "$O(T^2)$ (Milakov & Gimelshein 2018; FlashAttention)."
    ),
    atol=1e-4,
    rtol=1e-4,
))


# ---------------------------------------------------------------------------- 4.1.3 FLOPs


def attention_flops_counted(batch: int, heads: int, seq_len: int, head_dim: int) -> int:
    """FLOPs that torch's ``FlopCounterMode`` counts for the package's attention on ``(B, H, T, d)``.

    The inputs live on the ``meta`` device, so nothing is computed: only the shapes matter.
    """
    q = torch.empty(batch, heads, seq_len, head_dim, device="meta")
    with FlopCounterMode(display=False) as counter:
        scaled_dot_product_attention(q, q, q)
    return int(counter.get_total_flops())


def _flops_cases(gen: torch.Generator, device) -> list[Case]:
    def draw(low: int, high: int) -> int:
        return int(torch.randint(low, high, (1,), generator=gen))

    return [
        Case("random sizes", (draw(1, 5), draw(1, 9), draw(8, 257), draw(4, 65))),
        Case("random sizes, batch 1, one head", (1, 1, draw(8, 513), draw(8, 129))),
        Case("GPT-2 small layer: B=1, H=12, T=1024, d=64", (1, 12, 1024, 64)),
        Case("T != d: B=2, H=4, T=16, d=128", (2, 4, 16, 128)),
        Case("one token (T = 1)", (3, 2, 1, 32)),
    ]


register(Exercise(
    id="4.1.3",
    title="The cost of attention in FLOPs",
    function="attention_flops",
    reference=attention_flops_counted,
    cases=_flops_cases,
    variants=[
        Variant("you counted one of the two matrix products (or multiply-adds instead of FLOPs): "
                "Q·Kᵀ and the weights times V each cost 2·T²·d FLOPs per head",
                lambda c: 2 * c.args[0] * c.args[1] * c.args[2] ** 2 * c.args[3]),
        Variant("T and d are swapped: the score matrix is T×T, so the cost grows as T²·d, not T·d²",
                lambda c: 4 * c.args[0] * c.args[1] * c.args[2] * c.args[3] ** 2),
        Variant("you left out the batch size B and the number of heads H: every head of every "
                "sequence does its own T×T attention", lambda c: 4 * c.args[2] ** 2 * c.args[3]),
        Variant("you counted multiply-adds for both products; a multiply-add is 2 FLOPs",
                lambda c: c.args[0] * c.args[1] * c.args[2] ** 2 * c.args[3]),
    ],
    hints=[
        "Attention does two matrix products per head: the scores Q·Kᵀ, (T, d)·(d, T), and the "
        "output, the weights (T, T) times V (T, d). Count 2 FLOPs (a multiply and an add) per "
        "term of each dot product; the softmax is O(T²) and FlopCounterMode does not count it.",
        "An (m, n)·(n, p) product costs 2·m·n·p FLOPs. Both products here are 2·T·T·d; there are "
        "B·H independent heads.",
        "return 4 * batch * heads * seq_len**2 * head_dim",
    ],
    explanation=(
        "The scores $QK^\\top$ are $T^2$ dot products of length $d$, and the output $AV$ is $T d$ dot "
        "products of length $T$: $2T^2d$ FLOPs each, $4BHT^2d$ in all. The cost grows with the "
        "square of the sequence length, which is why long contexts are expensive; doubling $T$ "
        "quadruples it. The checker counts the FLOPs of the package's own attention with "
        "`torch.utils.flop_counter.FlopCounterMode` on `meta` tensors."
    ),
))
